//! What the API's handlers share: the store, the live sessions, the encoder
//! slots, the public URLs, the console's sessions and the rate limits, and
//! how a channel or session is shown with its live figures.

use std::sync::Arc;
use std::time::Instant;

use super::resources::{ChannelResource, PublicUrls, SessionResource};
use crate::http::access::console_sessions::Sessions;
use crate::http::access::rate_limit::RateLimits;
use crate::http::console::password_workers::{DEFAULT_QUEUE, PasswordWorkers, default_workers};
use crate::live::figures::LiveFigures;
use crate::live::srt_links::SrtLinks;
use crate::live::supervisor::Supervisor;
use crate::live::viewers::Viewers;
use crate::playback::PlaybackAccess;
use crate::recordings::Recordings;
use crate::state::{Channel, Session, Store};

/// The prefix of every API route.
pub const PREFIX: &str = "/api/v1";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    /// The live sessions: their registry, the encoders, and the commands that end them.
    pub live: Supervisor,
    pub urls: Arc<PublicUrls>,
    pub started: Instant,
    /// The OpenAPI document, rendered once.
    pub openapi_json: Arc<String>,
    /// Signed-in console sessions (they stand in for a write token).
    pub console: Arc<Sessions>,
    /// The data directory (the system route reports its disk).
    pub data_dir: Arc<std::path::PathBuf>,
    /// Players per channel (the live figures' viewers).
    pub viewers: Arc<Viewers>,
    /// Request budgets per client, and failed authentications per address.
    pub limits: Arc<RateLimits>,
    /// The threads that hash passwords (the console's sign-in shares them).
    pub password_workers: Arc<PasswordWorkers>,
    /// Recorded sessions on disk (absent in states built without a data directory).
    pub recordings: Option<Recordings>,
    /// The alerts raised now.
    pub alerts: Arc<crate::alerts::ActiveAlerts>,
    /// The SRT inputs' link figures, as ingest reports them.
    pub srt_links: Arc<SrtLinks>,
    /// The private channels and playback signing keys the origin checks (refreshed after changes).
    pub playback: Arc<PlaybackAccess>,
    /// How long a rotated playback key keeps verifying by default (`playback.key_overlap_seconds`).
    pub playback_key_overlap_seconds: u64,
}

impl ApiState {
    /// Starts the password workers (their threads end when the last clone goes).
    pub fn new(store: Store, live: Supervisor, urls: PublicUrls) -> std::io::Result<ApiState> {
        let limits = Arc::new(RateLimits::default());
        let password_workers = Arc::new(PasswordWorkers::start(default_workers(), DEFAULT_QUEUE)?);
        Ok(ApiState {
            store,
            live,
            urls: Arc::new(urls),
            started: Instant::now(),
            openapi_json: Arc::new(String::new()),
            console: Arc::new(Sessions::new(limits.failures(), limits.sign_in_per_user(), limits.sign_in_total())),
            data_dir: Arc::new(std::path::PathBuf::from(".")),
            viewers: Arc::default(),
            limits,
            password_workers,
            recordings: None,
            alerts: Arc::default(),
            srt_links: Arc::default(),
            playback: Arc::default(),
            playback_key_overlap_seconds: crate::config::PlaybackConfig::default().key_overlap_seconds,
        })
    }

    /// Applies `config`'s rate limits. The console's sign-in shares the
    /// failed-authentication limit, so its sessions are renewed too: call
    /// before anything signs in.
    pub fn limit_rates(&mut self, config: &crate::config::ApiConfig) {
        let limits = Arc::new(RateLimits::new(config));
        self.console = Arc::new(Sessions::new(limits.failures(), limits.sign_in_per_user(), limits.sign_in_total()));
        self.limits = limits;
    }
}

impl ApiState {
    /// The live figures of `channel`'s session in progress if it is `session`
    /// (`viewers`: the channel's, when already counted).
    pub fn live(&self, channel: &str, session: &str, viewers: Option<u32>) -> Option<LiveFigures> {
        let entry = self.live.registry().session(channel, session)?;
        let now = Instant::now();
        let viewers = viewers.unwrap_or_else(|| self.viewers.count(channel, now));
        let mut figures = entry.figures.figures(viewers, now);
        figures.outputs = entry.outputs();
        (figures.on_air, figures.switches, figures.inputs) = entry.inputs.figures(now);
        for input in &mut figures.inputs {
            input.srt = self.srt_links.of_peer(&input.peer);
        }
        Some(figures)
    }

    /// A channel as the API shows it, with its session's live figures.
    pub fn channel_resource(&self, channel: Channel, viewers: Option<u32>) -> ChannelResource {
        let live = channel.current_session.as_deref().and_then(|s| self.live(&channel.name, s, viewers));
        let mut resource = ChannelResource::full(channel, &self.urls);
        resource.live = live;
        resource
    }

    /// A session as the API shows it, with its live figures while in progress.
    pub fn session_resource(&self, session: Session) -> SessionResource {
        let live = if session.state.is_final() { None } else { self.live(&session.channel, &session.id, None) };
        let mut resource = SessionResource::from(session);
        resource.live = live;
        resource
    }
}
