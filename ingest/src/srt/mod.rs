//! SRT ingest: one listener for every channel (srt-tokio), callers chosen by
//! their streamid and refused in the listen callback, MPEG-TS out of each
//! accepted connection through `ts::TsDemuxer` onto the granted sink.

mod connection;
mod link_stats;
mod server;
mod srt_config;
mod stream_id;

pub use server::{SrtServer, SrtServerHandle};
pub use srt_config::SrtConfig;
pub use stream_id::{StreamIdError, parse_stream_id};
