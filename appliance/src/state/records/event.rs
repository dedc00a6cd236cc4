//! An event of the outbox (what changed, with a snapshot of the resource as
//! it was), its deliveries to webhook endpoints with their attempts, and the
//! delivery worker's queue entries.

use serde::{Deserialize, Serialize};

use super::alert::AlertNotice;
use super::channel::Channel;
use super::input_switch::InputSwitched;
use super::recording::RecordingNotice;
use super::restream::RestreamReport;
use super::session::{EncoderMoved, Session};

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
    /// A restream destination took the stream (at the session's start or after a retry).
    #[serde(rename = "restream.connected")]
    RestreamConnected,
    /// A restream destination refused or dropped the stream; it is retried with backoff.
    #[serde(rename = "restream.failed")]
    RestreamFailed,
    /// A session's catchup is playable (its recording ended, or was closed after a restart).
    #[serde(rename = "recording.ready")]
    RecordingReady,
    /// A recording was deleted (retention, the disk quota, or the API).
    #[serde(rename = "recording.deleted")]
    RecordingDeleted,
    /// Recording stopped (a full disk); it resumes by itself when there is room.
    #[serde(rename = "recording.failed")]
    RecordingFailed,
    /// A session switched between its primary input, its backup and the slate.
    #[serde(rename = "session.input_switched")]
    SessionInputSwitched,
    /// An alert's condition held for its rule's time (see `alerts`).
    #[serde(rename = "alert.raised")]
    AlertRaised,
    /// A raised alert's condition was gone for its rule's time, or its session ended.
    #[serde(rename = "alert.cleared")]
    AlertCleared,
}

impl EventType {
    pub const ALL: [EventType; 18] = [
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
        EventType::RestreamConnected,
        EventType::RestreamFailed,
        EventType::RecordingReady,
        EventType::RecordingDeleted,
        EventType::RecordingFailed,
        EventType::SessionInputSwitched,
        EventType::AlertRaised,
        EventType::AlertCleared,
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
            EventType::RestreamConnected => "restream.connected",
            EventType::RestreamFailed => "restream.failed",
            EventType::RecordingReady => "recording.ready",
            EventType::RecordingDeleted => "recording.deleted",
            EventType::RecordingFailed => "recording.failed",
            EventType::SessionInputSwitched => "session.input_switched",
            EventType::AlertRaised => "alert.raised",
            EventType::AlertCleared => "alert.cleared",
        }
    }
}

/// The resource an event is about, as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Snapshot {
    Channel(Box<Channel>),
    Session(Box<Session>),
    EncoderMoved(Box<EncoderMoved>),
    Restream(Box<RestreamReport>),
    Recording(Box<RecordingNotice>),
    InputSwitched(Box<InputSwitched>),
    Alert(Box<AlertNotice>),
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
pub(crate) struct Pending {
    pub channel: String,
    pub next_attempt_ms: u64,
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
