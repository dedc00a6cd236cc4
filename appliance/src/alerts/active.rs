//! The alerts raised and not cleared now, for the API's list (the history
//! is the outbox's `alert.*` events).

use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AlertRule;

/// An alert raised and not cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActiveAlert {
    pub rule: AlertRule,
    pub channel: String,
    pub session: String,
    #[schema(format = DateTime)]
    pub raised_at: String,
    pub detail: String,
}

/// Every active alert.
#[derive(Debug, Default)]
pub struct ActiveAlerts {
    alerts: Mutex<Vec<ActiveAlert>>,
}

impl ActiveAlerts {
    pub fn raise(&self, alert: ActiveAlert) {
        let mut alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        alerts.retain(|a| !(a.rule == alert.rule && a.session == alert.session));
        alerts.push(alert);
    }

    pub fn clear(&self, rule: AlertRule, session: &str) {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner()).retain(|a| !(a.rule == rule && a.session == session));
    }

    /// Oldest first.
    pub fn list(&self) -> Vec<ActiveAlert> {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
