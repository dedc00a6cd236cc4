//! The event outbox and its deliveries: every state change appends its
//! events in its own transaction (`rows::append_event`), and each event fans
//! out to one delivery per webhook endpoint that subscribed to its type. Here:
//! reading events and deliveries, the delivery worker's queue, recording
//! attempts, and pruning old events.

use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata};

use super::error::StoreError;
use super::page::Page;
use super::records::event::Pending;
use super::records::{Attempt, AttemptOutcome, Delivery, DeliveryState, Event, PendingHead, WebhookEndpoint};
use super::rows::{decode, encode};
use super::store::Store;
use super::tables::{DELIVERIES, EVENTS, PENDING, WEBHOOKS};

impl Store {
    /// Events, oldest first, after the cursor (a sequence number).
    pub fn list_events(&self, after: Option<u64>, limit: usize) -> Result<Page<Event>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(EVENTS)?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut items = Vec::new();
            for entry in table.range::<u64>((start, Bound::Unbounded))?.take(limit + 1) {
                items.push(decode::<Event>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |e| e.sequence.to_string()))
        })
    }

    /// The newest event's sequence number (0: none yet).
    pub fn newest_event_sequence(&self) -> Result<u64, StoreError> {
        self.read(|tx| Ok(tx.open_table(EVENTS)?.last()?.map_or(0, |(k, _)| k.value())))
    }

    pub fn event(&self, sequence: u64) -> Result<Option<Event>, StoreError> {
        self.read(|tx| tx.open_table(EVENTS)?.get(sequence)?.map(|v| decode(v.value())).transpose())
    }

    /// An endpoint's deliveries, oldest first, after the cursor (a sequence number).
    pub fn list_deliveries(
        &self,
        endpoint: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        self.read(|tx| {
            if tx.open_table(WEBHOOKS)?.get(endpoint)?.is_none() {
                return Err(StoreError::not_found("webhook", endpoint));
            }
            let table = tx.open_table(DELIVERIES)?;
            let start = match after {
                Some(after) if after == u64::MAX => return Ok(Page { items: Vec::new(), next_cursor: None }),
                Some(after) => (endpoint, after + 1),
                None => (endpoint, 0),
            };
            let mut items = Vec::new();
            for entry in table.range(start..=(endpoint, u64::MAX))?.take(limit + 1) {
                items.push(decode::<Delivery>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |d| d.sequence.to_string()))
        })
    }

    /// Deliveries waiting to be made (the outbox's depth over every endpoint).
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| Ok(tx.open_table(PENDING)?.len()?))
    }

    /// The next delivery to make for each (endpoint, channel), in sequence order.
    pub fn pending_heads(&self) -> Result<Vec<PendingHead>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(PENDING)?;
            let mut heads: Vec<PendingHead> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for entry in table.iter()? {
                let (key, value) = entry?;
                let (endpoint, sequence) = key.value();
                let pending: Pending = decode(value.value())?;
                if seen.insert((endpoint.to_string(), pending.channel.clone())) {
                    heads.push(PendingHead {
                        endpoint: endpoint.to_string(),
                        sequence,
                        channel: pending.channel,
                        next_attempt_ms: pending.next_attempt_ms,
                    });
                }
            }
            Ok(heads)
        })
    }

    /// What a delivery attempt needs: the endpoint, the event and the delivery so far.
    pub fn delivery_job(
        &self,
        endpoint: &str,
        sequence: u64,
    ) -> Result<Option<(WebhookEndpoint, Event, Delivery)>, StoreError> {
        self.read(|tx| {
            let Some(ep) = tx.open_table(WEBHOOKS)?.get(endpoint)?.map(|v| decode(v.value())).transpose()? else {
                return Ok(None);
            };
            let Some(event) = tx.open_table(EVENTS)?.get(sequence)?.map(|v| decode(v.value())).transpose()? else {
                return Ok(None);
            };
            let delivery =
                tx.open_table(DELIVERIES)?.get((endpoint, sequence))?.map(|v| decode(v.value())).transpose()?;
            Ok(delivery.map(|d| (ep, event, d)))
        })
    }

    /// Records an attempt and what it came to.
    pub fn record_attempt(
        &self,
        endpoint: &str,
        sequence: u64,
        attempt: Attempt,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let key = (endpoint, sequence);
            let mut deliveries = tx.open_table(DELIVERIES)?;
            let Some(mut delivery) = deliveries.get(key)?.map(|v| decode::<Delivery>(v.value())).transpose()? else {
                return Ok(());
            };
            delivery.attempts.push(attempt);
            let mut pending = tx.open_table(PENDING)?;
            match outcome {
                AttemptOutcome::Delivered | AttemptOutcome::GiveUp => {
                    delivery.state = if outcome == AttemptOutcome::Delivered {
                        DeliveryState::Delivered
                    } else {
                        DeliveryState::Failed
                    };
                    delivery.next_attempt_ms = None;
                    pending.remove(key)?;
                }
                AttemptOutcome::RetryAt(at) => {
                    delivery.next_attempt_ms = Some(at);
                    let entry = Pending { channel: delivery.channel.clone(), next_attempt_ms: at };
                    pending.insert(key, encode(&entry).as_slice())?;
                }
            }
            deliveries.insert(key, encode(&delivery).as_slice())?;
            Ok(())
        })
    }

    /// Forgets events older than `cutoff_ms` that no endpoint still has to receive,
    /// with their deliveries. Returns how many events went.
    pub fn prune_events(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        self.write(|tx| {
            let endpoints: Vec<String> = {
                let table = tx.open_table(WEBHOOKS)?;
                let mut ids = Vec::new();
                for entry in table.iter()? {
                    ids.push(entry?.0.value().to_string());
                }
                ids
            };
            let pending = tx.open_table(PENDING)?;
            let mut events = tx.open_table(EVENTS)?;
            let mut old = Vec::new();
            for entry in events.iter()? {
                let (key, value) = entry?;
                let event: Event = decode(value.value())?;
                if event.at_ms >= cutoff_ms {
                    break;
                }
                let sequence = key.value();
                let mut still_pending = false;
                for endpoint in &endpoints {
                    still_pending |= pending.get((endpoint.as_str(), sequence))?.is_some();
                }
                if !still_pending {
                    old.push(sequence);
                }
            }
            let mut deliveries = tx.open_table(DELIVERIES)?;
            for sequence in &old {
                events.remove(*sequence)?;
                for endpoint in &endpoints {
                    deliveries.remove((endpoint.as_str(), *sequence))?;
                }
            }
            Ok(old.len())
        })
    }
}
