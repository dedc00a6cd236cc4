//! The appliance: the one binary that owns configuration and state, routes
//! RTMP publishes to the LL-HLS packager, and serves the origin and its pages.

pub mod channel_store;
pub mod config;
pub mod demo;
pub mod publish_routing;
pub mod serve;
pub mod web;

pub use channel_store::{Channel, ChannelStore};
pub use config::Config;
pub use serve::Appliance;
