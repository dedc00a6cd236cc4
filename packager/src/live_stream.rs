//! One live session of a channel as the origin serves it: its renditions, the
//! multivariant playlist over them, and rendition reports between siblings.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use media::TrackKind;

use crate::latency::LatencyStats;
use crate::playlist::{RenditionReport, Variant, render_multivariant};
use crate::rendition::{PlaylistView, Rendition};

/// Container overhead (moof/mdat per part) added to the measured media bitrate for `BANDWIDTH`.
const BANDWIDTH_HEADROOM: f64 = 1.1;

/// The renditions of one publish session.
#[derive(Debug)]
pub struct LiveStream {
    pub channel: String,
    /// Unique across restarts: it is part of every media URI so caches never mix sessions.
    pub session: String,
    pub renditions: Vec<Arc<Rendition>>,
    /// Ingest-to-playlist latency of its parts (every rendition's).
    pub latency: Arc<LatencyStats>,
    ended_at: Mutex<Option<Instant>>,
}

impl LiveStream {
    pub fn new(channel: impl Into<String>, session: impl Into<String>, renditions: Vec<Arc<Rendition>>) -> Self {
        Self {
            channel: channel.into(),
            session: session.into(),
            renditions,
            latency: Arc::default(),
            ended_at: Mutex::new(None),
        }
    }

    pub fn rendition(&self, name: &str) -> Option<&Arc<Rendition>> {
        self.renditions.iter().find(|r| r.name == name)
    }

    /// Ends every rendition (ENDLIST, waiters released).
    pub fn end(&self) {
        for rendition in &self.renditions {
            rendition.end();
        }
        let mut ended = self.ended_at.lock().unwrap_or_else(|e| e.into_inner());
        ended.get_or_insert_with(Instant::now);
    }

    pub fn ended_at(&self) -> Option<Instant> {
        *self.ended_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether every rendition has published media or ended without any (a
    /// ladder rung above the source's size), so the multivariant playlist can be described.
    pub fn is_described(&self) -> bool {
        self.renditions.iter().all(|r| r.summary().is_some() || r.progress().ended)
    }

    /// `EXT-X-RENDITION-REPORT`s for every sibling of `name` (relative URIs).
    pub fn reports_for(&self, name: &str) -> Vec<RenditionReport> {
        self.reports_of(name, PlaylistView::Live)
    }

    /// The rendition reports of `name`'s playlist of `view` (they name the siblings' playlists of that view).
    pub fn reports_of(&self, name: &str, view: PlaylistView) -> Vec<RenditionReport> {
        let file = playlist_file(view);
        if self.renditions.len() < 2 {
            return Vec::new();
        }
        self.renditions
            .iter()
            .filter(|r| r.name != name && !r.is_hidden() && (view == PlaylistView::Live || r.has_dvr()))
            .filter_map(|r| {
                let progress = r.progress();
                let (msn, part) = progress.last_part?;
                Some(RenditionReport {
                    uri: format!("../{}/{file}", r.name),
                    last_msn: msn,
                    last_part: r.part_target().map(|_| part as u64),
                })
            })
            .collect()
    }

    /// The multivariant playlist; renditions with no media yet are left out.
    pub fn multivariant(&self) -> String {
        self.multivariant_of(PlaylistView::Live)
    }

    /// The multivariant playlist over the media playlists of `view` (for
    /// DVR, the renditions that have a DVR window: those recorded).
    pub fn multivariant_of(&self, view: PlaylistView) -> String {
        let file = playlist_file(view);
        let variants: Vec<Variant> = self
            .renditions
            .iter()
            .filter(|r| !r.is_hidden() && (view == PlaylistView::Live || r.has_dvr()))
            .filter_map(|r| {
                let summary = r.summary()?;
                let video = summary.tracks.iter().find(|t| t.kind == TrackKind::Video);
                let declared: u64 = summary.tracks.iter().filter_map(|t| t.bitrate).map(u64::from).sum();
                let measured_peak = (summary.peak_bps as f64 * BANDWIDTH_HEADROOM) as u64;
                let average = (summary.average_bps as f64 * BANDWIDTH_HEADROOM) as u64;
                Some(Variant {
                    uri: format!("{}/{}/{file}", self.session, r.name),
                    bandwidth: measured_peak.max(declared).max(average).max(1),
                    average_bandwidth: (average > 0).then_some(average),
                    codecs: summary.tracks.iter().map(|t| t.codec.rfc6381()).collect(),
                    resolution: video.and_then(|t| t.resolution()),
                    frame_rate: video
                        .and_then(|t| t.frame_rate)
                        .filter(|(_, d)| *d > 0)
                        .map(|(n, d)| n as f64 / d as f64),
                })
            })
            .collect();
        render_multivariant(&variants)
    }
}

/// The file name of a rendition's playlist of `view`.
fn playlist_file(view: PlaylistView) -> &'static str {
    match view {
        PlaylistView::Live => "index.m3u8",
        PlaylistView::Dvr => "dvr.m3u8",
    }
}
