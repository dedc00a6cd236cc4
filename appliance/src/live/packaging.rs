//! The LL-HLS packager as an output of a live session: one rendition in the
//! origin per rendition of the session, packaged as its feed arrives, with
//! ENDLIST when the feeds end. It reports `Viewable` at the session's first
//! part, and logs the ingest-to-playlist latency when it ends.

use std::sync::Arc;
use std::time::Duration;

use media::LatencyMode;
use packager::{DvrConfig, LiveStream, OriginStore, Progress, Rendition, SegmentTap, SegmenterConfig, WindowConfig};
use tracing::Instrument;

use super::events::SessionEvent;
use super::ports::{Feed, Output, OutputRun, Reporter, Subscription};

/// How a session is packaged.
#[derive(Debug, Clone, Copy)]
pub struct PackagingConfig {
    pub mode: LatencyMode,
    /// The configured part target (ultra-low latency only).
    pub part_target: Duration,
    /// Seconds of media the playlists list.
    pub window_seconds: u64,
}

/// The DVR window of a session: which renditions get one (those recorded,
/// whose old segments the DVR playlist reads from the recording) and how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvrPlan {
    pub window: Duration,
    pub renditions: Vec<String>,
}

impl DvrPlan {
    /// `rendition`'s DVR window, its old segments in the recording of `session`.
    fn config(&self, session: &str, rendition: &str) -> Option<DvrConfig> {
        self.renditions.iter().any(|r| r == rendition).then(|| DvrConfig {
            window: self.window,
            // From `/hls/{channel}/{session}/{rendition}/dvr.m3u8` to the catchup route's files.
            archive_uri: format!("../../recordings/{session}/{rendition}/"),
        })
    }
}

impl PackagingConfig {
    fn window(&self) -> WindowConfig {
        let segment_target = self.mode.segment_target();
        let window_segments = (self.window_seconds as f64 / segment_target.as_secs_f64()).ceil().max(8.0) as usize;
        WindowConfig { mode: self.mode, window_segments, segment_target }
    }

    fn segmenter(&self) -> SegmenterConfig {
        let part_target = if self.mode.has_parts() { self.part_target } else { Duration::from_secs(1) };
        SegmenterConfig { part_target, segment_target: self.mode.segment_target() }
    }
}

/// The packager output of one session.
#[derive(Debug)]
pub struct PackagerOutput {
    origin: Arc<OriginStore>,
    channel: String,
    session: String,
    config: PackagingConfig,
    /// Where every complete segment is also handed (the recorder).
    tap: Option<SegmentTap>,
    dvr: Option<DvrPlan>,
    /// A rendition packaged for the recorder alone (a ladder's source): in no multivariant playlist.
    hidden: Option<String>,
}

impl PackagerOutput {
    pub fn new(origin: Arc<OriginStore>, channel: &str, session: &str, config: PackagingConfig) -> PackagerOutput {
        PackagerOutput {
            origin,
            channel: channel.to_string(),
            session: session.to_string(),
            config,
            tap: None,
            dvr: None,
            hidden: None,
        }
    }

    /// Hands every segment of every rendition to `tap` as well (the recorder's input).
    pub fn with_tap(mut self, tap: SegmentTap) -> PackagerOutput {
        self.tap = Some(tap);
        self
    }

    /// Packages `rendition` for the recorder alone: no multivariant playlist lists it.
    pub fn with_hidden(mut self, rendition: &str) -> PackagerOutput {
        self.hidden = Some(rendition.to_string());
        self
    }

    /// Gives the renditions `plan` names a DVR window (they must be recorded: see `DvrPlan`).
    pub fn with_dvr(mut self, plan: DvrPlan) -> PackagerOutput {
        self.dvr = Some(plan);
        self
    }
}

impl Output for PackagerOutput {
    fn name(&self) -> &str {
        "packager"
    }

    fn subscription(&self) -> Subscription {
        Subscription::everything()
    }

    fn start(self: Box<Self>, feeds: Vec<Feed>, reporter: Reporter) -> OutputRun {
        let window = self.config.window();
        let tap = self.tap;
        let renditions: Vec<Arc<Rendition>> = feeds
            .iter()
            .map(|f| {
                let mut rendition = Rendition::new(f.rendition.clone(), window);
                if let Some(dvr) = self.dvr.as_ref().and_then(|plan| plan.config(&self.session, &f.rendition)) {
                    rendition = rendition.with_dvr(dvr);
                }
                if self.hidden.as_ref() == Some(&f.rendition) {
                    rendition = rendition.hidden();
                }
                Arc::new(match &tap {
                    Some(tap) => rendition.tapped(tap.clone()),
                    None => rendition,
                })
            })
            .collect();
        // Only the renditions hold the tap: its stream ends when they all have ended.
        drop(tap);
        let stream = Arc::new(LiveStream::new(self.channel.clone(), self.session.clone(), renditions.clone()));
        // Listed in the origin at once: the multivariant playlist describes renditions as their media comes.
        self.origin.insert(stream.clone());
        let latency = stream.latency.clone();
        let config = self.config.segmenter();
        Box::pin(async move {
            let viewable = first_part(&renditions);
            let packaging =
                futures_util::future::join_all(feeds.into_iter().zip(&renditions).map(|(feed, rendition)| {
                    let span = tracing::info_span!("rendition", rendition = %rendition.name);
                    packager::package(feed.events, rendition.clone(), config, latency.clone()).instrument(span)
                }));
            tokio::pin!(packaging);
            tokio::select! {
                _ = &mut packaging => {}
                live = viewable => {
                    if live {
                        reporter.report(SessionEvent::Viewable);
                    }
                    packaging.await;
                }
            }
            stream.end();
            tracing::info!(latency = %latency.summary(), "packaging ended (ENDLIST published)");
            Ok(())
        })
    }
}

/// Resolves once any rendition has published a part (`true`), or all ended without one.
async fn first_part(renditions: &[Arc<Rendition>]) -> bool {
    let waits = renditions.iter().map(|r| {
        let mut progress = r.subscribe();
        Box::pin(async move {
            let has_part = |p: &Progress| p.last_part.is_some() || p.ended;
            progress.wait_for(has_part).await.is_ok_and(|p| p.last_part.is_some())
        })
    });
    let mut pending: Vec<_> = waits.collect();
    while !pending.is_empty() {
        let (live, _, rest) = futures_util::future::select_all(pending).await;
        if live {
            return true;
        }
        pending = rest;
    }
    false
}
