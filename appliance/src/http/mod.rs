//! The HTTP side of the appliance: the LL-HLS origin (the packager's routes,
//! the catchup of recorded sessions and the live channels' thumbnails, with the viewer count;
//! private channels' playlists and media behind `playback_gate`), the demo and watch pages, the REST API and the
//! console, behind the layer that resolves the client's address; the same
//! app on the owner-only control socket for the local administrator; the
//! Prometheus scrape (`crate::metrics`) and the health probes (`probes`).

pub mod access;
pub mod api;
pub mod catchup;
pub mod client_address;
pub mod console;
pub mod control_socket;
pub mod playback_gate;
pub mod probes;
pub mod problem;
pub mod server;
pub mod thumbnail;
pub mod web;
pub mod whip;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use packager::OriginStore;

use crate::config::Config;
use crate::live::supervisor::Supervisor;
use crate::live::viewers::{Viewers, count_viewers};
use crate::metrics::{MetricsSources, OriginRequests};
use crate::recordings::Recordings;
use crate::state::Store;
use api::ApiState;
use api::resources::PublicUrls;
use client_address::TrustedProxies;
use console::Console;

/// What the HTTP side serves from.
pub struct Sources<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub origin: Arc<OriginStore>,
    pub live: Supervisor,
    pub viewers: Arc<Viewers>,
    pub recordings: Recordings,
    /// Alerts raised now and counts (the API's list, `/metrics`).
    pub alerts: crate::alerts::Alerts,
    /// The latest picture of each live channel.
    pub thumbnails: Arc<crate::live::thumbnails::LatestThumbnails>,
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The SRT inputs' link figures (the publish routing writes them).
    pub srt_links: Arc<crate::live::srt_links::SrtLinks>,
    /// The listeners' connection counts (for `/metrics`).
    pub listeners: crate::metrics::Listeners,
    /// The WHIP ingest, when enabled.
    pub whip: Option<whip::Whip>,
}

/// The whole HTTP app: origin, pages, API and console. Fails on a bad
/// `http.trusted_proxies` (validated config makes that unreachable in `serve`).
pub fn app(sources: Sources<'_>) -> anyhow::Result<Router> {
    let config = sources.config;
    let urls = PublicUrls::new(config, sources.rtmp_addr.port(), sources.http_addr.port());
    let mut state = ApiState::new(sources.store.clone(), sources.live.clone(), urls)?;
    state.srt_links = sources.srt_links;
    state.data_dir = Arc::new(config.data_dir.clone());
    state.viewers = sources.viewers.clone();
    state.recordings = Some(sources.recordings.clone());
    state.alerts = sources.alerts.active.clone();
    state.limit_rates(&config.api);
    state.playback = Arc::new(crate::playback::PlaybackAccess::load(sources.store)?);
    state.playback_key_overlap_seconds = config.playback.key_overlap_seconds;
    let playback = state.playback.clone();
    let console = Console::open(
        config.data_dir.clone(),
        sources.store.clone(),
        state.console.clone(),
        state.password_workers.clone(),
    );
    let requests = Arc::new(OriginRequests::default());
    let metrics = crate::metrics::route::router(
        MetricsSources {
            live: sources.live.clone(),
            viewers: sources.viewers.clone(),
            origin: sources.origin.clone(),
            requests: requests.clone(),
            store: sources.store.clone(),
            recordings: Some(sources.recordings.clone()),
            data_dir: config.data_dir.clone(),
            alerts: sources.alerts.counters.clone(),
            listeners: sources.listeners,
        },
        config.metrics.require_token.then(|| state.clone()),
    );
    let probes = probes::router(probes::Probes {
        live: sources.live.clone(),
        store: sources.store.clone(),
        data_dir: config.data_dir.clone(),
        rtmp_addr: sources.rtmp_addr,
    });
    let api = api::router(state).merge(console::router(console));
    let counted = axum::middleware::from_fn_with_state(sources.viewers, count_viewers);
    let proxies = TrustedProxies::parse(&config.http.trusted_proxies)
        .map_err(|reason| anyhow::anyhow!("http.trusted_proxies: {reason}"))?;
    // Outermost: every layer below (rate limits, sign-in limit, viewers) sees the client's address.
    let resolved = axum::middleware::from_fn_with_state(proxies, client_address::resolve);
    // Catchup is not counted: `viewers` are the live stream's.
    let accounted = axum::middleware::from_fn_with_state(requests, crate::metrics::origin_requests::count_requests);
    let origin = packager::router(sources.origin)
        .layer(counted)
        .layer(accounted)
        .merge(catchup::router(sources.recordings))
        .merge(thumbnail::router(sources.thumbnails))
        .layer(axum::middleware::from_fn_with_state(playback, playback_gate::gate));
    let mut app = origin.merge(web::router()).merge(api).merge(metrics).merge(probes);
    if let Some(whip) = sources.whip {
        app = app.merge(whip::router(whip, sources.store.clone()));
    }
    Ok(app.layer(resolved))
}
