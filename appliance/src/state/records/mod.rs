//! The state database's records: plain data (what is stored, what creating
//! or changing it takes) and the checks of their fields, with no access to
//! the file. The transactions (`state::channels`, `state::sessions`, ...)
//! read and write them.

pub mod alert;
pub mod channel;
pub mod dvr;
pub mod event;
pub mod input_switch;
pub mod recording;
pub mod restream;
pub mod session;
pub mod token;
pub mod webhook;

pub use alert::{AlertNotice, AlertRule};
pub use channel::{
    Channel, ChannelPatch, InputRole, MAX_RUNGS, MAX_SESSION_SECONDS, NAME_PATTERN, NewChannel, validate_name,
};
pub use dvr::{DEFAULT_DVR_SECONDS, DvrWindow, MAX_DVR_SECONDS};
pub use event::{Attempt, AttemptOutcome, Delivery, DeliveryState, Event, EventType, PendingHead, Snapshot};
pub use input_switch::{InputSwitched, OnAir, SwitchReason};
pub use recording::{RecordRenditions, RecordingNotice, RecordingSettings, RecordingState};
pub use session::{EncoderMoved, EncoderSlot, Session, SessionCheckpoint, SessionStats};
pub use token::{ApiToken, Scope, TOKEN_NAME_PATTERN};
pub use webhook::{DESCRIPTION_PATTERN, MAX_URL_LEN, NewWebhook, SECRET_PATTERN, URL_PATTERN, WebhookEndpoint};
