//! Where the logs go: native journald records with structured fields when
//! systemd connected stderr to the journal, plain text on stderr otherwise.
//!
//! Under systemd every `tracing` field becomes a journal field of the same
//! name in capitals (`CHANNEL`, `SESSION`, `PEER`, `ERROR`, ...), so
//! `journalctl -u appliance CHANNEL=studio-1` selects one channel's lines and
//! `-o json` hands them to a log shipper as structured data. The choice is
//! automatic (systemd's `JOURNAL_STREAM` names stderr's device and inode);
//! `APPLIANCE_LOG_FORMAT=text` or `=journal` forces it.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Environment variable that forces the log format: `text` or `journal`.
pub const FORMAT_ENV: &str = "APPLIANCE_LOG_FORMAT";

/// Installs the global subscriber; `RUST_LOG` filters as usual. By default the
/// protocol libraries log only warnings (srt-protocol logs every connection's
/// state changes at info).
pub fn init() {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,scuffle_rtmp=warn,srt_protocol=warn,srt_tokio=warn".into())
    };
    let journal = match std::env::var(FORMAT_ENV).as_deref() {
        Ok("text") => false,
        Ok("journal") => true,
        _ => stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
    };
    if journal {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer.with_field_prefix(None).with_syslog_identifier("appliance".into());
                tracing_subscriber::registry().with(filter()).with(layer).init();
                return;
            }
            Err(e) => eprintln!("appliance: cannot reach journald ({e}); logging text to stderr"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        // Colours only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Whether stderr is the journal stream systemd set up (`JOURNAL_STREAM=dev:inode`).
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|s| s.split_once(':')) else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_match_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("1:2")));
        let fd = std::io::stderr().as_fd().try_clone_to_owned().unwrap();
        let m = std::fs::File::from(fd).metadata().unwrap();
        assert!(stderr_is_journal(Some(&format!("{}:{}", m.dev(), m.ino()))));
    }
}
