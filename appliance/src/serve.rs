//! `appliance serve`: binds the RTMP and HTTP listeners, wires ingest to the
//! live sessions' supervisor through the publish routing, serves the origin,
//! the API and the pages, and drains on shutdown (every live stream gets its
//! ENDLIST).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use packager::OriginStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::live::routing::PublishRouting;
use crate::live::supervisor::{LiveConfig, Supervisor};
use crate::live::thumbnails::LatestThumbnails;
use crate::live::transcode::Transcoder;
use crate::live::viewers::Viewers;
use crate::recordings::Recordings;
use crate::state::{EndReason, Store, StoreError};

/// How long in-flight HTTP requests get to finish at shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// A running appliance: its bound addresses and shared state.
pub struct Appliance {
    pub rtmp_addr: SocketAddr,
    /// The SRT listener's address; `None` when `[srt] enabled = false`.
    pub srt_addr: Option<SocketAddr>,
    pub http_addr: SocketAddr,
    /// The HTTPS listener's address, when TLS is on.
    pub https_addr: Option<SocketAddr>,
    /// The RTMPS listener's address, when TLS is on and RTMPS is not turned off.
    pub rtmps_addr: Option<SocketAddr>,
    /// The HTTPS certificate's SHA-256 fingerprint, when TLS is on.
    pub tls_fingerprint: Option<String>,
    pub store: Store,
    pub origin: Arc<OriginStore>,
    /// The owner of every live session, and the registry of what is live.
    pub live: Supervisor,
    /// Players per channel, counted from the origin's requests.
    pub viewers: Arc<Viewers>,
    /// The HTTP listener's open connections.
    pub http_connections: Arc<crate::http::server::registry::Registry>,
    /// Recorded sessions on the data partition.
    pub recordings: Recordings,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Appliance {
    /// Opens state and binds every listener; returns once both accept connections.
    pub async fn start(config: &Config) -> anyhow::Result<Appliance> {
        let tls = match config.tls_source() {
            Some(source) => Some(crate::tls::TlsIdentity::load(&source, &config.data_dir)?),
            None => None,
        };
        let store = Store::open(&config.data_dir)?;
        store.set_audit_retention(crate::state::audit_trail::AuditRetention {
            max_entries: config.audit.max_entries,
            max_age_ms: config.audit.max_age_days.saturating_mul(86_400_000),
        });
        recover(&store)?;
        let recordings = Recordings::new(&config.data_dir, store.clone(), config.recording_quota());
        let closing = recordings.clone();
        match tokio::task::spawn_blocking(move || closing.recover()).await? {
            Ok(closed) if closed > 0 => tracing::warn!(closed, "recordings interrupted by the last stop were closed"),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(alert = "recordings", error = %e, "cannot close the recordings the last stop interrupted")
            }
        }
        let origin = Arc::new(OriginStore::new(Duration::from_secs(config.hls.retention_seconds)));
        let transcoder = Transcoder::new(&config.data_dir);
        // Probe the encoders at start (on a blocking thread), not at the first ladder publish.
        let probing = transcoder.clone();
        tokio::spawn(async move {
            probing.ready().await;
        });
        let thumbnails = Arc::new(LatestThumbnails::new(config.thumbnail_settings()));
        let live = Supervisor::spawn(LiveConfig {
            store: store.clone(),
            origin: origin.clone(),
            transcoder,
            part_target: config.part_target(),
            window_seconds: config.hls.window_seconds,
            recordings: recordings.clone(),
            failover: config.failover_times(),
            thumbnails: thumbnails.clone(),
        });
        let routing = Arc::new(PublishRouting::new(store.clone(), live.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);

        let rtmp = ingest::RtmpServer::bind(config.rtmp_addr(), config.ingest(), routing.clone())
            .await
            .with_context(|| format!("cannot listen for RTMP on {}", config.rtmp.listen))?;
        let rtmp_addr = rtmp.local_addr()?;
        let rtmps = match (&tls, config.rtmps_addr()) {
            (Some(identity), Some(addr)) => {
                let server = ingest::RtmpServer::bind(addr, config.ingest(), routing.clone())
                    .await
                    .with_context(|| format!("cannot listen for RTMPS on {}", config.tls.rtmps_listen))?
                    .with_tls(tokio_rustls::TlsAcceptor::from(identity.server_config.clone()));
                tracing::info!(rtmps_addr = %server.local_addr()?, "rtmps listening");
                Some(server)
            }
            _ => None,
        };
        let rtmps_addr = rtmps.as_ref().map(|s| s.local_addr()).transpose()?;
        let srt = match config.srt() {
            Some((addr, settings)) => Some(
                ingest::SrtServer::bind(addr, settings, routing.clone())
                    .await
                    .with_context(|| format!("cannot listen for SRT on {}", config.srt.listen))?,
            ),
            None => None,
        };
        let srt_addr = srt.as_ref().map(ingest::SrtServer::local_addr);
        let http = tokio::net::TcpListener::bind(config.http_addr())
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", config.http.listen))?;
        let http_addr = http.local_addr()?;
        tracing::info!(%rtmp_addr, "rtmp listening");
        tracing::info!(%http_addr, "http listening");
        let https = match &tls {
            Some(identity) => {
                let listener = tokio::net::TcpListener::bind(config.https_addr())
                    .await
                    .with_context(|| format!("cannot listen for HTTPS on {}", config.tls.https_listen))?;
                let https_addr = listener.local_addr()?;
                tracing::info!(%https_addr, fingerprint = %identity.fingerprint, self_signed = identity.self_signed, "https listening (HTTP/2 and HTTP/1.1)");
                Some((listener, https_addr))
            }
            None => None,
        };

        let mut listeners = crate::metrics::Listeners::default();
        listeners.add("rtmp", crate::metrics::ListenerMeter::Rtmp(rtmp.meter()));
        if let Some(rtmps) = &rtmps {
            listeners.add("rtmps", crate::metrics::ListenerMeter::Rtmp(rtmps.meter()));
        }
        // The HTTP servers exist before the app so that `/metrics` can count their connections.
        let mut limits = config.http_limits();
        limits.caps.total = crate::fd_limit::fit(limits.caps.total, config.rtmp.max_connections);
        let http_server = crate::http::server::HttpServer::new(http, limits);
        let http_connections = http_server.registry();
        listeners.add("http", crate::metrics::ListenerMeter::Http(http_connections.clone()));
        let https_addr = https.as_ref().map(|(_, addr)| *addr);
        let https_server = match (https, &tls) {
            (Some((listener, _)), Some(identity)) => {
                // Its own caps and registry: a flood on one listener leaves the other's room alone.
                let mut limits = config.http_limits();
                limits.caps.total = crate::fd_limit::fit(limits.caps.total, config.rtmp.max_connections);
                let server = crate::http::server::HttpServer::new(listener, limits).with_tls(identity);
                listeners.add("https", crate::metrics::ListenerMeter::Http(server.registry()));
                Some(server)
            }
            _ => None,
        };

        let mut tasks = Vec::new();
        for server in std::iter::once(rtmp).chain(rtmps) {
            let mut stop = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                server
                    .run(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            }));
        }
        if let (Some(srt), Some((_, settings))) = (srt, config.srt()) {
            let addr = srt.local_addr();
            tracing::info!(srt_addr = %addr, "srt listening");
            // srt-tokio's listener can stop on a malformed handshake: bind it again rather than stay deaf.
            let (mut first, routing, stop) = (Some(srt), routing.clone(), shutdown_rx.clone());
            let serve = move |_attempt| {
                let (first, routing, settings, mut stop) =
                    (first.take(), routing.clone(), settings.clone(), stop.clone());
                async move {
                    let server = match first {
                        Some(server) => server,
                        None => match ingest::SrtServer::bind(addr, settings, routing).await {
                            Ok(server) => server,
                            Err(error) => {
                                tracing::error!(%addr, %error, "cannot bind the SRT listener again");
                                return;
                            }
                        },
                    };
                    server
                        .run(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await;
                }
            };
            let restart_stop = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                crate::listener_restart::keep_serving("SRT", serve, restart_stop).await;
            }));
        }
        let viewers = Arc::new(Viewers::default());
        let urls = crate::http::api::resources::PublicUrls::new(config, rtmp_addr.port(), http_addr.port());
        tasks.push(crate::webhooks::spawn(
            store.clone(),
            Arc::new(urls),
            (&config.webhooks).into(),
            shutdown_rx.clone(),
        ));
        tasks.push(live.spawn_checkpointer(store.clone(), config.checkpoint_interval(), shutdown_rx.clone()));
        tasks.push(recordings.spawn_sweeper(Duration::from_secs(config.recording.sweep_seconds), shutdown_rx.clone()));
        let alerts = crate::alerts::Alerts::default();
        tasks.push(crate::alerts::input_lost::spawn(
            live.registry().clone(),
            store.clone(),
            alerts.clone(),
            Duration::from_millis(config.alerts.input_lost_raise_ms),
            Duration::from_millis(config.alerts.input_lost_clear_ms),
            shutdown_rx.clone(),
        ));
        let app = crate::http::app(crate::http::Sources {
            config,
            store: &store,
            origin: origin.clone(),
            live: live.clone(),
            viewers: viewers.clone(),
            recordings: recordings.clone(),
            alerts,
            thumbnails,
            rtmp_addr,
            http_addr,
            srt_links: routing.srt_links(),
            listeners,
            whip: config.whip().map(|settings| ingest::WhipServer::new(settings, routing.clone(), shutdown_rx.clone())),
        })?;
        // The control socket: the same app for the local administrator (the CLI).
        let control = crate::http::control_socket::ControlSocket::bind(&config.data_dir)?;
        tracing::info!(path = %control.path().display(), "control socket listening");
        tasks.push(control.serve(app.clone(), shutdown_rx.clone()));
        tasks.push(tokio::spawn(http_server.run(app.clone(), shutdown_rx.clone())));
        if let Some(server) = https_server {
            tasks.push(tokio::spawn(server.run(app, shutdown_rx.clone())));
        }
        let sweeper_origin = origin.clone();
        let sweeper_viewers = viewers.clone();
        let mut stop = shutdown_rx;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        sweeper_origin.sweep(std::time::Instant::now());
                        sweeper_viewers.sweep(std::time::Instant::now());
                    }
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
        Ok(Appliance {
            rtmp_addr,
            srt_addr,
            http_addr,
            https_addr,
            rtmps_addr,
            tls_fingerprint: tls.map(|identity| identity.fingerprint),
            store,
            origin,
            live,
            viewers,
            http_connections,
            recordings,
            shutdown,
            tasks,
        })
    }

    /// What systemd shows as STATUS: channels live, sessions, encoder usage.
    pub fn status(&self) -> crate::systemd_notify::ServiceStatus {
        let sessions = self.live.registry().len();
        // Encoder sessions leased and available over the healthy devices, once probed.
        let encoders = self.live.transcoder().slot_usage().map(|devices| {
            devices.iter().filter(|d| d.healthy).fold((0, 0), |(used, total), d| {
                (used + d.used.sessions as usize, total + d.capacity.sessions as usize)
            })
        });
        crate::systemd_notify::ServiceStatus { channels_live: sessions, sessions, encoders }
    }

    /// A receiver that turns true when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops accepting, ends every live stream, and waits (bounded) for the listeners to drain.
    pub async fn shutdown(self) {
        // Every session in progress ends (`appliance-shutdown`): publishers are
        // disconnected, playlists get ENDLIST, and the records say why.
        self.live.end_all(EndReason::ApplianceShutdown, DRAIN_DEADLINE).await;
        let _ = self.shutdown.send(true);
        let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
            for task in self.tasks {
                let _ = task.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown deadline passed with requests still in flight");
        }
    }
}

