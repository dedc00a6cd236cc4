//! WHIP ingest (RFC 9725): a publisher POSTs an SDP offer with its stream
//! key as the bearer token; the handler grants the publish as for RTMP and
//! SRT (the same key check, one publisher per channel, the same refusal
//! log), str0m answers as an ICE-lite peer with H.264 and Opus on a UDP
//! socket of the publish's own, and `peer` runs it until it ends or its
//! resource is deleted. The HTTP side (routes, status codes) is the
//! appliance's; this is everything after the request is read.

mod peer;
pub(crate) mod rtp_media;
mod whip_config;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::{Candidate, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use crate::handler::{IngestHandler, PublishRequest, Refusal, RefusalKind, key_prefix};
use crate::refusal_log::RefusalLog;
use peer::Peer;
use rtp_media::RtpDemuxer;
pub use whip_config::WhipConfig;

/// The application name WHIP publishes carry in `PublishRequest::app`.
pub const WHIP_APP: &str = "whip";

/// One offer, as the HTTP side read it.
#[derive(Debug, Clone)]
pub struct WhipOffer {
    pub stream_key: String,
    /// The channel the URL names; a key of another channel is refused.
    pub channel: String,
    pub sdp: String,
    pub peer: SocketAddr,
    /// The box's address the request reached: offered as an ICE candidate.
    pub reached: Option<IpAddr>,
}

/// The answer to an accepted offer.
#[derive(Debug, Clone)]
pub struct WhipAnswer {
    /// The WHIP resource's id (its URL's last segment), for `DELETE`.
    pub resource: String,
    pub sdp: String,
}

/// Why an offer was not answered.
#[derive(Debug, thiserror::Error)]
pub enum WhipError {
    #[error("refused: {}", .0.reason)]
    Refused(Refusal),
    /// The SDP did not parse, or offered nothing we take.
    #[error("bad offer: {0}")]
    BadOffer(String),
    /// Every publisher slot is taken.
    #[error("too many WHIP publishers")]
    Busy,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The WHIP side of the ingest, shared by the HTTP routes.
pub struct WhipServer<H: IngestHandler> {
    handler: Arc<H>,
    config: Arc<WhipConfig>,
    refusals: RefusalLog,
    /// Resources being served: their delete signal.
    resources: Mutex<HashMap<String, oneshot::Sender<()>>>,
    stop: watch::Receiver<bool>,
}

impl<H: IngestHandler> std::fmt::Debug for WhipServer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhipServer").field("config", &self.config).field("publishers", &self.publishers()).finish()
    }
}

impl<H: IngestHandler> WhipServer<H> {
    /// A WHIP ingest granting through `handler`; its publishers end when `stop` turns true.
    pub fn new(config: WhipConfig, handler: Arc<H>, stop: watch::Receiver<bool>) -> Arc<Self> {
        let refusals = RefusalLog::new(config.refusal_log_interval, 4096);
        Arc::new(Self { handler, config: Arc::new(config), refusals, resources: Mutex::default(), stop })
    }

    fn resources(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.resources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishers being served now.
    pub fn publishers(&self) -> usize {
        self.resources().len()
    }

    /// Ends the publish of `resource`; whether it existed.
    pub fn delete(&self, resource: &str) -> bool {
        self.resources().remove(resource).is_some_and(|delete| delete.send(()).is_ok())
    }

    /// Decides an offer and, granted, answers it and starts serving the publisher.
    pub async fn offer(self: &Arc<Self>, offer: WhipOffer) -> Result<WhipAnswer, WhipError> {
        let sdp = SdpOffer::from_sdp_string(&offer.sdp).map_err(|e| WhipError::BadOffer(e.to_string()))?;
        if self.publishers() >= self.config.max_publishers {
            return Err(WhipError::Busy);
        }
        let request =
            PublishRequest { peer: offer.peer, app: WHIP_APP.to_owned(), stream_key: offer.stream_key.clone() };
        let answer = tokio::time::timeout(self.config.publish_deadline, self.handler.on_publish(request))
            .await
            .unwrap_or_else(|_| Err(Refusal::new(RefusalKind::Unavailable, "the server did not decide in time")));
        let grant = match answer {
            Ok(grant) if grant.label == offer.channel => grant,
            Ok(grant) => {
                self.handler.on_unpublish(grant.publish_id);
                return Err(
                    self.refused(offer.peer, Refusal::new(RefusalKind::UnknownKey, "the key is another channel's"))
                );
            }
            Err(refusal) => return Err(self.refused(offer.peer, refusal)),
        };
        // From here the grant is owned by the peer: dropping it unpublishes.
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip(self.config.udp_bind, offer.reached), 0)).await;
        let socket = match socket {
            Ok(socket) => socket,
            Err(err) => {
                self.handler.on_unpublish(grant.publish_id);
                return Err(err.into());
            }
        };
        let local = socket.local_addr()?;
        let (rtc, answer, (expect_video, expect_audio)) = match negotiate(&self.config, local, sdp) {
            Ok(negotiated) => negotiated,
            Err(reason) => {
                self.handler.on_unpublish(grant.publish_id);
                return Err(WhipError::BadOffer(reason));
            }
        };
        let resource = resource_id();
        let (delete, deleted) = oneshot::channel();
        self.resources().insert(resource.clone(), delete);
        let span =
            tracing::info_span!("whip", peer = %offer.peer, key = %key_prefix(&offer.stream_key), label = %grant.label);
        span.in_scope(|| tracing::info!(publish_id = grant.publish_id, %local, "whip: offer answered"));
        let peer = Peer {
            handler: self.handler.clone(),
            publish_id: grant.publish_id,
            sink: Some(grant.sink),
            rtc,
            socket,
            demuxer: RtpDemuxer::new(expect_video, expect_audio),
            events: Vec::new(),
            dropped_units: 0,
            video_mid: None,
            last_pli: None,
            keyframe_interval: grant.keyframe_interval,
            started: Instant::now(),
        };
        let (server, id, remote) = (self.clone(), resource.clone(), offer.peer);
        tokio::spawn(
            async move {
                let mut peer = peer;
                let ended = peer.run(server.config.idle_timeout, deleted, server.stop.clone()).await;
                peer.finish(&ended, remote);
                server.resources().remove(&id);
            }
            .instrument(span),
        );
        Ok(WhipAnswer { resource, sdp: answer.to_sdp_string() })
    }

    fn refused(&self, peer: SocketAddr, refusal: Refusal) -> WhipError {
        self.refusals.refused(peer, &refusal);
        WhipError::Refused(refusal)
    }
}

