//! The one harness of the end-to-end tests (`tests/e2e`), the appliance
//! binary's own tests and the `players` command: an appliance started
//! in-process on port 0 with its own data directory (a real redb file), or
//! the real `appliance serve` binary as a child process; the real `ffmpeg`
//! program as publisher; a real HTTP client for the API and the origin; an
//! independent LL-HLS playlist parser; `ffprobe`; Playwright drivers of
//! Chromium; and one rule for a missing outside program (skip loudly, fail
//! under `CI=true`). Every wait is bounded: tests poll a condition with
//! [`eventually`], never sleep to order things.

#![forbid(unsafe_code)]

use std::time::Duration;

pub mod access;
pub mod api;
pub mod appliance;
pub mod browser;
pub mod edge;
pub mod lossy_udp;
pub mod measure;
pub mod origin;
pub mod picture;
pub mod players;
pub mod playlist;
pub mod probe;
pub mod process;
pub mod prometheus;
pub mod publish;
pub mod srt;
pub mod whip;

pub use api::Reply;
pub use appliance::{TestAppliance, h264_ladder, recorded_channel};
pub use browser::{BrowserScript, artifacts_dir, browser_driver, run_browser_script};
pub use picture::{frame_at, psnr};
pub use playlist::{MediaPlaylist, Part, Segment, attributes, base};
pub use probe::{Probe, ffprobe, ffprobe_json, probe};
pub use process::{Cli, ServeProcess};
pub use publish::{Publish, PublishAudio, PublishVideo, ffmpeg9, finish, finish_within, publish};
pub use test_tools::{eventually, eventually_blocking, have_ffmpeg, have_tool, in_ci, skip};

/// Every await in a test is bounded by this unless it says otherwise.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
