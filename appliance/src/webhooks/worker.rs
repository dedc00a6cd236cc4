//! The delivery worker: drains pending deliveries from the outbox. For each
//! (endpoint, channel) only the oldest pending delivery is attempted, so an
//! endpoint sees a channel's events in order; a failed attempt is retried
//! after an exponentially growing delay, and later events of that channel
//! wait behind it. Every attempt and its result is recorded. Delivery is at
//! least once; the event id (`Webhook-Id`, also in the body) lets receivers
//! make it exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TYPE_HEADER, sign};
use crate::config::WebhooksConfig;
use crate::http::api::resources::{EventResource, PublicUrls};
use crate::state::Store;
use crate::state::blocking::blocking;
use crate::state::clock;
use crate::state::{Attempt, AttemptOutcome, PendingHead};

/// How long to wait before reading the outbox again after a failed read.
/// Otherwise the worker sleeps until a write wakes it (`Store::changed`: the
/// CLI writes through the running server) or the next retry is due: no polling.
const READ_RETRY: Duration = Duration::from_secs(5);
/// Attempts in flight at once (each to a different endpoint or channel).
const MAX_IN_FLIGHT: usize = 16;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The worker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    pub deliver: bool,
    pub timeout: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub max_attempts: u32,
    pub retention: Duration,
}

impl From<&WebhooksConfig> for DeliveryConfig {
    fn from(c: &WebhooksConfig) -> Self {
        DeliveryConfig {
            deliver: c.deliver,
            timeout: Duration::from_millis(c.timeout_ms),
            retry_base: Duration::from_millis(c.retry_base_ms),
            retry_max: Duration::from_millis(c.retry_max_ms),
            max_attempts: c.max_attempts,
            retention: Duration::from_secs(c.retention_hours * 3600),
        }
    }
}

impl DeliveryConfig {
    /// The delay before attempt `attempts + 1`: base × 2^(attempts−1), capped, plus up to 10% jitter.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let delay = self.retry_base.saturating_mul(1u32 << exponent).min(self.retry_max);
        let jitter = rand::rng().random_range(0.0..0.1);
        delay + delay.mul_f64(jitter)
    }
}

/// Failed delivery attempts of this process (for `/metrics`).
#[derive(Debug, Default)]
pub struct DeliveryFailures {
    /// Attempts that failed and will be made again.
    pub retried: AtomicU64,
    /// Deliveries given up after their last attempt failed.
    pub gave_up: AtomicU64,
}

/// Process-wide: one worker delivers the outbox of the one state file.
pub static DELIVERY_FAILURES: DeliveryFailures =
    DeliveryFailures { retried: AtomicU64::new(0), gave_up: AtomicU64::new(0) };

/// Starts the worker; it stops when `shutdown` turns true (attempts in flight
/// are abandoned and made again after the next start).
pub fn spawn(
    store: Store,
    urls: Arc<PublicUrls>,
    config: DeliveryConfig,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !config.deliver {
            tracing::warn!("webhook delivery is off (webhooks.deliver = false): events stay queued in the outbox");
            let _ = shutdown.wait_for(|s| *s).await;
            return;
        }
        let client = match reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("appliance-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
                return;
            }
        };
        let worker = Worker { store, urls, config, client };
        worker.run(shutdown).await;
    })
}

struct Worker {
    store: Store,
    urls: Arc<PublicUrls>,
    config: DeliveryConfig,
    client: reqwest::Client,
}

type Lane = (String, String);

