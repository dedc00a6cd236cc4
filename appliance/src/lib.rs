//! The appliance: the one binary that owns configuration and state, runs
//! every live session (ingest to the packager and the other outputs), and
//! serves the origin, the REST API and the console.
//!
//! Folders by purpose: `live/` (what happens to a publish), `http/` (the
//! origin, API, console and who may use them), `state/` (the redb file),
//! `cli/` (the command line), `webhooks/` (delivery of the outbox),
//! `recordings/` (sessions recorded on disk: catchup, retention),
//! `metrics/` (the Prometheus scrape), `alerts/` (the alert engine's rules),
//! `playback/` (private channels' signed playback tokens).
#![forbid(unsafe_code)]

pub mod alerts;
pub mod cli;
pub mod config;
pub mod demo;
pub mod fd_limit;
pub mod http;
pub mod listener_restart;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod playback;
pub mod recordings;
pub mod serve;
pub mod state;
pub mod systemd_notify;
pub mod tls;
pub mod webhooks;

pub use config::Config;
pub use serve::Appliance;
pub use state::{Channel, Store};
