//! The end-to-end tests: one test binary (each module a part of the product
//! as a user meets it), all started through the `support` library of this
//! crate: an appliance on port 0 with its own data directory, the real
//! `ffmpeg` program as publisher, real HTTP clients, `ffprobe`, hls.js and
//! Shaka Player in Chromium, nginx as an edge, qemu for the image.
//!
//! Run one part with a filter: `cargo test -p tests --test e2e ladder::`.

mod access;
mod alerts;
pub(crate) mod api;
mod audio;
mod conformance;
mod console;
mod console_operations;
mod dvr;
mod edge;
mod enhanced_rtmp;
mod events_feed;
mod export;
mod failover;
mod https;
mod image_boot;
mod ladder;
mod metrics;
mod outputs;
mod player;
mod processing;
mod processing_sound;
mod recording;
mod restream;
mod rtmps;
mod source_record;
mod spine;
mod srt;
mod thumbnails;
mod whip;
