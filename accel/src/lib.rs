//! Hardware-accelerated ABR transcoding through FFmpeg's libraries: the
//! device probe, encoder slot accounting and the scheduler that places a
//! channel's whole ladder, the one table of zero-latency encoder settings, and
//! the per-session pipeline (decode once, split + scale, encode every rung) on
//! dedicated threads joined to tokio by bounded unit channels, and the audio
//! transcode of non-AAC sources (MP3, G.711, Opus) to AAC-LC, and thumbnails
//! (a keyframe decoded alone, as JPEG). All `unsafe`
//! lives in the private `ffi` module: the lints below refuse it anywhere else.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod audio;
pub mod bench;
pub mod bitstream;
pub mod cadence;
pub mod device;
pub mod error;
pub mod export;
#[allow(unsafe_code)]
mod ffi;
pub mod jpeg;
pub mod meter;
pub mod options;
pub mod pipeline;
pub mod probe;
pub mod scheduler;
pub mod slate;
pub mod slots;
pub mod sound;
pub mod source;
pub mod sprite;
pub mod stream_out;
pub mod thread_name;
pub mod thumbnail;

pub use device::{Backend, DeviceId};
pub use error::AccelError;
pub use scheduler::{Demand, Load, Placement};
pub use slots::{Calibration, Lease, SlotPool};
