//! The bounded stream of `StreamEvent`s between two stages. A consumer that
//! falls behind never grows memory: when the queue is full the producer drops
//! units until the next video keyframe (so the consumer resumes on a clean
//! decode point) and counts what it dropped. A producer that must never wait
//! (a session fanning out to outputs) announces tracks without waiting too:
//! an announcement that finds the queue full is kept and delivered before
//! the keyframe the consumer resumes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::track::{TrackInfo, TrackKind};
use crate::unit::{EncodedUnit, StreamEvent};

/// Creates a unit channel holding at most `capacity` events.
pub fn unit_channel(capacity: usize) -> (UnitSender, UnitReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let stats = Arc::new(DropStats::default());
    (
        UnitSender { tx, stats: stats.clone(), dropping: false, has_video: false, pending: None },
        UnitReceiver { rx, stats },
    )
}

/// Counters shared by both ends of a unit channel.
#[derive(Debug, Default)]
pub struct DropStats {
    dropped_units: AtomicU64,
    drop_episodes: AtomicU64,
}

impl DropStats {
    /// Units dropped because the consumer was behind.
    pub fn dropped_units(&self) -> u64 {
        self.dropped_units.load(Ordering::Relaxed)
    }

    /// Times the consumer fell behind (each one a skip to the next keyframe).
    pub fn drop_episodes(&self) -> u64 {
        self.drop_episodes.load(Ordering::Relaxed)
    }
}

/// Why a send did not deliver.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the consumer has gone")]
    Closed,
}

/// Producing end. Not `Clone`: one producer per stream keeps the drop state exact.
#[derive(Debug)]
pub struct UnitSender {
    tx: mpsc::Sender<StreamEvent>,
    stats: Arc<DropStats>,
    dropping: bool,
    has_video: bool,
    /// An announcement that found the queue full (`announce`), sent before the next unit that resumes.
    pending: Option<Arc<[TrackInfo]>>,
}

impl UnitSender {
    /// Announces the track set. Waits for room: announcements are rare and must not be lost.
    pub async fn send_tracks(&mut self, tracks: Arc<[TrackInfo]>) -> Result<(), SendError> {
        self.has_video = tracks.iter().any(|t| t.kind == TrackKind::Video);
        self.tx.send(StreamEvent::Tracks(tracks)).await.map_err(|_| SendError::Closed)
    }

    /// `send_tracks` for producers on dedicated threads (never call it on the runtime).
    pub fn blocking_send_tracks(&mut self, tracks: Arc<[TrackInfo]>) -> Result<(), SendError> {
        self.has_video = tracks.iter().any(|t| t.kind == TrackKind::Video);
        self.tx.blocking_send(StreamEvent::Tracks(tracks)).map_err(|_| SendError::Closed)
    }