impl Worker {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut busy: HashSet<Lane> = HashSet::new();
        let mut lanes: HashMap<tokio::task::Id, Lane> = HashMap::new();
        let mut attempts: JoinSet<()> = JoinSet::new();
        let mut next_prune = Instant::now();
        loop {
            if Instant::now() >= next_prune {
                next_prune = Instant::now() + PRUNE_EVERY;
                this.prune().await;
            }
            let mut wait = next_prune.saturating_duration_since(Instant::now());
            let store = this.store.clone();
            match blocking(move || store.pending_heads()).await {
                Ok(heads) => {
                    let now = clock::now_ms();
                    for head in heads {
                        let lane = (head.endpoint.clone(), head.channel.clone());
                        if busy.contains(&lane) {
                            continue;
                        }
                        if head.next_attempt_ms > now {
                            wait = wait.min(Duration::from_millis(head.next_attempt_ms - now));
                            continue;
                        }
                        if attempts.len() >= MAX_IN_FLIGHT {
                            break;
                        }
                        let worker = this.clone();
                        let handle = attempts.spawn(async move { worker.attempt(head).await });
                        lanes.insert(handle.id(), lane.clone());
                        busy.insert(lane);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "webhooks: cannot read the outbox");
                    wait = READ_RETRY;
                }
            }
            tokio::select! {
                _ = this.store.changed().notified() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(done) = attempts.join_next_with_id() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            tracing::error!(error = %e, "webhooks: a delivery attempt failed unexpectedly");
                            e.id()
                        }
                    };
                    if let Some(lane) = lanes.remove(&id) {
                        busy.remove(&lane);
                    }
                }
                _ = shutdown.wait_for(|s| *s) => {
                    attempts.abort_all();
                    return;
                }
            }
        }
    }

    async fn prune(&self) {
        let cutoff = clock::now_ms().saturating_sub(self.config.retention.as_millis() as u64);
        let store = self.store.clone();
        match blocking(move || store.prune_events(cutoff)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "webhooks: pruned old events"),
            Err(e) => tracing::warn!(error = %e, "webhooks: cannot prune old events"),
        }
    }

    /// Makes one attempt of `head` and records it.
    async fn attempt(&self, head: PendingHead) {
        let store = self.store.clone();
        let (endpoint_id, sequence) = (head.endpoint.clone(), head.sequence);
        let job = match blocking(move || store.delivery_job(&endpoint_id, sequence)).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot read a delivery");
                tokio::time::sleep(READ_RETRY).await;
                return;
            }
        };
        let (endpoint, event, delivery) = job;
        let event_id = event.id.clone();
        let kind = event.kind.as_str();
        let body = serde_json::to_vec(&EventResource::new(event, &self.urls)).expect("events always serialise");
        let timestamp = clock::now_ms() / 1000;
        let signature = sign(&endpoint.secret, timestamp, &body);
        let at_ms = clock::now_ms();
        let started = Instant::now();
        let sent = self
            .client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &event_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(TYPE_HEADER, kind)
            .body(body)
            .send()
            .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (status, error) = match sent {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
            Ok(response) => (Some(response.status().as_u16()), Some(format!("HTTP {}", response.status()))),
            Err(e) if e.is_timeout() => (None, Some(format!("timed out after {} ms", self.config.timeout.as_millis()))),
            Err(e) if e.is_connect() => (None, Some("cannot connect".to_string())),
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        let attempts = delivery.attempts.len() as u32 + 1;
        let outcome = if error.is_none() {
            AttemptOutcome::Delivered
        } else if attempts >= self.config.max_attempts {
            AttemptOutcome::GiveUp
        } else {
            AttemptOutcome::RetryAt(clock::now_ms() + self.config.backoff(attempts).as_millis() as u64)
        };
        match &outcome {
            AttemptOutcome::Delivered => {}
            AttemptOutcome::GiveUp => {
                DELIVERY_FAILURES.gave_up.fetch_add(1, Ordering::Relaxed);
            }
            AttemptOutcome::RetryAt(_) => {
                DELIVERY_FAILURES.retried.fetch_add(1, Ordering::Relaxed);
            }
        }
        match (&outcome, &error) {
            (AttemptOutcome::Delivered, _) => {
                tracing::debug!(webhook = %endpoint.id, event = %event_id, kind, duration_ms, "webhook delivered");
            }
            (AttemptOutcome::GiveUp, Some(e)) => {
                tracing::warn!(webhook = %endpoint.id, event = %event_id, kind, attempts, error = %e, "webhook delivery failed for good");
            }
            (_, e) => {
                tracing::info!(webhook = %endpoint.id, event = %event_id, kind, attempts, error = ?e, "webhook delivery will be retried");
            }
        }
        let attempt = Attempt { at_ms, duration_ms, status, error };
        let store = self.store.clone();
        let endpoint_id = endpoint.id.clone();
        if let Err(e) = blocking(move || store.record_attempt(&endpoint_id, sequence, attempt, outcome)).await {
            tracing::error!(error = %e, "webhooks: cannot record a delivery attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = DeliveryConfig {
            deliver: true,
            timeout: Duration::from_secs(1),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            max_attempts: 10,
            retention: Duration::from_secs(3600),
        };
        for (attempts, base_ms) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            let ms = config.backoff(attempts).as_millis() as u64;
            assert!((base_ms..=base_ms * 11 / 10).contains(&ms), "attempt {attempts}: {ms} ms");
        }
    }
}
