//! The state database's records: plain data (what is stored, what creating
//! or changing it takes) and the checks of their fields, with no access to
//! the file. The transactions (`state::channels`, `state::sessions`, ...)
//! read and write them.

pub mod alert;
pub mod audit;
pub mod channel;
pub mod dvr;
pub mod event;
pub mod input_switch;
pub mod playback;
pub mod recording;
pub mod restream;
pub mod session;
pub mod sound;
pub mod token;
pub mod user;
pub mod webhook;

pub use alert::{AlertNotice, AlertRule};
pub use audit::{AuditAction, AuditEntry, AuditNote};
pub use channel::{
    Channel, ChannelPatch, InputRole, MAX_CROP, MAX_RUNGS, MAX_SESSION_SECONDS, MAX_SHARPEN_PERCENT, NAME_PATTERN,
    NewChannel, validate_name,
};
pub use dvr::{DEFAULT_DVR_SECONDS, DvrWindow, MAX_DVR_SECONDS};
pub use event::{Attempt, AttemptOutcome, Delivery, DeliveryState, Event, EventType, PendingHead, Snapshot};
pub use input_switch::{InputSwitched, OnAir, SwitchReason};
pub use playback::{Playback, PlaybackKey};
pub use recording::{RecordRenditions, RecordingNotice, RecordingSettings, RecordingState};
pub use session::{EncoderMoved, EncoderSlot, Session, SessionCheckpoint, SessionStats};
pub use token::{ApiToken, MAX_TOKEN_CHANNELS, Role, Scope, TOKEN_NAME_PATTERN, TokenGrant};
pub use user::{ADMIN_USER, USER_NAME_PATTERN, User, UserPatch};
pub use webhook::{DESCRIPTION_PATTERN, MAX_URL_LEN, NewWebhook, SECRET_PATTERN, URL_PATTERN, WebhookEndpoint};
