//! One WHIP publisher after its answer: str0m (sans-IO: ICE-lite, DTLS-SRTP,
//! RTP depacketizing, NACK and receiver reports) driven by a UDP socket of
//! its own on a tokio task, its frames through `rtp_media` onto the granted
//! sink, keyframes asked for (PLI) until one comes, after a loss, and once
//! the last is a segment target old (browsers make keyframes only when
//! asked, and segments are cut on keyframes), until the publisher leaves, goes silent, is deleted or the server stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::{Arrival, SendError, StreamEvent, UnitSender};
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaData, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

use super::rtp_media::{Frame, RtpDemuxer};
use crate::handler::IngestHandler;

/// How long the sink may take to accept a new track set before the publish is ended.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Keyframe requests at most this often.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// The largest datagram read (WebRTC keeps packets under the path MTU).
const MAX_DATAGRAM: usize = 2048;

/// Why a publish ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// ICE disconnected or the peer closed DTLS.
    Left,
    /// No media for the idle timeout (or ICE/DTLS never completed).
    Idle,
    /// The WHIP resource was deleted.
    Deleted,
    Shutdown,
    ConsumerGone,
    Stalled,
    Broken(String),
}

/// A granted publish being served; `on_unpublish` runs when it drops, however it ends.
pub(crate) struct Peer<H: IngestHandler> {
    pub handler: Arc<H>,
    pub publish_id: u64,
    pub sink: Option<UnitSender>,
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub demuxer: RtpDemuxer,
    pub events: Vec<StreamEvent>,
    pub dropped_units: u64,
    /// The video's mid, once its first frame came (where keyframe requests go).
    pub video_mid: Option<Mid>,
    pub last_pli: Option<Instant>,
    /// The channel's segment target: a keyframe is asked for when the last one is this old,
    /// so that segments are cut on time (browsers send keyframes only when asked).
    pub keyframe_interval: Option<Duration>,
    pub started: Instant,
}

impl<H: IngestHandler> Drop for Peer<H> {
    fn drop(&mut self) {
        drop(self.sink.take());
        self.handler.on_unpublish(self.publish_id);
    }
}

