//! Webhook endpoints: where events are POSTed, the secret that signs them,
//! and which event types each one wants (none listed: all).

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::outbox::{self, EventType};
use super::tables::WEBHOOKS;
use super::{Page, Store, StoreError, clock, decode, encode, ids};

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A registered receiver of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    /// HMAC-SHA256 key of the signature header.
    pub secret: String,
    /// Event types delivered; empty means every type.
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: Option<String>,
    pub created_ms: u64,
}

impl WebhookEndpoint {
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// What registering an endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewWebhook {
    pub url: String,
    /// Generated when absent.
    pub secret: Option<String>,
    pub events: Vec<EventType>,
    pub description: Option<String>,
}

/// Endpoint URLs: http or https, a host name or IPv4 address, an optional
/// port, path and query; no credentials, no fragment (also the OpenAPI pattern).
pub const URL_PATTERN: &str = concat!(
    r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|[A-Za-z][A-Za-z0-9-]{0,62}(\.[A-Za-z][A-Za-z0-9-]{0,62})*)",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
);
/// Endpoint secrets: 16 to 128 printable ASCII characters.
pub const SECRET_PATTERN: &str = "^[!-~]{16,128}$";
/// Descriptions: no control characters.
pub const DESCRIPTION_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

fn matches(pattern: &'static str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static COMPILED: LazyLock<Mutex<HashMap<&'static str, regex::Regex>>> = LazyLock::new(Default::default);
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    compiled.entry(pattern).or_insert_with(|| regex::Regex::new(pattern).expect("valid pattern")).is_match(text)
}

fn validate(new: &NewWebhook) -> Result<(), StoreError> {
    if new.url.len() > MAX_URL_LEN {
        return Err(StoreError::invalid("url", format!("longer than {MAX_URL_LEN} bytes")));
    }
    if !matches(URL_PATTERN, &new.url) {
        return Err(StoreError::invalid(
            "url",
            "use an http or https URL with a host name or IPv4 address, no credentials",
        ));
    }
    reqwest::Url::parse(&new.url).map_err(|e| StoreError::invalid("url", format!("not a valid URL ({e})")))?;
    if new.secret.as_ref().is_some_and(|secret| !matches(SECRET_PATTERN, secret)) {
        return Err(StoreError::invalid("secret", "use 16 to 128 printable ASCII characters"));
    }
    if new.description.as_ref().is_some_and(|d| d.chars().count() > 256 || !matches(DESCRIPTION_PATTERN, d)) {
        return Err(StoreError::invalid("description", "use at most 256 characters, none of them control characters"));
    }
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
            outbox::forget_endpoint(tx, id)?;
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
    use crate::state::outbox::{Attempt, AttemptOutcome, DeliveryState};
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
