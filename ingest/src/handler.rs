//! The small trait ingest needs from its owner (`IngestHandler`): who may
//! publish where, and the types that cross that boundary.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;

use crate::metadata::StreamMetadata;
pub use crate::refusal::{Refusal, RefusalKind};

/// `PublishRequest::app` of SRT callers (SRT has no application name).
pub const SRT_APP: &str = "srt";

/// A client asks to publish. `stream_key` is the publish name with any
/// `?query` suffix removed; it is a secret, so `Debug` shows only a prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct PublishRequest {
    pub peer: SocketAddr,
    /// The RTMP application (`live` in `rtmp://host/live/KEY`).
    pub app: String,
    pub stream_key: String,
}

impl fmt::Debug for PublishRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishRequest")
            .field("peer", &self.peer)
            .field("app", &self.app)
            .field("stream_key", &key_prefix(&self.stream_key))
            .finish()
    }
}

/// A granted publish: where units go, and a label (e.g. the channel name) for logs.
#[derive(Debug)]
pub struct PublishGrant {
    pub sink: media::UnitSender,
    pub label: String,
    /// The handler's id for this publish; passed back to `on_metadata` and `on_unpublish`.
    pub publish_id: u64,
    /// How often the channel wants a keyframe (its segment target): an input
    /// whose sender makes keyframes only when asked (WebRTC) asks this often.
    pub keyframe_interval: Option<std::time::Duration>,
}

/// What the appliance implements: decides publishes and hears when they end.
pub trait IngestHandler: Send + Sync + 'static {
    /// Decides whether `req` may publish. Runs on the connection's task; it
    /// should answer quickly (it is cut off by the connection deadline).
    fn on_publish(&self, req: PublishRequest) -> impl Future<Output = Result<PublishGrant, Refusal>> + Send;

    /// The publisher's `onMetaData`, when it sends one.
    fn on_metadata(&self, publish_id: u64, meta: &StreamMetadata) {
        let _ = (publish_id, meta);
    }

    /// Called exactly once for every granted publish when it ends (clean
    /// unpublish, disconnect, error, timeout, shutdown), after the sink was dropped.
    fn on_unpublish(&self, publish_id: u64);

    /// SRT: how a caller with `stream_key` must connect (its channel's
    /// passphrase), asked in the listen callback before the handshake is
    /// answered; a refusal rejects the caller there, before any media.
    /// `on_publish` still decides once the handshake succeeded. The default
    /// takes every key, unencrypted.
    fn srt_access(&self, stream_key: &str) -> impl Future<Output = Result<SrtAccess, Refusal>> + Send {
        let _ = stream_key;
        std::future::ready(Ok(SrtAccess::default()))
    }

    /// SRT: the link figures of a granted publish, about once a second.
    fn on_link_stats(&self, publish_id: u64, stats: &SrtLinkStats) {
        let _ = (publish_id, stats);
    }
}

/// How an SRT caller must connect to a channel.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SrtAccess {
    /// AES passphrase (10 to 79 characters); the caller's key length (128,
    /// 192 or 256 bits) is taken. `None`: unencrypted callers only.
    pub passphrase: Option<String>,
}

impl fmt::Debug for SrtAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtAccess").field("passphrase", &self.passphrase.as_ref().map(|_| "…")).finish()
    }
}

/// An SRT connection's link figures (totals since it connected, and rates).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SrtLinkStats {
    /// Smoothed round-trip time, milliseconds; `None` while the SRT stack
    /// does not measure it (srt-tokio 0.4 leaves it out of its statistics).
    pub rtt_ms: Option<f64>,
    /// Bits per second received over the last interval (payload, with retransmissions).
    pub receive_rate_bps: u64,
    /// Data packets received (all, with retransmissions).
    pub packets_received: u64,
    /// Loss reports (NAKs) sent to the caller: each names packets found missing.
    pub loss_reports: u64,
    /// Retransmitted data packets received.
    pub packets_retransmitted: u64,
    /// Packets given up on (too late to play): the TS demuxer sees these as gaps.
    pub packets_dropped: u64,
    /// The latency the two sides agreed on, milliseconds.
    pub latency_ms: u64,
}

/// A stream key as it may appear in logs: a short prefix, never the whole key.
pub fn key_prefix(key: &str) -> String {
    let chars = key.chars().count();
    let shown = (chars / 2).min(4);
    let prefix: String = key.chars().take(shown).collect();
    format!("{prefix}…")
}

/// The stream key of a publish name: everything before the first `?`.
pub(crate) fn stream_key(publishing_name: &str) -> &str {
    publishing_name.split_once('?').map_or(publishing_name, |(key, _)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stripped_and_redacted() {
        let cases = [
            ("abcdef123456", "abcdef123456", "abcd…"),
            ("abcdef123456?token=x&y=1", "abcdef123456", "abcd…"),
            ("abc", "abc", "a…"),
            ("", "", "…"),
            ("?only=query", "", "…"),
            ("ключ-секрет", "ключ-секрет", "ключ…"),
        ];
        for (name, key, prefix) in cases {
            assert_eq!(stream_key(name), key, "{name}");
            assert_eq!(key_prefix(stream_key(name)), prefix, "{name}");
        }
    }

    #[test]
    fn refusal_kinds_in_discriminant_order() {
        for (i, kind) in RefusalKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind:?}");
        }
        assert_eq!(RefusalKind::ALL.map(RefusalKind::name), ["unknown_key", "already_live", "unavailable"]);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let req = PublishRequest {
            peer: "127.0.0.1:5000".parse().unwrap(),
            app: "live".into(),
            stream_key: "supersecretkey".into(),
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("supersecretkey"), "{shown}");
        assert!(shown.contains("supe…"), "{shown}");
    }
}
