//! A player that does what hls.js does with an LL-HLS channel, without
//! decoding: the multivariant playlist, the first variant's media playlist,
//! its init segment, then blocking playlist reloads (`_HLS_msn`/`_HLS_part`,
//! delta updates with `_HLS_skip=YES`) on one connection while it fetches the
//! preload-hinted part and every new part on another. When the session ends
//! (ENDLIST) it goes back to the multivariant playlist and waits for the next
//! one. What it sees goes into its channel's `ChannelWatch`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::http_client::{HttpConnection, HttpError};
use crate::media_playlist::PlaylistView;

/// Longer than any hold the origin does (three target durations).
const REQUEST_LIMIT: Duration = Duration::from_secs(15);
/// How often a player looks for a new session once its session ended.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// What the players of one channel saw since the last `take`.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// New parts seen (by any player), and media bytes fetched.
    pub parts: u64,
    pub bytes: u64,
    pub requests: u64,
    /// Answers other than 200, by status (0: no answer, a connection error).
    pub failures: BTreeMap<u16, u64>,
    /// Preload-hinted parts that were never made (404): the segment ended
    /// first, so the next part opened the next segment. Not failures.
    pub hint_misses: u64,
    /// Multivariant requests answered 404 or 503 while the channel had no
    /// stream (its publisher away or starting). Not failures.
    pub waits: u64,
    /// Intervals between new parts seen by a player within a session.
    pub gaps: Vec<Duration>,
    /// Sessions a player started watching.
    pub sessions: u64,
}

#[derive(Debug, Default)]
struct Watched {
    seen: Seen,
    last_part_at: Option<Instant>,
    part_target: Option<Duration>,
}

/// Shared by the players of one channel and read by the sampler.
#[derive(Debug, Default)]
pub struct ChannelWatch {
    inner: Mutex<Watched>,
}

impl ChannelWatch {
    fn with<T>(&self, f: impl FnOnce(&mut Watched) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What was seen since the last call, and resets it.
    pub fn take(&self) -> Seen {
        self.with(|w| std::mem::take(&mut w.seen))
    }

    /// When a player last saw a new part.
    pub fn last_part_at(&self) -> Option<Instant> {
        self.with(|w| w.last_part_at)
    }

    /// The channel's `PART-TARGET`, once a player read it.
    pub fn part_target(&self) -> Option<Duration> {
        self.with(|w| w.part_target)
    }

    fn answered(&self, status: u16, bytes: usize, kind: Kind) {
        self.with(|w| {
            w.seen.requests += 1;
            w.seen.bytes += bytes as u64;
            match (status, kind) {
                (200, _) => {}
                (404, Kind::Hint) => w.seen.hint_misses += 1,
                (404 | 503, Kind::Multivariant) => w.seen.waits += 1,
                _ => *w.seen.failures.entry(status).or_default() += 1,
            }
        });
    }

    fn new_parts(&self, count: usize, gap: Option<Duration>, at: Instant) {
        self.with(|w| {
            w.seen.parts += count as u64;
            w.seen.gaps.extend(gap);
            w.last_part_at = Some(w.last_part_at.map_or(at, |t| t.max(at)));
        });
    }
}

/// One player of `channel` on the origin at `http`, until `stop` turns true.
pub async fn play(http: SocketAddr, channel: String, watch: Arc<ChannelWatch>, mut stop: watch::Receiver<bool>) {
    let mut player = Player { http, channel, watch, playlists: None, media: None, ended_uri: None };
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => return,
            result = player.session() => {
                if result.is_err() {
                    // Counted already; start over on fresh connections after a breath.
                    player.playlists = None;
                    player.media = None;
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }
}

struct Player {
    http: SocketAddr,
    channel: String,
    watch: Arc<ChannelWatch>,
    /// One connection for playlists, one for media, as a browser would use.
    playlists: Option<HttpConnection>,
    media: Option<HttpConnection>,
    /// The variant of the session that ended last (the channel lists it until the next publish).
    ended_uri: Option<String>,
}

/// An answer that was not 200 (already counted).
#[derive(Debug)]
struct Refused(u16);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// What a request is for: some answers other than 200 are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Hint,
    Multivariant,
}

/// GET on `connection` (opened on first use); counts the answer in `watch`.
async fn fetch(
    http: SocketAddr,
    connection: &mut Option<HttpConnection>,
    watch: &ChannelWatch,
    path: &str,
) -> Result<bytes::Bytes, HttpError> {
    fetch_as(http, connection, watch, path, Kind::Plain).await
}

async fn fetch_as(
    http: SocketAddr,
    connection: &mut Option<HttpConnection>,
    watch: &ChannelWatch,
    path: &str,
    kind: Kind,
) -> Result<bytes::Bytes, HttpError> {
    if connection.as_ref().is_none_or(HttpConnection::is_closed) {
        *connection = Some(HttpConnection::open(http).await.inspect_err(|_| watch.answered(0, 0, kind))?);
    }
    let open = connection.as_mut().expect("opened above");
    match open.get(path, REQUEST_LIMIT).await {
        Ok((status, body)) => {
            watch.answered(status, body.len(), kind);
            if status == 200 { Ok(body) } else { Err(Box::new(Refused(status))) }
        }
        Err(e) => {
            watch.answered(0, 0, kind);
            *connection = None;
            Err(e)
        }
    }
}

impl Player {
    async fn playlist(&mut self, path: &str) -> Result<PlaylistView, HttpError> {
        let body = fetch(self.http, &mut self.playlists, &self.watch, path).await?;
        PlaylistView::parse(&String::from_utf8_lossy(&body)).ok_or_else(|| format!("{path}: not a playlist").into())
    }

