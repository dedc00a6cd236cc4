//! The event outbox: every state change appends its events in its own
//! transaction, and each event fans out to one delivery per webhook endpoint
//! that subscribed to its type. The delivery worker drains the pending
//! deliveries; attempts and results stay recorded for the API.

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::channels::Channel;
use super::sessions::Session;
use super::tables::{DELIVERIES, EVENTS, META, PENDING, WEBHOOKS};
use super::webhooks::WebhookEndpoint;
use super::{Page, Store, StoreError, clock, decode, encode, ids};

/// The kinds of event, as named in webhook payloads and endpoint filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "channel.created")]
    ChannelCreated,
    #[serde(rename = "channel.updated")]
    ChannelUpdated,
    #[serde(rename = "channel.deleted")]
    ChannelDeleted,
    #[serde(rename = "channel.started")]
    ChannelStarted,
    #[serde(rename = "channel.stopped")]
    ChannelStopped,
    #[serde(rename = "session.init")]
    SessionInit,
    #[serde(rename = "session.live")]
    SessionLive,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "session.error")]
    SessionError,
    /// A session's ladder moved to another encoder slot after a failure.
    #[serde(rename = "session.encoder_moved")]
    SessionEncoderMoved,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::ChannelCreated,
        EventType::ChannelUpdated,
        EventType::ChannelDeleted,
        EventType::ChannelStarted,
        EventType::ChannelStopped,
        EventType::SessionInit,
        EventType::SessionLive,
        EventType::SessionEnded,
        EventType::SessionError,
        EventType::SessionEncoderMoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ChannelCreated => "channel.created",
            EventType::ChannelUpdated => "channel.updated",
            EventType::ChannelDeleted => "channel.deleted",
            EventType::ChannelStarted => "channel.started",
            EventType::ChannelStopped => "channel.stopped",
            EventType::SessionInit => "session.init",
            EventType::SessionLive => "session.live",
            EventType::SessionEnded => "session.ended",
            EventType::SessionError => "session.error",
            EventType::SessionEncoderMoved => "session.encoder_moved",
        }
    }
}

/// The resource an event is about, as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Snapshot {
    Channel(Box<Channel>),
    Session(Box<Session>),
    EncoderMoved(Box<super::sessions::EncoderMoved>),
}

/// One event in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and stable across retries: receivers de-duplicate on it.
    pub id: String,
    /// Increases by one per event, across the whole appliance.
    pub sequence: u64,
    pub kind: EventType,
    pub at_ms: u64,
    /// The channel the event concerns; deliveries are ordered per channel.
    pub channel: String,
    pub snapshot: Snapshot,
}

/// Whether a delivery is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Every attempt failed; later events of the channel went on without it.
    Failed,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at_ms: u64,
    pub duration_ms: u64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong: a non-2xx status, a timeout, a refused connection.
    pub error: Option<String>,
}

/// An event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub endpoint: String,
    pub sequence: u64,
    pub event_id: String,
    pub event_type: EventType,
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    pub next_attempt_ms: Option<u64>,
}

/// The worker's queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    channel: String,
    next_attempt_ms: u64,
}

/// The oldest pending delivery of one (endpoint, channel): the next to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHead {
    pub endpoint: String,
    pub sequence: u64,
    pub channel: String,
    pub next_attempt_ms: u64,
}

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(u64),
    GiveUp,
}

/// Appends an event inside `tx` and queues it for every subscribed endpoint.
pub(crate) fn append(
    tx: &WriteTransaction,
    kind: EventType,
    channel: &str,
    snapshot: Snapshot,
) -> Result<Event, StoreError> {
    let now = clock::now_ms();
    let sequence = {
        let mut meta = tx.open_table(META)?;
        let sequence = meta.get("next_event_sequence")?.map_or(1, |v| v.value());
        meta.insert("next_event_sequence", sequence + 1)?;
        sequence
    };
    let event = Event { id: ids::public_id("evt"), sequence, kind, at_ms: now, channel: channel.to_string(), snapshot };
    tx.open_table(EVENTS)?.insert(sequence, encode(&event).as_slice())?;
    let endpoints: Vec<WebhookEndpoint> = {
        let table = tx.open_table(WEBHOOKS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(decode(entry?.1.value())?);
        }
        out
    };
    let mut deliveries = tx.open_table(DELIVERIES)?;
    let mut pending = tx.open_table(PENDING)?;
    for endpoint in endpoints.iter().filter(|e| e.wants(kind)) {
        let delivery = Delivery {
            endpoint: endpoint.id.clone(),
            sequence,
            event_id: event.id.clone(),
            event_type: kind,
            channel: channel.to_string(),
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            next_attempt_ms: Some(now),
        };
        let key = (endpoint.id.as_str(), sequence);
        deliveries.insert(key, encode(&delivery).as_slice())?;
        pending.insert(key, encode(&Pending { channel: channel.to_string(), next_attempt_ms: now }).as_slice())?;
    }
    Ok(event)
}

/// Removes an endpoint's deliveries (it was deleted).
pub(crate) fn forget_endpoint(tx: &WriteTransaction, endpoint: &str) -> Result<(), StoreError> {
    let range = (endpoint, 0u64)..=(endpoint, u64::MAX);
    tx.open_table(DELIVERIES)?.retain_in(range.clone(), |_, _| false)?;
    tx.open_table(PENDING)?.retain_in(range, |_, _| false)?;
    Ok(())
}

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
