//! The resources as the API and webhooks show them: state records turned into
//! their public JSON shape (RFC 3339 times, URLs, no secrets where they do not
//! belong), with their OpenAPI schemas.

use serde::Serialize;
use utoipa::ToSchema;

use super::media_schemas::{ChannelOutputSchema, EncoderPolicySchema, LatencyModeSchema};
use super::processing_schemas::ProcessingSchema;
use crate::live::figures::LiveFigures;
use crate::state::clock::rfc3339;
use crate::state::records::restream::RestreamReport;
use crate::state::{AlertNotice, Attempt, Playback, PlaybackKey, RecordingNotice, RecordingSettings, Snapshot};
use crate::state::{
    ApiToken, Channel, ChannelState, Delivery, DeliveryState, EncoderMoved, EndReason, Event, EventType, InputSwitched,
    Role, Scope, Session, SessionState, WebhookEndpoint,
};

/// Where the appliance is reached, for the URLs in channel resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrls {
    pub host: String,
    pub rtmp_port: u16,
    pub http_port: u16,
    /// Whether publishers may use WHIP (`/whip/{channel}` on the HTTP port).
    pub whip: bool,
}

impl PublicUrls {
    /// The addresses `config` gives out, with the ports the listeners use.
    pub fn new(config: &crate::config::Config, rtmp_port: u16, http_port: u16) -> PublicUrls {
        PublicUrls { host: config.public_host.clone(), rtmp_port, http_port, whip: config.whip.enabled }
    }
}

/// A channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelResource {
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    pub state: ChannelState,
    /// The secret a publisher uses: a write-level secret, shown only to operators and admins
    /// (tokens of those roles, write tokens, the console); absent for viewers and in webhook payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_key: Option<String>,
    /// `rtmp://host:port/live/<stream key>`: shown only to operators and admins, like `stream_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_url: Option<String>,
    /// The backup encoder's key, when the channel has one (absent in webhook payloads): a publish
    /// on it joins the session in progress as its backup input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_stream_key: Option<String>,
    /// `rtmp://host:port/live/<backup stream key>`, when the channel has one (absent in webhook payloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_publish_url: Option<String>,
    /// The WHIP endpoint (RFC 9725) for browsers and WebRTC encoders, with the stream key as the
    /// bearer token; the console's go-live page is beside it at `/golive/{name}`. Absent when WHIP
    /// is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whip_url: Option<String>,
    /// Whether SRT callers must encrypt with the channel's passphrase (the passphrase is never shown).
    pub srt_encrypted: bool,
    /// The multivariant playlist of the channel's newest session (a private channel's needs
    /// `?token=` with a playback token).
    pub playback_url: String,
    /// `public`, or `private`: playlists and media need a signed playback token.
    pub playback: Playback,
    #[schema(value_type = LatencyModeSchema)]
    pub latency_mode: media::LatencyMode,
    #[schema(value_type = ChannelOutputSchema)]
    pub output: media::ChannelOutput,
    #[schema(value_type = EncoderPolicySchema)]
    pub encoder_policy: media::EncoderPolicy,
    /// What the ladder does to the picture.
    #[schema(value_type = ProcessingSchema)]
    pub processing: media::Processing,
    /// Sessions end when they reach this many seconds; null: no limit.
    pub max_session_seconds: Option<u64>,
    pub recording: RecordingSettings,
    /// How far viewers can rewind a live session, in seconds (0: no DVR window).
    pub dvr_window_seconds: u64,
    /// The DVR multivariant playlist (the whole window; its old part comes from the recording):
    /// present while the channel records with a DVR window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dvr_url: Option<String>,
    /// The session in progress, if any.
    pub current_session: Option<String>,
    /// The live figures of the session in progress (input, encoder, viewers); absent when there is none
    /// and in webhook payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveFigures>,
    /// The session in progress (state, publisher, times, stats so far) in channel reads, so a wall
    /// of channels is one request; absent when there is none, after writes and in webhook payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Box<SessionResource>>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl ChannelResource {
    /// The API's view (with the stream key).
    pub fn full(channel: Channel, urls: &PublicUrls) -> ChannelResource {
        let publish = format!("rtmp://{}:{}/live/{}", urls.host, urls.rtmp_port, channel.stream_key);
        let key = channel.stream_key.clone();
        let backup = channel.backup_stream_key.clone();
        let mut resource = Self::public(channel, urls);
        resource.publish_url = Some(publish);
        resource.stream_key = Some(key);
        resource.backup_publish_url =
            backup.as_ref().map(|key| format!("rtmp://{}:{}/live/{key}", urls.host, urls.rtmp_port));
        resource.backup_stream_key = backup;
        resource
    }

    /// The view of a caller with `role`: the stream key (and the publish URL
    /// that contains it) is a write-level secret, so a viewer does not see it.
    pub fn for_role(mut self, role: Role) -> ChannelResource {
        if role < Role::Operator {
            self.stream_key = None;
            self.publish_url = None;
        }
        self
    }

    /// The webhook payload's view (no stream key).
    pub fn public(channel: Channel, urls: &PublicUrls) -> ChannelResource {
        let created_ms = channel.created_at * 1000;
        ChannelResource {
            playback_url: format!("http://{}:{}/hls/{}/index.m3u8", urls.host, urls.http_port, channel.name),
            dvr_url: (channel.recording.enabled && channel.dvr_window_seconds.0 > 0)
                .then(|| format!("http://{}:{}/hls/{}/dvr.m3u8", urls.host, urls.http_port, channel.name)),
            dvr_window_seconds: channel.dvr_window_seconds.0,
            stream_key: None,
            publish_url: None,
            whip_url: urls.whip.then(|| format!("http://{}:{}/whip/{}", urls.host, urls.http_port, channel.name)),
            backup_stream_key: None,
            backup_publish_url: None,
            srt_encrypted: channel.srt_passphrase.is_some(),
            playback: channel.playback,
            state: channel.state,
            latency_mode: channel.latency_mode,
            output: channel.output,
            encoder_policy: channel.encoder_policy,
            processing: channel.processing,
            max_session_seconds: channel.max_session_seconds,
            recording: channel.recording,
            current_session: channel.current_session,
            live: None,
            session: None,
            created_at: rfc3339(created_ms),
            updated_at: rfc3339(channel.updated_ms.max(created_ms)),
            name: channel.name,
        }
    }
}

