//! Thumbnails of live channels as an output of the live session: it
//! subscribes to the video of one rendition (`source` on a passthrough
//! channel, the top rung of a ladder) and, on its own thread, decodes one
//! keyframe per interval of media time (`accel::thumbnail`: that keyframe
//! alone, never the frames between) into a JPEG that becomes the channel's
//! `latest` thumbnail (`/hls/{channel}/thumb.jpg`). Every other unit is
//! dropped as it arrives, so a passthrough channel pays one keyframe decode
//! per interval, not a decode of its stream. A recorded session keeps its
//! thumbnails with the recording too (`stored`: sprite sheets and the tiles'
//! log that the catchup's WebVTT scrubbing track is made from).

pub mod latest;
pub mod stored;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use accel::thumbnail::Thumbnailer;
use media::{StreamEvent, TrackKind, UnitReceiver};
use tokio::sync::oneshot;

pub use latest::{LatestThumbnail, LatestThumbnails, ThumbnailSettings};
pub use stored::StoredThumbnails;

use super::ports::{Feed, Output, OutputError, OutputRun, Renditions, Reporter, Subscription, Tracks};

/// The thumbnail output of a session whose renditions are `renditions`
/// (top first), keeping them with its recording in `recording` (the
/// session's folder) when it is recorded.
pub fn plug(
    latest: &Arc<LatestThumbnails>,
    channel: &str,
    session: &str,
    renditions: &[String],
    recording: Option<PathBuf>,
) -> Option<ThumbnailOutput> {
    let rendition = renditions.first()?.clone();
    let (channel, session) = (channel.to_string(), session.to_string());
    let stored = recording.map(StoredThumbnails::new);
    Some(ThumbnailOutput { latest: latest.clone(), channel, session, rendition, stored })
}

/// The thumbnail output of one session.
pub struct ThumbnailOutput {
    latest: Arc<LatestThumbnails>,
    channel: String,
    session: String,
    rendition: String,
    stored: Option<StoredThumbnails>,
}

impl Output for ThumbnailOutput {
    fn name(&self) -> &str {
        "thumbnails"
    }

    fn subscription(&self) -> Subscription {
        Subscription {
            renditions: Renditions::Named(vec![self.rendition.clone()]),
            tracks: Tracks::Only(TrackKind::Video),
        }
    }

    fn start(self: Box<Self>, mut feeds: Vec<Feed>, _reporter: Reporter) -> OutputRun {
        let Some(feed) = feeds.pop() else {
            return Box::pin(async { Err(OutputError::new("the session has no such rendition")) });
        };
        let (done, finished) = oneshot::channel();
        let span = tracing::Span::current();
        let spawned = std::thread::Builder::new().name("thumbnails".into()).spawn(move || {
            let _entered = span.enter();
            let ThumbnailOutput { latest, channel, session, rendition, stored } = *self;
            run(&latest, &channel, &session, &rendition, feed.events, stored);
            latest.remove(&channel, &session);
            let _ = done.send(());
        });
        Box::pin(async move {
            spawned.map_err(|e| OutputError::new(format!("cannot start the thumbnails' thread: {e}")))?;
            finished.await.map_err(|_| OutputError::new("the thumbnails' thread stopped unexpectedly"))
        })
    }
}

/// Whether a keyframe at `pts` is due, the last thumbnail being of `last`
/// (both in ticks), one every `interval` ticks. A timeline that went back
/// (a new input) starts over.
fn due(last: Option<i64>, pts: i64, interval: i64) -> bool {
    last.is_none_or(|last| pts < last || pts - last >= interval)
}