    /// Announces the track set without waiting: when the queue is full the
    /// announcement is kept, units are dropped (counted) until the next
    /// keyframe, and the announcement goes just before it. Returns whether it
    /// was queued now.
    pub fn announce(&mut self, tracks: Arc<[TrackInfo]>) -> Result<bool, SendError> {
        self.has_video = tracks.iter().any(|t| t.kind == TrackKind::Video);
        self.pending = None;
        match self.tx.try_send(StreamEvent::Tracks(tracks)) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(StreamEvent::Tracks(tracks))) => {
                if !self.dropping {
                    self.stats.drop_episodes.fetch_add(1, Ordering::Relaxed);
                }
                self.dropping = true;
                self.pending = Some(tracks);
                Ok(false)
            }
            Err(mpsc::error::TrySendError::Full(_)) => unreachable!("a track announcement was sent"),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// Sends a unit without waiting. Returns `Ok(false)` when it was dropped.
    pub fn send_unit(&mut self, unit: EncodedUnit) -> Result<bool, SendError> {
        if self.dropping {
            let resumes = unit.keyframe && (unit.kind == TrackKind::Video || !self.has_video);
            if !resumes {
                self.stats.dropped_units.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
        }
        if let Some(tracks) = self.pending.take() {
            match self.tx.try_send(StreamEvent::Tracks(tracks)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(StreamEvent::Tracks(tracks))) => {
                    self.pending = Some(tracks);
                    self.stats.dropped_units.fetch_add(1, Ordering::Relaxed);
                    return Ok(false);
                }
                Err(mpsc::error::TrySendError::Full(_)) => unreachable!("a track announcement was sent"),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(SendError::Closed),
            }
        }
        match self.tx.try_send(StreamEvent::Unit(unit)) {
            Ok(()) => {
                self.dropping = false;
                Ok(true)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.dropping {
                    self.stats.drop_episodes.fetch_add(1, Ordering::Relaxed);
                }
                self.dropping = true;
                self.stats.dropped_units.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    pub fn stats(&self) -> Arc<DropStats> {
        self.stats.clone()
    }

    /// Whether the consumer has gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Consuming end.
#[derive(Debug)]
pub struct UnitReceiver {
    rx: mpsc::Receiver<StreamEvent>,
    stats: Arc<DropStats>,
}

impl UnitReceiver {
    /// Next event, or `None` once the producer has gone and the queue is drained.
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        self.rx.recv().await
    }

    /// Blocking variant for consumers on dedicated threads (never call it on the runtime).
    pub fn blocking_recv(&mut self) -> Option<StreamEvent> {
        self.rx.blocking_recv()
    }

    pub fn stats(&self) -> Arc<DropStats> {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::Arrival;
    use bytes::Bytes;

    fn unit(kind: TrackKind, keyframe: bool, dts: i64) -> EncodedUnit {
        EncodedUnit { track: kind as usize, kind, pts: dts, dts, keyframe, data: Bytes::new(), arrival: Arrival::now() }
    }

    #[tokio::test]
    async fn full_queue_drops_until_next_video_keyframe() {
        let (mut tx, mut rx) = unit_channel(2);
        tx.has_video = true;
        let sent: Vec<bool> = [
            unit(TrackKind::Video, true, 0),
            unit(TrackKind::Video, false, 1),
            unit(TrackKind::Video, false, 2), // full: dropped, starts dropping
            unit(TrackKind::Audio, true, 2),  // audio keyframe does not resume a video stream
        ]
        .into_iter()
        .map(|u| tx.send_unit(u).unwrap())
        .collect();
        assert_eq!(sent, [true, true, false, false]);
        rx.recv().await.unwrap();
        rx.recv().await.unwrap();
        // Room again, but still dropping until a video keyframe.
        assert!(!tx.send_unit(unit(TrackKind::Video, false, 3)).unwrap());
        assert!(tx.send_unit(unit(TrackKind::Video, true, 4)).unwrap());
        assert!(tx.send_unit(unit(TrackKind::Audio, true, 4)).unwrap());
        assert_eq!(tx.stats().dropped_units(), 3);
        assert_eq!(tx.stats().drop_episodes(), 1);
    }

    #[tokio::test]
    async fn an_announcement_to_a_full_queue_waits_for_the_next_keyframe() {
        let (mut tx, mut rx) = unit_channel(2);
        let video: Arc<[TrackInfo]> = Arc::from(vec![TrackInfo {
            kind: TrackKind::Video,
            timebase: crate::Timebase::VIDEO,
            codec: crate::CodecConfig::OtherAudio(crate::OtherAudioConfig::g711(crate::AudioCodec::G711ALaw, 1)),
            frame_rate: None,
            bitrate: None,
        }]);
        assert!(tx.announce(video.clone()).unwrap());
        assert!(tx.send_unit(unit(TrackKind::Video, true, 0)).unwrap());
        assert!(!tx.announce(video.clone()).unwrap(), "full: kept for later");
        assert!(!tx.send_unit(unit(TrackKind::Video, false, 1)).unwrap());
        rx.recv().await.unwrap();
        assert!(!tx.send_unit(unit(TrackKind::Video, false, 2)).unwrap(), "room, but no keyframe yet");
        rx.recv().await.unwrap();
        assert!(tx.send_unit(unit(TrackKind::Video, true, 3)).unwrap(), "the keyframe, after the announcement");
        assert!(matches!(rx.recv().await, Some(StreamEvent::Tracks(t)) if t == video));
        assert!(matches!(rx.recv().await, Some(StreamEvent::Unit(u)) if u.dts == 3));
        assert_eq!((tx.stats().dropped_units(), tx.stats().drop_episodes()), (2, 1));
    }

    #[tokio::test]
    async fn closed_consumer_is_reported() {
        let (mut tx, rx) = unit_channel(1);
        drop(rx);
        assert_eq!(tx.send_unit(unit(TrackKind::Audio, true, 0)), Err(SendError::Closed));
        assert!(tx.is_closed());
    }
}
