//! Webhook endpoints: where events are POSTed, the secret that signs them,
//! and which event types each one wants (none listed: all).

use std::ops::Bound;

use redb::WriteTransaction;

use super::error::StoreError;
use super::page::Page;
use super::records::webhook::validate;
use super::records::{NewWebhook, WebhookEndpoint};
use super::rows::{decode, encode};
use super::store::Store;
use super::tables::{DELIVERIES, PENDING, WEBHOOKS};
use super::{clock, ids};

/// Removes an endpoint's deliveries, pending ones included (it was deleted).
fn forget_endpoint(tx: &WriteTransaction, endpoint: &str) -> Result<(), StoreError> {
    let range = (endpoint, 0u64)..=(endpoint, u64::MAX);
    tx.open_table(DELIVERIES)?.retain_in(range.clone(), |_, _| false)?;
    tx.open_table(PENDING)?.retain_in(range, |_, _| false)?;
    Ok(())
}

impl Store {
    /// Registers an endpoint; it receives events from now on.
    pub fn create_webhook(&self, new: NewWebhook) -> Result<WebhookEndpoint, StoreError> {
        validate(&new)?;
        let mut events = new.events;
        events.sort_by_key(|e| e.as_str());
        events.dedup();
        let endpoint = WebhookEndpoint {
            id: ids::public_id("wh"),
            url: new.url,
            secret: new.secret.unwrap_or_else(|| format!("whsec_{}", ids::secret())),
            events,
            description: new.description,
            created_ms: clock::now_ms(),
        };
        self.write(|tx| {
            tx.open_table(WEBHOOKS)?.insert(endpoint.id.as_str(), encode(&endpoint).as_slice())?;
            Ok(())
        })?;
        Ok(endpoint)
    }

    pub fn webhook(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.read(|tx| tx.open_table(WEBHOOKS)?.get(id)?.map(|v| decode(v.value())).transpose())
    }

    /// Removes an endpoint with its deliveries, pending ones included.
    pub fn delete_webhook(&self, id: &str) -> Result<WebhookEndpoint, StoreError> {
        self.write(|tx| {
            let removed: Option<WebhookEndpoint> =
                tx.open_table(WEBHOOKS)?.remove(id)?.map(|v| decode(v.value())).transpose()?;
            let removed = removed.ok_or_else(|| StoreError::not_found("webhook", id))?;
            forget_endpoint(tx, id)?;
            Ok(removed)
        })
    }

    /// Endpoints by id after the cursor (an id).
    pub fn list_webhooks(&self, after: Option<&str>, limit: usize) -> Result<Page<WebhookEndpoint>, StoreError> {
        self.read(|tx| {
            let table = tx.open_table(WEBHOOKS)?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut items = Vec::new();
            for entry in table.range::<&str>((start, Bound::Unbounded))?.take(limit + 1) {
                items.push(decode::<WebhookEndpoint>(entry?.1.value())?);
            }
            Ok(Page::from_items(items, limit, |w| w.id.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Attempt, AttemptOutcome, DeliveryState, EventType};
    use media::LatencyMode;

    #[test]
    fn events_fan_out_to_subscribed_endpoints_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all =
            store.create_webhook(NewWebhook { url: "http://127.0.0.1:9/a".into(), ..NewWebhook::default() }).unwrap();
        assert!(all.secret.starts_with("whsec_"));
        let sessions_only = NewWebhook {
            url: "https://example.invalid/hook".into(),
            secret: Some("0123456789abcdef".into()),
            events: vec![EventType::SessionLive, EventType::SessionEnded],
            description: None,
        };
        let some = store.create_webhook(sessions_only).unwrap();
        store.add("a", LatencyMode::UltraLow).unwrap();
        store.add("b", LatencyMode::UltraLow).unwrap();
        assert_eq!(store.list_deliveries(&all.id, None, 100).unwrap().items.len(), 4);
        assert!(store.list_deliveries(&some.id, None, 100).unwrap().items.is_empty());

        // One head per (endpoint, channel): the oldest pending delivery.
        let heads = store.pending_heads().unwrap();
        assert_eq!(heads.iter().map(|h| (h.channel.as_str(), h.sequence)).collect::<Vec<_>>(), [("a", 1), ("b", 3)]);
        let attempt = Attempt { at_ms: 1, duration_ms: 2, status: Some(500), error: Some("HTTP 500".into()) };
        store.record_attempt(&all.id, 1, attempt.clone(), AttemptOutcome::RetryAt(99)).unwrap();
        assert_eq!(store.pending_heads().unwrap()[0].next_attempt_ms, 99);
        store.record_attempt(&all.id, 1, attempt, AttemptOutcome::Delivered).unwrap();
        let heads = store.pending_heads().unwrap();
        assert_eq!(heads.iter().map(|h| h.sequence).collect::<Vec<_>>(), [2, 3]);
        let first = &store.list_deliveries(&all.id, None, 1).unwrap().items[0];
        assert_eq!((first.state, first.attempts.len()), (DeliveryState::Delivered, 2));

        store.delete_webhook(&all.id).unwrap();
        assert!(store.pending_heads().unwrap().is_empty());
        for (url, field) in [("ftp://x/", "url"), ("not a url", "url"), ("http://u:p@host/", "url")] {
            let err = store.create_webhook(NewWebhook { url: url.into(), ..NewWebhook::default() }).unwrap_err();
            assert!(matches!(&err, StoreError::Invalid { field: f, .. } if f == field), "{url}: {err}");
        }
        assert_eq!(store.prune_events(u64::MAX).unwrap(), 4);
    }
}
