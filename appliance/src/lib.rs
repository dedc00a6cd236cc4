//! The appliance: the one binary that owns configuration and state, routes
//! RTMP publishes to the LL-HLS packager, and serves the origin and its pages.

#![forbid(unsafe_code)]

pub mod api;
pub mod audio_stage;
pub mod channel_store;
pub mod client_address;
pub mod config;
pub mod console;
pub mod control_plane;
pub mod demo;
pub mod live_session;
pub mod logging;
pub mod publish_routing;
pub mod serve;
pub mod session_supervisor;
pub mod state;
pub mod systemd_notify;
pub mod transcode;
pub mod viewers;
pub mod web;
pub mod webhooks;

pub use channel_store::{Channel, ChannelStore};
pub use config::Config;
pub use serve::Appliance;