impl<H: IngestHandler> Peer<H> {
    /// Serves until the publish ends, then says why.
    pub(crate) async fn run(
        &mut self,
        idle_timeout: Duration,
        mut delete: oneshot::Receiver<()>,
        mut stop: watch::Receiver<bool>,
    ) -> Ended {
        let local = match self.socket.local_addr() {
            Ok(local) => local,
            Err(err) => return Ended::Broken(err.to_string()),
        };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let (mut last_media, mut units_seen) = (Instant::now(), 0);
        loop {
            let deadline = match self.drive().await {
                Ok(deadline) => deadline,
                Err(ended) => return ended,
            };
            if last_media.elapsed() >= idle_timeout {
                return Ended::Idle;
            }
            let wait = deadline.saturating_duration_since(Instant::now()).min(idle_timeout);
            let input_at = tokio::select! {
                _ = stop.changed() => return Ended::Shutdown,
                _ = &mut delete => return Ended::Deleted,
                _ = tokio::time::sleep(wait) => None,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => Some((n, source)),
                    Err(err) => return Ended::Broken(err.to_string()),
                },
            };
            let now = Instant::now();
            let input = match input_at {
                None => self.rtc.handle_input(Input::Timeout(now)),
                Some((n, source)) => match Receive::new(Protocol::Udp, source, local, &buf[..n]) {
                    Ok(receive) => self.rtc.handle_input(Input::Receive(now, receive)),
                    // Not STUN, DTLS or SRTP: a stray datagram, dropped.
                    Err(_) => Ok(()),
                },
            };
            if let Err(err) = input {
                return Ended::Broken(err.to_string());
            }
            let units = self.demuxer.video_units + self.demuxer.audio_units;
            if units != units_seen {
                (last_media, units_seen) = (now, units);
            }
        }
    }

    /// Sends what str0m has to send and handles its events; the time it wants to be woken at.
    async fn drive(&mut self) -> Result<Instant, Ended> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Ok(at),
                Ok(Output::Transmit(transmit)) => {
                    if let Err(err) = self.socket.send_to(&transmit.contents, transmit.destination).await {
                        tracing::debug!(%err, "whip: a datagram could not be sent");
                    }
                }
                Ok(Output::Event(event)) => self.event(event).await?,
                Err(err) => return Err(Ended::Broken(err.to_string())),
            }
        }
    }

    async fn event(&mut self, event: Event) -> Result<(), Ended> {
        match event {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => Err(Ended::Left),
            Event::Connected => {
                tracing::info!(publish_id = self.publish_id, "whip: connected (ICE and DTLS done)");
                Ok(())
            }
            Event::MediaData(data) => self.media(data).await,
            _ => Ok(()),
        }
    }

    async fn media(&mut self, data: MediaData) -> Result<(), Ended> {
        let rtp_time = data.time.numer() as u32;
        // The depacketized frame is shared, not copied (str0m hands it over as an `Arc`).
        let (network, bytes) = (data.network_time, Bytes::from_owner(data.data.clone()));
        let frame = match data.params.spec().codec {
            Codec::H264 => {
                self.video_mid = Some(data.mid);
                Frame::Video { rtp_time, network, data: bytes }
            }
            Codec::Opus => Frame::Audio { rtp_time, network, data: bytes },
            _ => return Ok(()),
        };
        let needs = self.demuxer.push(frame, Arrival::now(), &mut self.events);
        let due = |interval: Duration| self.demuxer.last_keyframe.is_some_and(|at| at.elapsed() >= interval);
        let segment_due = self.keyframe_interval.is_some_and(due);
        if needs.keyframe || segment_due || (!data.contiguous && data.params.spec().codec == Codec::H264) {
            self.request_keyframe();
        }
        self.deliver().await
    }

    /// Asks the publisher for a keyframe (PLI), at most every `PLI_INTERVAL`.
    fn request_keyframe(&mut self) {
        if self.last_pli.is_some_and(|at| at.elapsed() < PLI_INTERVAL) {
            return;
        }
        let Some(mid) = self.video_mid else { return };
        if let Some(mut writer) = self.rtc.writer(mid)
            && writer.request_keyframe(None, KeyframeRequestKind::Pli).is_ok()
        {
            self.last_pli = Some(Instant::now());
        }
    }

    /// Sends what the demuxer produced.
    async fn deliver(&mut self) -> Result<(), Ended> {
        let Some(sink) = self.sink.as_mut() else { return Ok(()) };
        for event in self.events.drain(..) {
            let sent = match event {
                StreamEvent::Tracks(tracks) => {
                    match tokio::time::timeout(ANNOUNCE_TIMEOUT, sink.send_tracks(tracks)).await {
                        Ok(sent) => sent,
                        Err(_) => return Err(Ended::Stalled),
                    }
                }
                StreamEvent::Unit(unit) => sink.send_unit(unit).map(|delivered| {
                    if !delivered {
                        self.dropped_units += 1;
                    }
                }),
            };
            if let Err(SendError::Closed) = sent {
                return Err(Ended::ConsumerGone);
            }
        }
        Ok(())
    }

    /// Logs how the publish went.
    pub(crate) fn finish(&self, ended: &Ended, peer: SocketAddr) {
        tracing::info!(
            publish_id = self.publish_id,
            %peer,
            seconds = self.started.elapsed().as_secs(),
            video_units = self.demuxer.video_units,
            audio_units = self.demuxer.audio_units,
            dropped_units = self.dropped_units,
            "whip: publish ended: {}",
            match ended {
                Ended::Broken(reason) => format!("it broke: {reason}"),
                other => format!("{other:?}"),
            }
        );
        if !self.demuxer.warnings.is_empty() {
            tracing::info!(publish_id = self.publish_id, "stream warnings: {}", self.demuxer.warnings);
        }
    }
}