/// One publish of a channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionResource {
    /// Unique; sorts by start time; part of the session's media URIs.
    pub id: String,
    pub channel: String,
    pub state: SessionState,
    /// The publisher's address.
    pub peer: String,
    #[schema(format = DateTime)]
    pub started_at: String,
    /// When the first part was published.
    #[schema(format = DateTime)]
    pub live_at: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    pub end_reason: Option<EndReason>,
    /// Why the session failed (state `error`).
    pub error: Option<String>,
    /// How long it ran, or has run so far.
    pub duration_ms: u64,
    /// Media payload bytes received from the publisher: recorded when the session ends, and while it
    /// is in progress as of its last checkpoint (every `sessions.checkpoint_seconds`; `live` has the
    /// figures of this instant).
    pub bytes_in: u64,
    /// Media units (frames) received from the publisher, recorded like `bytes_in`.
    pub units_in: u64,
    /// Units dropped because a stage fell behind, recorded like `bytes_in`.
    pub dropped_units: u64,
    /// The renditions it was packaged into, recorded like `bytes_in`.
    pub renditions: Vec<String>,
    /// The session's media playlist of its first rendition.
    pub playlist_path: String,
    /// The live figures while the session is in progress (input, encoder, viewers); absent once it is
    /// over and in webhook payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveFigures>,
}

impl From<Session> for SessionResource {
    fn from(s: Session) -> SessionResource {
        let first = s.renditions.first().map_or("source", String::as_str);
        SessionResource {
            playlist_path: format!("/hls/{}/{}/{first}/index.m3u8", s.channel, s.id),
            duration_ms: s.duration_ms(),
            started_at: rfc3339(s.started_ms),
            live_at: s.live_ms.map(rfc3339),
            ended_at: s.ended_ms.map(rfc3339),
            id: s.id,
            channel: s.channel,
            state: s.state,
            peer: s.peer,
            end_reason: s.end_reason,
            error: s.error,
            bytes_in: s.bytes_in,
            units_in: s.units_in,
            dropped_units: s.dropped_units,
            renditions: s.renditions,
            live: None,
        }
    }
}

/// An API token (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResource {
    pub id: String,
    pub name: String,
    /// The legacy scope (`read` for viewers, `write` for operators and admins).
    pub scope: Scope,
    pub role: Role,
    /// The only channels the token may see; null: every channel.
    pub channels: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<ApiToken> for TokenResource {
    fn from(t: ApiToken) -> Self {
        let role = t.role();
        TokenResource {
            id: t.id,
            name: t.name,
            scope: role.legacy_scope(),
            role,
            channels: t.channels,
            created_at: rfc3339(t.created_ms),
        }
    }
}

