//! The redb schema: every table of the state file in one place. Values are
//! JSON (serde) so records gain fields with defaults and old files keep
//! reading; keys are chosen so that range scans give the orders lists need.

use redb::TableDefinition;

/// channel name -> `Channel`.
pub const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("channels");
/// stream key -> channel name (exactly one key per channel; a rotated key is removed at once).
pub const STREAM_KEYS: TableDefinition<&str, &str> = TableDefinition::new("stream_keys");
/// (channel name, session id) -> `Session`. Session ids sort by start time.
pub const SESSIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("sessions");
/// token id -> `ApiToken` (the secret's SHA-256, never the secret).
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// endpoint id -> `WebhookEndpoint`.
pub const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// event sequence number -> `Event` (the outbox; written in the transaction that changed the state).
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// (endpoint id, event sequence) -> `Delivery`: one per event an endpoint subscribed to, with its attempts.
pub const DELIVERIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("deliveries");
/// (endpoint id, event sequence) -> `PendingDelivery`: the deliveries still to make (the worker's queue).
pub const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("pending_deliveries");
/// (channel name, destination id) -> `RestreamDestination`.
pub const RESTREAMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("restreams");
/// user name -> `User` (console users besides the built-in admin; the password's argon2id hash).
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// audit sequence -> `AuditEntry` (who changed what; written in the change's transaction).
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// key id -> `PlaybackKey` (the secrets that sign private channels' playback tokens).
pub const PLAYBACK_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("playback_keys");
/// Counters: `next_event_sequence`, `next_audit_sequence`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Creates every table (a no-op when they exist).
pub fn create_all(tx: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    tx.open_table(CHANNELS)?;
    tx.open_table(STREAM_KEYS)?;
    tx.open_table(SESSIONS)?;
    tx.open_table(TOKENS)?;
    tx.open_table(WEBHOOKS)?;
    tx.open_table(EVENTS)?;
    tx.open_table(DELIVERIES)?;
    tx.open_table(PENDING)?;
    tx.open_table(RESTREAMS)?;
    tx.open_table(USERS)?;
    tx.open_table(AUDIT)?;
    tx.open_table(PLAYBACK_KEYS)?;
    tx.open_table(META)?;
    Ok(())
}
