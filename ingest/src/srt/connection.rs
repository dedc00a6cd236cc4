//! One SRT caller: decided before its handshake is answered (streamid,
//! encryption, the handler's `srt_access`), granted by `on_publish` once
//! connected and before any media is read, then its MPEG-TS demuxed onto
//! the grant's sink until it leaves, goes idle or the server stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use media::{Arrival, SendError, StreamEvent, UnitSender};
use srt_protocol::packet::CoreRejectReason;
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{KeySize, Passphrase};
use srt_tokio::{ConnectionRequest, SrtSocket};
use tokio::sync::watch;

use super::link_stats::link_stats;
use super::srt_config::SrtConfig;
use super::stream_id::parse_stream_id;
use crate::handler::{IngestHandler, PublishRequest, Refusal, RefusalKind, SRT_APP, key_prefix};
use crate::refusal_log::RefusalLog;
use crate::ts::TsDemuxer;

/// How long the sink may take to accept a new track set before the publish is ended.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// The SRT reject code a refusal is sent with.
fn reject_reason(kind: RefusalKind) -> RejectReason {
    match kind {
        RefusalKind::UnknownKey => RejectReason::Server(ServerRejectReason::Forbidden),
        RefusalKind::AlreadyLive => RejectReason::Server(ServerRejectReason::Conflict),
        RefusalKind::Unavailable => RejectReason::Server(ServerRejectReason::Unacceptable),
    }
}

/// Serves one caller from its connection request to its end.
pub(crate) async fn serve<H: IngestHandler>(
    request: ConnectionRequest,
    handler: Arc<H>,
    config: Arc<SrtConfig>,
    refusals: Arc<RefusalLog>,
    stop: watch::Receiver<bool>,
) {
    let peer = request.remote();
    let stream_id = request.stream_id().map(|id| id.to_string());
    let key = match parse_stream_id(stream_id.as_deref()) {
        Ok(key) => key,
        Err(err) => {
            let (kind, code) = if err.is_wrong_mode() {
                (RefusalKind::Unavailable, RejectReason::Server(ServerRejectReason::BadMode))
            } else {
                (RefusalKind::UnknownKey, RejectReason::Server(ServerRejectReason::BadRequest))
            };
            return refuse_request(request, &refusals, Refusal::new(kind, err.to_string()), code).await;
        }
    };
    tracing::Span::current().record("key", key_prefix(&key).as_str());
    let access = tokio::time::timeout(config.publish_deadline, handler.srt_access(&key))
        .await
        .unwrap_or_else(|_| Err(Refusal::new(RefusalKind::Unavailable, "the server did not decide in time")));
    let access = match access {
        Ok(access) => access,
        Err(refusal) => {
            let code = reject_reason(refusal.kind);
            return refuse_request(request, &refusals, refusal, code).await;
        }
    };
    // Decided here, not left to srt-protocol: it panics on a caller that
    // encrypts towards a listener that does not (srt-protocol 0.4.4).
    let keys = match (access.passphrase, request.key_size()) {
        (None, KeySize::Unspecified) => None,
        (None, _) => {
            let refusal =
                Refusal::new(RefusalKind::Unavailable, "the caller encrypts but the channel has no SRT passphrase");
            return refuse_request(request, &refusals, refusal, RejectReason::Core(CoreRejectReason::Unsecure)).await;
        }
        (Some(_), KeySize::Unspecified) => {
            let refusal =
                Refusal::new(RefusalKind::UnknownKey, "the channel needs its SRT passphrase; the caller sent none");
            return refuse_request(request, &refusals, refusal, RejectReason::Core(CoreRejectReason::Unsecure)).await;
        }
        (Some(passphrase), key_size) => match Passphrase::try_from(passphrase) {
            Ok(passphrase) => Some(KeySettings { key_size, passphrase }),
            Err(err) => {
                tracing::error!(%err, "the channel's SRT passphrase is unusable");
                let refusal = Refusal::new(RefusalKind::Unavailable, "the channel's SRT passphrase is unusable");
                return refuse_request(
                    request,
                    &refusals,
                    refusal,
                    RejectReason::Server(ServerRejectReason::InternalServerError),
                )
                .await;
            }
        },
    };
    let mut socket = match request.accept(keys).await {
        Ok(socket) => socket,
        Err(err) => {
            // srt-protocol rejected the handshake itself: with a passphrase, a wrong one (SRT code 1010).
            tracing::debug!(%err, "SRT handshake failed after it was accepted");
            let refusal = Refusal::new(RefusalKind::UnknownKey, "the SRT handshake failed (wrong passphrase?)");
            refusals.refused(peer, &refusal);
            return;
        }
    };
    let request = PublishRequest { peer, app: SRT_APP.to_owned(), stream_key: key };
    let answer = tokio::time::timeout(config.publish_deadline, handler.on_publish(request))
        .await
        .unwrap_or_else(|_| Err(Refusal::new(RefusalKind::Unavailable, "the server did not decide in time")));
    let grant = match answer {
        Ok(grant) => grant,
        Err(refusal) => {
            // Connected but refused before any media was read (another caller won the race).
            refusals.refused(peer, &refusal);
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close_and_finish()).await;
            return;
        }
    };
    tracing::Span::current().record("label", grant.label.as_str());
    let latency = socket.settings().recv_tsbpd_latency;
    tracing::info!(publish_id = grant.publish_id, latency_ms = latency.as_millis() as u64, "publish started");
    let mut publish = Publish {
        handler,
        publish_id: grant.publish_id,
        sink: Some(grant.sink),
        demuxer: TsDemuxer::default(),
        events: Vec::new(),
        dropped_units: 0,
        started: Instant::now(),
    };
    let ended = publish.receive(&mut socket, &config, latency, stop).await;
    publish.finish(&ended);
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close_and_finish()).await;
}

