//! Reading and writing records inside one write transaction, for the steps
//! that several transactions share: a channel with its current session's
//! lifecycle, the end of a session, and appending an event with its
//! deliveries. Records are JSON in their tables (see `tables`).

use redb::{ReadableTable, WriteTransaction};

use super::error::StoreError;
use super::lifecycle::{self, EndReason, Event as Step, Lifecycle, SessionState};
use super::records::event::Pending;
use super::records::{
    Channel, Delivery, DeliveryState, Event, EventType, Session, SessionStats, Snapshot, WebhookEndpoint,
};
use super::tables::{CHANNELS, DELIVERIES, EVENTS, META, PENDING, SESSIONS, WEBHOOKS};
use super::{clock, ids};

/// Reads a JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Writes a JSON record.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state records always serialise")
}

/// Reads a channel; `NotFound` when there is none of that name.
pub(crate) fn load_channel(tx: &WriteTransaction, name: &str) -> Result<Channel, StoreError> {
    let table = tx.open_table(CHANNELS)?;
    let json = table.get(name)?.ok_or_else(|| StoreError::not_found("channel", name))?;
    decode(json.value())
}

pub(crate) fn save_channel(tx: &WriteTransaction, channel: &Channel) -> Result<(), StoreError> {
    tx.open_table(CHANNELS)?.insert(channel.name.as_str(), encode(channel).as_slice())?;
    Ok(())
}

/// The channel's state with its current session's.
pub(crate) fn lifecycle_of(
    tx: &WriteTransaction,
    channel: &Channel,
) -> Result<(Lifecycle, Option<Session>), StoreError> {
    let session = match &channel.current_session {
        Some(id) => load_session(tx, &channel.name, id)?,
        None => None,
    };
    Ok((Lifecycle { channel: channel.state, session: session.as_ref().map(|s| s.state) }, session))
}

pub(crate) fn load_session(tx: &WriteTransaction, channel: &str, id: &str) -> Result<Option<Session>, StoreError> {
    tx.open_table(SESSIONS)?.get((channel, id))?.map(|v| decode(v.value())).transpose()
}

pub(crate) fn save_session(tx: &WriteTransaction, session: &Session) -> Result<(), StoreError> {
    tx.open_table(SESSIONS)?.insert((session.channel.as_str(), session.id.as_str()), encode(session).as_slice())?;
    Ok(())
}

/// A session's step refused by the lifecycle.
pub(crate) fn session_refused(id: &str, refusal: lifecycle::Refusal) -> StoreError {
    StoreError::Refused { what: "session", id: id.to_string(), refusal }
}

/// Ends (`End`) or fails (`Fail`) the channel's current session inside `tx`,
/// clears it from the channel and appends `session.ended` or `session.error`.
pub(crate) fn finish_session(
    tx: &WriteTransaction,
    channel: &mut Channel,
    mut session: Session,
    ending: Step,
    stats: Option<SessionStats>,
    error: Option<String>,
) -> Result<Session, StoreError> {
    let now = Lifecycle { channel: channel.state, session: Some(session.state) };
    let step = lifecycle::transition(now, ending).map_err(|r| session_refused(&session.id, r))?;
    session.state = step.next.session.unwrap_or(SessionState::Ended);
    session.ended_ms = Some(match ending {
        // Found in progress at start-up: it ended after its last checkpoint,
        // the last moment it is known to have run (the restart can be much later).
        Step::End(EndReason::ApplianceRestart) => session.checkpoint_ms.unwrap_or_else(clock::now_ms),
        _ => clock::now_ms(),
    });
    if let Step::End(reason) = ending {
        session.end_reason = Some(reason);
    }
    session.error = error;
    if let Some(stats) = stats {
        stats.apply(&mut session);
    }
    save_session(tx, &session)?;
    channel.current_session = None;
    save_channel(tx, channel)?;
    let kind = if session.state == SessionState::Error { EventType::SessionError } else { EventType::SessionEnded };
    append_event(tx, kind, &channel.name, Snapshot::Session(Box::new(session.clone())))?;
    Ok(session)
}

/// Takes the next number of the counter `name` in `META` (from 1).
pub(crate) fn next_sequence(tx: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut meta = tx.open_table(META)?;
    let sequence = meta.get(name)?.map_or(1, |v| v.value());
    meta.insert(name, sequence + 1)?;
    Ok(sequence)
}

/// Appends an event inside `tx` and queues it for every subscribed endpoint.
pub(crate) fn append_event(
    tx: &WriteTransaction,
    kind: EventType,
    channel: &str,
    snapshot: Snapshot,
) -> Result<Event, StoreError> {
    let now = clock::now_ms();
    let sequence = next_sequence(tx, "next_event_sequence")?;
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
