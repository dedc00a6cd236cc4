//! The state database: one redb file in the data directory holding channels,
//! stream keys, sessions, API tokens (hashed), webhook endpoints and the event
//! outbox with its deliveries. Every mutation is one write transaction that
//! also appends the events it causes, so a crash loses nothing committed and
//! never an event of a committed change.
//!
//! The layers, each importing only those below it: `records` (plain data
//! and the checks of its fields), `store` (the open file and its
//! transactions, each carrying the audit log entry of the change it makes
//! when the handle is `acting` for someone: `audit_trail`), `rows` (record reads and writes that several transactions
//! share inside one write transaction), and the transactions, one module per
//! resource (`channels`, `sessions`, `tokens`, `users`, `webhooks`, `restreams`,
//! `outbox`, `recordings`, `playback_keys`), which
//! never import each other. `lifecycle` is the pure state machine the
//! transactions apply. One process holds the file at a time (see `store`).

pub mod alerts;
pub mod audit_trail;
pub mod blocking;
pub mod channels;
pub mod clock;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod outbox;
pub mod page;
pub mod playback_keys;
pub mod recordings;
pub mod records;
pub mod restreams;
mod rows;
pub mod sessions;
pub mod store;
pub mod tables;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub use error::StoreError;
pub use lifecycle::{ChannelState, EndReason, Refusal, SessionState};
pub use page::Page;
pub use records::{
    ADMIN_USER, AlertNotice, AlertRule, ApiToken, Attempt, AttemptOutcome, AuditAction, AuditEntry, AuditNote, Channel,
    ChannelPatch, Delivery, DeliveryState, DvrWindow, EncoderMoved, EncoderSlot, Event, EventType, InputRole,
    InputSwitched, NewChannel, NewWebhook, OnAir, PendingHead, Playback, PlaybackKey, RecordRenditions,
    RecordingNotice, RecordingSettings, RecordingState, Role, Scope, Session, SessionCheckpoint, SessionStats,
    Snapshot, SwitchReason, TokenGrant, User, UserPatch, WebhookEndpoint, validate_name,
};
pub use store::Store;
