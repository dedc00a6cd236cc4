//! The alert engine's first rule: input lost on a live session. Each rule is
//! a condition evaluated from what the appliance already measures, through
//! a `hysteresis` (raised after it has held for a time, cleared after it has
//! been gone for a time); each change is an `alert.raised` / `alert.cleared`
//! event in the outbox (history in the state file, signed webhooks), a
//! journal line with structured fields (`alert`, `channel`, `session`), and
//! a count in `/metrics` (`counters`); the alerts raised now are listed by
//! the API (`active`).

pub mod active;
pub mod counters;
pub mod hysteresis;
pub mod input_lost;

use std::sync::Arc;

pub use active::{ActiveAlert, ActiveAlerts};
pub use counters::AlertCounters;

/// What the engine writes and the API and `/metrics` read.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    pub counters: Arc<AlertCounters>,
    pub active: Arc<ActiveAlerts>,
}
