//! RTMP, SRT and WHIP ingest: accepts publishers (RTMP: tokio + scuffle-rtmp's
//! handshake and message codecs, our own session and chunk reader; SRT:
//! srt-tokio's listener with our MPEG-TS demuxer; WHIP: str0m as an
//! ICE-lite WebRTC peer behind the appliance's HTTP route), turns their media into
//! `media` stream events on a sink the `IngestHandler` grants, and is the
//! only FLV- and TS-aware code of the appliance.

#![forbid(unsafe_code)]

mod admission;
mod amf0;
mod chunk;
mod client_address;
mod command;
mod connect_result;
mod demuxer;
mod error;
mod flv;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handler;
mod ingest_config;
mod memory_budget;
mod metadata;
mod refusal;
mod refusal_log;
mod server;
mod server_state;
mod session;
mod srt;
mod timestamps;
mod ts;
mod warnings;
mod whip;

pub use demuxer::{DemuxStats, Demuxer};
pub use error::IngestError;
pub use handler::{
    IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, SRT_APP, SrtAccess, SrtLinkStats, key_prefix,
};
pub use metadata::StreamMetadata;
pub use server::{ConnectionMeter, ConnectionStats, IngestConfig, RtmpServer, RtmpServerHandle};
pub use srt::{SrtConfig, SrtServer, SrtServerHandle, StreamIdError, parse_stream_id};
pub use ts::{TsDemuxer, TsStats};
pub use whip::{WHIP_APP, WhipAnswer, WhipConfig, WhipError, WhipOffer, WhipServer};