/// A new token with its text: shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub resource: TokenResource,
    /// Send as `Authorization: Bearer <token>`. Only its hash is stored: it cannot be shown again.
    pub token: String,
}

/// A key that signs playback tokens (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlaybackKeyResource {
    /// Named in the tokens it signs.
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it stops verifying the tokens it signed; null: the current key, which signs new tokens.
    #[schema(format = DateTime)]
    pub retired_at: Option<String>,
}

impl From<&PlaybackKey> for PlaybackKeyResource {
    fn from(k: &PlaybackKey) -> Self {
        PlaybackKeyResource {
            id: k.id.clone(),
            created_at: rfc3339(k.created_ms),
            retired_at: k.retired_at_ms.map(rfc3339),
        }
    }
}

/// A webhook endpoint (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookResource {
    pub id: String,
    pub url: String,
    /// Event types delivered; empty: all.
    pub events: Vec<EventType>,
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<WebhookEndpoint> for WebhookResource {
    fn from(w: WebhookEndpoint) -> Self {
        WebhookResource {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            created_at: rfc3339(w.created_ms),
        }
    }
}

/// A new endpoint with its signing secret: shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub resource: WebhookResource,
    /// The HMAC-SHA256 key of the `Webhook-Signature` header.
    pub secret: String,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptResource {
    #[schema(format = DateTime)]
    pub at: String,
    pub duration_ms: u64,
    /// The receiver's HTTP status, when it answered.
    #[schema(minimum = 100, maximum = 599)]
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptResource {
    fn from(a: Attempt) -> Self {
        AttemptResource { at: rfc3339(a.at_ms), duration_ms: a.duration_ms, status: a.status, error: a.error }
    }
}

/// An event's delivery to an endpoint, with every attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryResource {
    pub event_id: String,
    pub sequence: u64,
    pub event_type: EventType,
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: Vec<AttemptResource>,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
}

impl From<Delivery> for DeliveryResource {
    fn from(d: Delivery) -> Self {
        DeliveryResource {
            event_id: d.event_id,
            sequence: d.sequence,
            event_type: d.event_type,
            channel: d.channel,
            state: d.state,
            attempts: d.attempts.into_iter().map(AttemptResource::from).collect(),
            next_attempt_at: d.next_attempt_ms.map(rfc3339),
        }
    }
}

/// The resource an event is about, as it was then.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventData {
    Channel(Box<ChannelResource>),
    Session(Box<SessionResource>),
    /// `session.encoder_moved`: the ladder's move, not the whole session.
    EncoderMoved(EncoderMoved),
    /// `restream.connected`, `restream.failed`: the destination as shown (never its key).
    Restream(RestreamReport),
    /// `recording.ready`, `recording.deleted`, `recording.failed`: the recording.
    Recording(RecordingNotice),
    /// `session.input_switched`: what went on air, from what, and why.
    InputSwitched(InputSwitched),
    /// `alert.raised`, `alert.cleared`: the rule, the session, and how long its condition held or was gone.
    Alert(AlertNotice),
}

/// An event: the body of every webhook delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventResource {
    /// Unique and the same on every retry: de-duplicate on it.
    pub id: String,
    /// Increases by one per event across the appliance.
    pub sequence: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub channel: String,
    pub data: EventData,
}

impl EventResource {
    pub fn new(event: Event, urls: &PublicUrls) -> EventResource {
        let data = match event.snapshot {
            Snapshot::Channel(channel) => EventData::Channel(Box::new(ChannelResource::public(*channel, urls))),
            Snapshot::Session(session) => EventData::Session(Box::new(SessionResource::from(*session))),
            Snapshot::EncoderMoved(moved) => EventData::EncoderMoved(*moved),
            Snapshot::Restream(report) => EventData::Restream(*report),
            Snapshot::Recording(notice) => EventData::Recording(*notice),
            Snapshot::InputSwitched(switched) => EventData::InputSwitched(*switched),
            Snapshot::Alert(notice) => EventData::Alert(*notice),
        };
        EventResource {
            id: event.id,
            sequence: event.sequence,
            kind: event.kind,
            timestamp: rfc3339(event.at_ms),
            channel: event.channel,
            data,
        }
    }
}

/// The appliance is up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the appliance answers.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
}