/// Rejects a caller in the listen callback and logs it like any refusal.
async fn refuse_request(request: ConnectionRequest, refusals: &RefusalLog, refusal: Refusal, code: RejectReason) {
    let peer: SocketAddr = request.remote();
    refusals.refused(peer, &refusal);
    let _ = request.reject(code).await;
}

/// Why a publish ended.
#[derive(Debug)]
enum Ended {
    Left,
    Idle,
    Shutdown,
    ConsumerGone,
    Stalled,
    Broken(std::io::Error),
}

/// A granted publish; `on_unpublish` runs when it drops, however it ends.
struct Publish<H: IngestHandler> {
    handler: Arc<H>,
    publish_id: u64,
    sink: Option<UnitSender>,
    demuxer: TsDemuxer,
    events: Vec<StreamEvent>,
    dropped_units: u64,
    started: Instant,
}

impl<H: IngestHandler> Drop for Publish<H> {
    fn drop(&mut self) {
        drop(self.sink.take());
        self.handler.on_unpublish(self.publish_id);
    }
}

impl<H: IngestHandler> Publish<H> {
    async fn receive(
        &mut self,
        socket: &mut SrtSocket,
        config: &SrtConfig,
        latency: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Ended {
        let mut statistics = socket.statistics().clone();
        let mut last_stats = (Instant::now(), 0u64);
        loop {
            tokio::select! {
                _ = stop.changed() => return Ended::Shutdown,
                received = tokio::time::timeout(config.idle_timeout, socket.next()) => match received {
                    Err(_) => return Ended::Idle,
                    Ok(None) => return Ended::Left,
                    Ok(Some(Err(err))) => return Ended::Broken(err),
                    Ok(Some(Ok((_, bytes)))) => {
                        self.demuxer.push(&bytes, Arrival::now(), &mut self.events);
                        if let Some(ended) = self.deliver().await {
                            return ended;
                        }
                    }
                },
                Some(stats) = statistics.next() => {
                    let now = Instant::now();
                    self.handler.on_link_stats(self.publish_id, &link_stats(&stats, now, last_stats, latency));
                    last_stats = (now, stats.rx_bytes);
                }
            }
        }
    }

    /// Sends what the demuxer produced; `Some` when the publish must end.
    async fn deliver(&mut self) -> Option<Ended> {
        let sink = self.sink.as_mut()?;
        for event in self.events.drain(..) {
            let sent = match event {
                StreamEvent::Tracks(tracks) => {
                    match tokio::time::timeout(ANNOUNCE_TIMEOUT, sink.send_tracks(tracks)).await {
                        Ok(sent) => sent,
                        Err(_) => return Some(Ended::Stalled),
                    }
                }
                StreamEvent::Unit(unit) => sink.send_unit(unit).map(|delivered| {
                    if !delivered {
                        self.dropped_units += 1;
                    }
                }),
            };
            if let Err(SendError::Closed) = sent {
                return Some(Ended::ConsumerGone);
            }
        }
        None
    }

    fn finish(&mut self, ended: &Ended) {
        let stats = self.demuxer.stats();
        tracing::info!(
            publish_id = self.publish_id,
            seconds = self.started.elapsed().as_secs(),
            video_units = stats.video_units,
            audio_units = stats.audio_units,
            dropped_units = self.dropped_units,
            lost_units = stats.dropped_units,
            continuity_errors = stats.continuity_errors,
            announcements = stats.announcements,
            "publish ended: {}",
            match ended {
                Ended::Broken(err) => format!("the connection broke: {err}"),
                other => format!("{other:?}"),
            }
        );
        let warnings = self.demuxer.warnings();
        if !warnings.is_empty() {
            tracing::info!(publish_id = self.publish_id, "stream warnings: {warnings}");
        }
    }
}
