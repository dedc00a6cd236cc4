//! Metrics for Prometheus: `GET /metrics` in the classic text format
//! (`exposition`), gathered at scrape time from what the appliance already
//! keeps (`scrape`), the origin's request counters (`origin_requests`, the
//! only new work on a hot path: atomic adds) and the process's own figures
//! (`process`), the listeners' connection counts (`listeners`). `route` serves it, behind a read token when configured.

pub mod exposition;
pub mod listeners;
pub mod origin_requests;
pub mod process;
pub mod route;
pub mod scrape;

pub use listeners::{ListenerMeter, Listeners};
pub use origin_requests::OriginRequests;
pub use scrape::{Gathered, MetricsSources};
