//! The latest thumbnail of every live channel, shared by the thumbnail
//! outputs (one writer per session) and the origin's `thumb.jpg` route.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use accel::thumbnail::Thumbnail;

/// How thumbnails are made: the same for every channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSettings {
    /// A new thumbnail from the first keyframe this long (media time) after the last one.
    pub interval: Duration,
    /// Thumbnails are this wide (at most the rendition's width), the height to scale.
    pub width: u32,
}

impl Default for ThumbnailSettings {
    fn default() -> Self {
        ThumbnailSettings { interval: Duration::from_secs(5), width: 320 }
    }
}

/// One channel's latest thumbnail.
#[derive(Debug, Clone)]
pub struct LatestThumbnail {
    /// The session it belongs to.
    pub session: String,
    /// The rendition it shows (`source` or the top rung).
    pub rendition: String,
    pub thumbnail: Thumbnail,
    /// When it was made.
    pub made_at: SystemTime,
}

/// The latest thumbnail of each live channel.
#[derive(Debug, Default)]
pub struct LatestThumbnails {
    settings: ThumbnailSettings,
    by_channel: RwLock<HashMap<String, Arc<LatestThumbnail>>>,
}

impl LatestThumbnails {
    pub fn new(settings: ThumbnailSettings) -> LatestThumbnails {
        LatestThumbnails { settings, by_channel: RwLock::default() }
    }

    pub fn settings(&self) -> ThumbnailSettings {
        self.settings
    }

    /// `channel`'s latest thumbnail, if it is live and has one.
    pub fn get(&self, channel: &str) -> Option<Arc<LatestThumbnail>> {
        self.by_channel.read().unwrap_or_else(|e| e.into_inner()).get(channel).cloned()
    }

    /// Makes `latest` the channel's thumbnail.
    pub fn put(&self, channel: &str, latest: LatestThumbnail) {
        self.by_channel.write().unwrap_or_else(|e| e.into_inner()).insert(channel.to_string(), Arc::new(latest));
    }

    /// `session` ended: its thumbnail goes (a later session's stays).
    pub fn remove(&self, channel: &str, session: &str) {
        let mut by_channel = self.by_channel.write().unwrap_or_else(|e| e.into_inner());
        if by_channel.get(channel).is_some_and(|l| l.session == session) {
            by_channel.remove(channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn latest(session: &str) -> LatestThumbnail {
        let picture = accel::jpeg::Picture::black(320, 180);
        let thumbnail = Thumbnail { jpeg: Bytes::from_static(b"jpeg"), picture, width: 320, height: 180, pts: 0 };
        LatestThumbnail { session: session.into(), rendition: "source".into(), thumbnail, made_at: SystemTime::now() }
    }

    #[test]
    fn an_ended_session_removes_its_own_thumbnail_only() {
        let latest_thumbnails = LatestThumbnails::default();
        latest_thumbnails.put("cam", latest("one"));
        latest_thumbnails.put("cam", latest("two"));
        latest_thumbnails.remove("cam", "one");
        assert_eq!(latest_thumbnails.get("cam").unwrap().session, "two", "the next session's stays");
        latest_thumbnails.remove("cam", "two");
        assert!(latest_thumbnails.get("cam").is_none());
    }
}
