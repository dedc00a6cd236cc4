//! What every crate's tests share, so that they read the same everywhere:
//! the outside programs a test needs, with the one rule for when one is
//! missing (the test prints `skipped: <reason>` and passes, except where
//! `CI=true`, as CI runs the suite, where it fails: CI never passes by
//! skipping); and waiting for a condition with a deadline ([`eventually`])
//! instead of sleeping.

#![forbid(unsafe_code)]

use std::process::{Command, Stdio};

mod eventually;

pub use eventually::{eventually, eventually_blocking};

/// Whether this run is CI's, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says loudly that a test is skipped and why; panics instead where `CI=true`.
/// The caller returns right after.
pub fn skip(reason: &str) {
    assert!(!in_ci(), "CI=true and a test would be skipped: {reason}");
    eprintln!("skipped: {reason}");
}

/// Whether `program <version_flag>` runs; otherwise [`skip`]s with how to `install` it.
pub fn have_tool(program: &str, version_flag: &str, install: &str) -> bool {
    let present = runs(program, version_flag);
    if !present {
        skip(&format!("{program} is not installed ({install})"));
    }
    present
}

/// Whether the `ffmpeg` and `ffprobe` programs both run; otherwise [`skip`]s.
pub fn have_ffmpeg() -> bool {
    let present = runs("ffmpeg", "-version") && runs("ffprobe", "-version");
    if !present {
        skip("the ffmpeg and ffprobe programs are not installed (apt install ffmpeg; scripts/deps.sh installs it)");
    }
    present
}

fn runs(program: &str, version_flag: &str) -> bool {
    Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_missing_and_a_present_one_present() {
        // coreutils' `true` is on every box that runs this suite; the other name is on none.
        assert!(runs("true", "--version"));
        assert!(!runs("no-such-program-on-any-box", "--version"));
    }
}