/// The peer connection for `offer` (ICE lite, H.264 and Opus only, our
/// candidates on `local`), its answer, and which of video and audio it sends;
/// why not where the offer cannot be taken.
pub(crate) fn negotiate(
    config: &WhipConfig,
    local: SocketAddr,
    offer: SdpOffer,
) -> Result<(Rtc, SdpAnswer, (bool, bool)), String> {
    let mut rtc =
        RtcConfig::new().set_ice_lite(true).clear_codecs().enable_h264(true).enable_opus(true).build(Instant::now());
    for candidate in candidates(config, local) {
        rtc.add_local_candidate(candidate);
    }
    let kinds = offered_kinds(&offer);
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| e.to_string())?;
    if kinds == (false, false) {
        return Err("the offer sends neither H.264 video nor Opus audio".into());
    }
    Ok((rtc, answer, kinds))
}

/// Whether the offer sends video and audio (WHIP offers are send-only).
fn offered_kinds(offer: &SdpOffer) -> (bool, bool) {
    let text = offer.to_sdp_string();
    (text.contains("m=video"), text.contains("m=audio"))
}

/// The address a publisher's socket binds: the configured one, or where no
/// single one is, the address its request reached (so that every datagram's
/// destination is known: ICE checks it against the candidates).
fn bind_ip(udp_bind: IpAddr, reached: Option<IpAddr>) -> IpAddr {
    match reached {
        Some(reached) if udp_bind.is_unspecified() => reached,
        _ => udp_bind,
    }
}

/// The ICE candidates: the socket's own address (host), and each configured
/// public address as a server-reflexive candidate on the same port (a NAT
/// forwards to the socket; its datagrams still arrive at the host address).
fn candidates(config: &WhipConfig, local: SocketAddr) -> Vec<Candidate> {
    let mut out = Vec::new();
    if !local.ip().is_unspecified() {
        out.extend(Candidate::host(local, "udp").ok());
    }
    for ip in &config.candidate_ips {
        let public = SocketAddr::new(*ip, local.port());
        if public != local {
            out.extend(Candidate::server_reflexive(public, local, "udp").ok());
        }
    }
    out
}

/// A resource id nobody can guess (128 random bits, hex).
fn resource_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_bind_where_the_request_came_and_nat_addresses_are_reflexive() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lan: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(bind_ip(any, Some(lan)), lan);
        assert_eq!(bind_ip(any, None), any);
        let fixed: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(bind_ip(fixed, Some(lan)), fixed);

        let local = SocketAddr::new(lan, 50_000);
        let config = WhipConfig { candidate_ips: vec!["203.0.113.9".parse().unwrap()], ..WhipConfig::default() };
        let lines: Vec<String> = candidates(&config, local).iter().map(|c| c.to_sdp_string()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("192.0.2.7 50000 typ host"), "{lines:?}");
        assert!(lines[1].contains("203.0.113.9 50000 typ srflx"), "{lines:?}");
        assert!(candidates(&WhipConfig::default(), SocketAddr::new(any, 5)).is_empty());
    }

    #[test]
    fn resource_ids_are_long_and_differ() {
        let (a, b) = (resource_id(), resource_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
