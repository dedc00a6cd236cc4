//! Transactions of alerts: a raised or cleared alert is an event in the
//! outbox (`alert.raised`, `alert.cleared`), so it is kept with the rest of
//! the history in the state file and delivered as a signed webhook.

use super::error::StoreError;
use super::records::{AlertNotice, Event, EventType, Snapshot};
use super::rows::append_event;
use super::store::Store;

impl Store {
    /// Appends `alert.raised` (`raised`) or `alert.cleared` for `channel`.
    pub fn record_alert(&self, channel: &str, raised: bool, notice: AlertNotice) -> Result<Event, StoreError> {
        let kind = if raised { EventType::AlertRaised } else { EventType::AlertCleared };
        self.write(|tx| append_event(tx, kind, channel, Snapshot::Alert(Box::new(notice))))
    }
}
