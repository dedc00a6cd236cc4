//! RTMP ingest: accepts publishers (tokio + scuffle-rtmp's handshake and
//! message codecs, our own session and chunk reader), turns their
//! FLV/AVC/AAC into `media` stream events on a sink the `IngestHandler`
//! grants, and is the only FLV-aware code of the appliance.

#![forbid(unsafe_code)]

mod admission;
mod amf0;
mod chunk;
mod client_address;
mod command;
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
mod timestamps;
mod warnings;

pub use demuxer::{DemuxStats, Demuxer};
pub use error::IngestError;
pub use handler::{IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, key_prefix};
pub use metadata::StreamMetadata;
pub use server::{ConnectionStats, IngestConfig, RtmpServer, RtmpServerHandle};
