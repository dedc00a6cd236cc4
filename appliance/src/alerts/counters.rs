//! Alerts raised, cleared and active now, per rule, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::AlertRule;

/// One rule's counts.
#[derive(Debug, Default)]
pub struct RuleCounts {
    pub raised: AtomicU64,
    pub cleared: AtomicU64,
}

/// Counts of every rule (indexed as `AlertRule::ALL`).
#[derive(Debug, Default)]
pub struct AlertCounters {
    rules: [RuleCounts; AlertRule::ALL.len()],
}

impl AlertCounters {
    pub fn of(&self, rule: AlertRule) -> &RuleCounts {
        let index = AlertRule::ALL.iter().position(|r| *r == rule).unwrap_or(0);
        &self.rules[index]
    }

    /// (rule, raised so far, cleared so far, active now) for every rule.
    pub fn read(&self) -> Vec<(AlertRule, u64, u64, u64)> {
        AlertRule::ALL
            .iter()
            .map(|rule| {
                let counts = self.of(*rule);
                let raised = counts.raised.load(Ordering::Relaxed);
                let cleared = counts.cleared.load(Ordering::Relaxed);
                (*rule, raised, cleared, raised.saturating_sub(cleared))
            })
            .collect()
    }
}