    /// Watches one session from its start to its ENDLIST.
    async fn session(&mut self) -> Result<(), HttpError> {
        let multivariant = format!("/hls/{}/index.m3u8", self.channel);
        let body = match fetch_as(self.http, &mut self.playlists, &self.watch, &multivariant, Kind::Multivariant).await
        {
            Ok(body) => body,
            Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| matches!(r.0, 404 | 503)) => {
                // No stream yet, or not described yet: a player shows its poster and asks again.
                tokio::time::sleep(IDLE_POLL).await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&body);
        let uri = text.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).ok_or("no variant")?.to_string();
        if self.ended_uri.as_deref() == Some(uri.as_str()) {
            tokio::time::sleep(IDLE_POLL).await;
            return Ok(());
        }
        let base = format!("/hls/{}/{}", self.channel, uri.trim_end_matches("index.m3u8"));
        let mut view = self.playlist(&format!("{base}index.m3u8")).await?;
        if let Some(target) = view.part_target {
            self.watch.with(|w| w.part_target = Some(Duration::from_secs_f64(target)));
        }
        if let Some(map) = &view.map_uri {
            fetch(self.http, &mut self.media, &self.watch, &format!("{base}{map}")).await?;
        }
        if !view.ended {
            self.watch.with(|w| w.seen.sessions += 1);
        }
        let mut last = view.last_part();
        let mut last_at = last.map(|_| Instant::now());
        while !view.ended {
            let Some((msn, part)) = view.next_part() else {
                // Described but no part listed yet: ask again shortly.
                tokio::time::sleep(IDLE_POLL).await;
                view = self.playlist(&format!("{base}index.m3u8")).await?;
                continue;
            };
            let reload = format!("{base}index.m3u8?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES");
            let hint = view.preload_hint.clone().map(|h| format!("{base}{h}"));
            let (http, watch) = (self.http, self.watch.clone());
            let (reloaded, hinted) = {
                let (playlists, media) = (&mut self.playlists, &mut self.media);
                let reload = async {
                    let body = fetch(http, playlists, &watch, &reload).await?;
                    PlaylistView::parse(&String::from_utf8_lossy(&body))
                        .ok_or_else(|| HttpError::from("not a playlist"))
                };
                let hinted = async {
                    match &hint {
                        Some(path) => {
                            fetch_as(http, media, &watch, path, Kind::Hint).await.is_ok().then(|| path.clone())
                        }
                        None => None,
                    }
                };
                tokio::join!(reload, hinted)
            };
            view = reloaded?;
            let now = Instant::now();
            let new: Vec<_> =
                view.parts.iter().filter(|p| last.is_none_or(|l| (p.msn, p.index) > l)).cloned().collect();
            if !new.is_empty() {
                self.watch.new_parts(new.len(), last_at.map(|at| now - at), now);
                last = view.last_part();
                last_at = Some(now);
            }
            for part in new {
                let path = format!("{base}{}", part.uri);
                if hinted.as_deref() != Some(path.as_str()) {
                    fetch(self.http, &mut self.media, &self.watch, &path).await?;
                }
            }
        }
        self.ended_uri = Some(uri);
        Ok(())
    }
}