/// Makes thumbnails of `events` (one rendition's video) until they end, each the
/// latest of `channel` in `latest` and stored in `stored` (public for the `thumbnail_cost` bench).
pub fn run(
    latest: &LatestThumbnails,
    channel: &str,
    session: &str,
    rendition: &str,
    mut events: UnitReceiver,
    mut stored: Option<StoredThumbnails>,
) {
    let settings = latest.settings();
    let mut thumbnailer = Thumbnailer::new(settings.width);
    // Ticks per interval of the current track, once a decoder for it is open, and ticks per second.
    let mut interval: Option<i64> = None;
    let mut timebase = 90_000i64;
    let mut last: Option<i64> = None;
    let mut failures = 0u64;
    while let Some(event) = events.blocking_recv() {
        match event {
            StreamEvent::Tracks(tracks) => {
                interval = None;
                let Some(video) = tracks.iter().find(|t| t.kind == TrackKind::Video) else { continue };
                match thumbnailer.set_track(video) {
                    Ok(()) => {
                        timebase = i64::from(video.timebase.0.max(1));
                        interval = Some((settings.interval.as_secs_f64() * timebase as f64).round() as i64);
                    }
                    Err(e) => tracing::warn!(error = %e, "no thumbnails for this video track"),
                }
            }
            StreamEvent::Unit(unit) if unit.keyframe && unit.kind == TrackKind::Video => {
                let Some(interval) = interval else { continue };
                if !due(last, unit.pts, interval) {
                    continue;
                }
                match thumbnailer.render(&unit) {
                    Ok(thumbnail) => {
                        last = Some(unit.pts);
                        if let Some(stored) = stored.as_mut() {
                            stored.store(&thumbnail, (unit.pts.max(0) * 1000 / timebase) as u64);
                        }
                        let made_at = SystemTime::now();
                        let (session, rendition) = (session.to_string(), rendition.to_string());
                        latest.put(channel, LatestThumbnail { session, rendition, thumbnail, made_at });
                    }
                    Err(e) => {
                        failures += 1;
                        if failures.is_power_of_two() {
                            tracing::warn!(error = %e, failures, "a keyframe gave no thumbnail");
                        }
                    }
                }
            }
            StreamEvent::Unit(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_keyframe_is_due_once_per_interval_and_after_the_timeline_went_back() {
        let table = [
            (None, 0, true),
            (Some(0), 90_000, false),
            (Some(0), 449_999, false),
            (Some(0), 450_000, true),
            (Some(450_000), 900_001, true),
            (Some(450_000), 3_000, true),
        ];
        for (last, pts, expected) in table {
            assert_eq!(due(last, pts, 450_000), expected, "last {last:?}, pts {pts}");
        }
    }

    #[test]
    fn the_output_keeps_the_latest_picture_and_stores_each_with_the_recording() {
        let source = accel::source::generated(320, 180, 25, 4, 25).unwrap();
        let latest =
            Arc::new(LatestThumbnails::new(ThumbnailSettings { interval: Duration::from_secs(2), width: 160 }));
        let (mut sender, receiver) = media::unit_channel(1024);
        for event in source.events {
            match event {
                StreamEvent::Tracks(tracks) => {
                    sender.announce(tracks).unwrap();
                }
                StreamEvent::Unit(unit) if unit.kind == TrackKind::Video => {
                    sender.send_unit(unit).unwrap();
                }
                StreamEvent::Unit(_) => {}
            }
        }
        drop(sender);
        let recording = tempfile::tempdir().unwrap();
        std::fs::write(recording.path().join(crate::recordings::layout::META_FILE), b"{}").unwrap();
        let stored = StoredThumbnails::new(recording.path().to_path_buf());
        run(&latest, "cam", "s1", "source", receiver, Some(stored));
        let picture = latest.get("cam").expect("a thumbnail");
        assert_eq!((picture.session.as_str(), picture.rendition.as_str()), ("s1", "source"));
        assert_eq!((picture.thumbnail.width, picture.thumbnail.height), (160, 90));
        assert_eq!(picture.thumbnail.pts, 180_000, "keyframes at 0, 1, 2, 3 s: taken at 0 and 2 s");
        // Kept with the recording as two tiles of one sheet.
        let tiles = crate::recordings::scrubbing::load(recording.path()).unwrap();
        let times: Vec<u64> = tiles.iter().map(|t| t.media_ms).collect();
        assert_eq!(times, [0, 2000]);
        assert_eq!((tiles[0].width, tiles[0].height), (160, 90));
        let sheet = std::fs::read(recording.path().join("thumbnails/sprite-0.jpg")).unwrap();
        assert_eq!(&sheet[..2], &[0xff, 0xd8], "a JPEG");
    }
}
