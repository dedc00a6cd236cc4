//! Viewers per channel, counted from the origin's requests: a viewer is a
//! client (peer address and `User-Agent`) that fetched one of the channel's
//! playlists, parts or segments with success in the last 30 s. A CDN edge or
//! proxy in front of the appliance is one client, so it counts as one viewer.
//!
//! The origin's hot path pays a path split, one SipHash of the client and one
//! map update under one of 16 shard locks (picked by that hash, so players do
//! not queue behind each other); nothing is allocated except for a client's
//! first request. Counting walks the shards (an API read, every few seconds).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

/// How long a client counts after its last request.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(30);
const SHARDS: usize = 16;
/// Clients remembered per shard; past it new clients are not counted until old ones expire.
const MAX_PER_SHARD: usize = 16_384;

/// One client of one channel.
#[derive(Debug)]
struct Seen {
    channel: Box<str>,
    /// Milliseconds since `Viewers::started` of its latest request.
    last_ms: u64,
}

/// Clients seen per channel.
#[derive(Debug)]
pub struct Viewers {
    started: Instant,
    hasher: RandomState,
    /// (channel, address, User-Agent) hash -> the client.
    shards: [Mutex<HashMap<u64, Seen>>; SHARDS],
}

impl Default for Viewers {
    fn default() -> Self {
        Viewers { started: Instant::now(), hasher: RandomState::new(), shards: Default::default() }
    }
}

impl Viewers {
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// A client of a channel, as a key.
    fn key(&self, channel: &str, peer: IpAddr, user_agent: &[u8]) -> u64 {
        self.hasher.hash_one((channel, peer, user_agent))
    }

    /// Records a request of `channel`'s media by a client.
    pub fn seen(&self, channel: &str, peer: IpAddr, user_agent: &[u8], at: Instant) {
        self.seen_key(self.key(channel, peer, user_agent), channel, at);
    }

    fn seen_key(&self, key: u64, channel: &str, at: Instant) {
        let now = self.ms(at);
        let mut shard = self.shards[key as usize % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(seen) = shard.get_mut(&key) {
            seen.last_ms = seen.last_ms.max(now);
            return;
        }
        if shard.len() >= MAX_PER_SHARD {
            let cutoff = now.saturating_sub(VIEWER_WINDOW.as_millis() as u64);
            shard.retain(|_, s| s.last_ms >= cutoff);
            if shard.len() >= MAX_PER_SHARD {
                return;
            }
        }
        shard.insert(key, Seen { channel: channel.into(), last_ms: now });
    }

    /// Viewers per channel at `now` (channels with none are absent).
    pub fn counts(&self, now: Instant) -> HashMap<String, u32> {
        let cutoff = self.ms(now).saturating_sub(VIEWER_WINDOW.as_millis() as u64);
        let mut counts: HashMap<String, u32> = HashMap::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for seen in shard.values().filter(|s| s.last_ms >= cutoff) {
                *counts.entry(seen.channel.to_string()).or_default() += 1;
            }
        }
        counts
    }

    /// Viewers of one channel at `now`.
    pub fn count(&self, channel: &str, now: Instant) -> u32 {
        let cutoff = self.ms(now).saturating_sub(VIEWER_WINDOW.as_millis() as u64);
        let mut count = 0;
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            count += shard.values().filter(|s| s.last_ms >= cutoff && &*s.channel == channel).count() as u32;
        }
        count
    }

    /// Forgets clients not seen in the window.
    pub fn sweep(&self, now: Instant) {
        let cutoff = self.ms(now).saturating_sub(VIEWER_WINDOW.as_millis() as u64);
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, s| s.last_ms >= cutoff);
        }
    }
}

/// The channel of an origin request that a player makes while watching
/// (`/hls/{channel}/index.m3u8`, and a session's media playlists, parts and segments).
fn watched_channel(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/hls/")?;
    let (channel, _) = rest.split_once('/')?;
    let file = &rest[rest.rfind('/')? + 1..];
    let media =
        file.ends_with(".m3u8") || (file.ends_with(".m4s") && (file.starts_with("part") || file.starts_with("seg")));
    (media && !channel.is_empty()).then_some(channel)
}

/// The origin's layer: counts each successful player request of a channel.
pub async fn count_viewers(State(viewers): State<Arc<Viewers>>, request: Request, next: Next) -> Response {
    let key = watched_channel(request.uri().path()).and_then(|channel| {
        let peer = crate::http::client_address::of(request.extensions())?;
        let agent = request.headers().get(header::USER_AGENT).map_or(&[][..], |v| v.as_bytes());
        Some(viewers.key(channel, peer, agent))
    });
    let Some(key) = key else { return next.run(request).await };
    let uri = request.uri().clone(); // shares the request's bytes
    let response = next.run(request).await;
    let status = response.status();
    if (status.is_success() || status == axum::http::StatusCode::NOT_MODIFIED)
        && let Some(channel) = watched_channel(uri.path())
    {
        viewers.seen_key(key, channel, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_is_an_address_and_user_agent_seen_in_the_last_30_s() {
        let viewers = Viewers::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..20 {
            viewers.seen("cam", a, b"hls.js", t0 + Duration::from_millis(i * 200));
        }
        viewers.seen("cam", a, b"Safari", t0); // another player on the same host
        viewers.seen("cam", b, b"hls.js", t0 + Duration::from_secs(10));
        viewers.seen("other", b, b"hls.js", t0 + Duration::from_secs(10));
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(viewers.count("cam", at(11)), 3);
        assert_eq!(viewers.counts(at(11)), HashMap::from([("cam".into(), 3), ("other".into(), 1)]));
        assert_eq!(viewers.count("cam", at(33)), 2, "Safari left 30 s ago; hls.js on a asked 3.8 s in");
        assert_eq!(viewers.count("cam", at(41)), 0);
        viewers.sweep(at(41));
        assert!(viewers.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }

    #[test]
    fn only_player_requests_name_a_channel() {
        let cases = [
            ("/hls/cam/index.m3u8", Some("cam")),
            ("/hls/cam/s1/360p/index.m3u8", Some("cam")),
            ("/hls/cam/s1/360p/part12.3.m4s", Some("cam")),
            ("/hls/cam/s1/source/seg12.m4s", Some("cam")),
            ("/hls/cam/s1/source/init0.mp4", None),
            ("/hls/cam", None),
            ("/hls//index.m3u8", None),
            ("/console/", None),
        ];
        for (path, want) in cases {
            assert_eq!(watched_channel(path), want, "{path}");
        }
    }
}