/// At start-up, before any publish is accepted: sessions that were in
/// progress when the last process stopped are ended with `appliance-restart`.
pub fn recover(store: &Store) -> Result<(), StoreError> {
    for session in store.recover_sessions()? {
        tracing::warn!(channel = %session.channel, session = %session.id, "session was in progress when the appliance stopped; recorded as ended (appliance-restart)");
    }
    Ok(())
}

/// The `serve` command: runs until SIGINT or SIGTERM.
pub async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let appliance = Appliance::start(&config).await?;
    let host = &config.public_host;
    let web = format!("http://{host}:{}", appliance.http_addr.port());
    if demo {
        let channel = match appliance.store.get("demo")? {
            Some(channel) => channel,
            None => appliance.store.add("demo", media::LatencyMode::UltraLow)?,
        };
        tokio::spawn(crate::demo::run_publisher(appliance.rtmp_addr, channel.stream_key, appliance.shutdown_signal()));
        println!("demo channel publishing; watch it at {web}/?channel=demo");
        println!("playlist for any HLS player: {web}/hls/demo/index.m3u8");
    } else {
        println!("console: {web}/console/");
    }
    main_loop(&appliance).await;
    tracing::info!("shutting down");
    appliance.shutdown().await;
    Ok(())
}

/// The supervisor's main loop: answers the systemd watchdog's probes (READY
/// was sent once every listener was bound) until SIGINT or SIGTERM.
async fn main_loop(appliance: &Appliance) {
    use crate::systemd_notify::{self, Notifier};
    let notifier = Notifier::from_env();
    let (mut probes, _watchdog) = match notifier.spawn_watchdog() {
        Some((probes, thread)) => (Some(probes), Some(thread)),
        None => (None, None),
    };
    notifier.ready(&appliance.status());
    let mut wedge = debug_wedge_signal();
    let signal = wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            Some(probe) = async { probes.as_mut()?.recv().await } => probe.answer(appliance.status()),
            Some(()) = async { wedge.as_mut()?.recv().await } => systemd_notify::wedge_forever(),
        }
    }
    notifier.stopping("stopping: ending sessions");
}

/// SIGUSR2, only when the hidden debug trigger is armed (see `systemd_notify`).
fn debug_wedge_signal() -> Option<tokio::signal::unix::Signal> {
    if !crate::systemd_notify::debug_wedge_armed(|name| std::env::var(name).ok()) {
        return None;
    }
    tracing::warn!("debug: SIGUSR2 wedges the main loop ({} is set)", crate::systemd_notify::DEBUG_WEDGE_ENV);
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2()).ok()
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
