//! Sealed segments handed to a subscriber off the live path (the recorder):
//! every segment a rendition completes, with its init section and metadata,
//! the same bytes the origin serves. The queue is bounded and offering never
//! waits: a full queue drops the segment and counts it, so a slow disk never
//! stalls packaging. The stream ends when every rendition holding the tap
//! has ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use media::TrackInfo;
use tokio::sync::mpsc;

/// One complete segment of one rendition, as published.
#[derive(Debug, Clone)]
pub struct SealedSegment {
    /// The rendition's name (`source`, `720p`, ...).
    pub rendition: Arc<str>,
    pub msn: u64,
    /// Seconds of media.
    pub duration: f64,
    pub program_date_time: SystemTime,
    /// Starts after a discontinuity (new tracks, or the producer restarted).
    pub discontinuity: bool,
    /// The version of the init section it needs, and that section.
    pub init_version: u32,
    pub init: Bytes,
    /// The tracks the init section describes (codecs, resolution, frame rate).
    pub tracks: Arc<[TrackInfo]>,
    /// The segment: its parts concatenated (`moof`+`mdat` pairs).
    pub data: Bytes,
}

/// Counters of a tap, shared by both ends.
#[derive(Debug, Default)]
pub struct TapStats {
    offered: AtomicU64,
    dropped: AtomicU64,
}

impl TapStats {
    /// Segments offered to the subscriber.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }

    /// Segments dropped because the subscriber's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The producing end, cloned into every rendition of a stream.
#[derive(Debug, Clone)]
pub struct SegmentTap {
    sender: mpsc::Sender<SealedSegment>,
    stats: Arc<TapStats>,
}

/// The subscriber's end.
#[derive(Debug)]
pub struct SegmentReceiver {
    receiver: mpsc::Receiver<SealedSegment>,
    stats: Arc<TapStats>,
}

/// A tap holding at most `capacity` segments.
pub fn segment_tap(capacity: usize) -> (SegmentTap, SegmentReceiver) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let stats = Arc::new(TapStats::default());
    (SegmentTap { sender, stats: stats.clone() }, SegmentReceiver { receiver, stats })
}

impl SegmentTap {
    /// Hands `segment` over without waiting; `false` when it was dropped
    /// (the queue is full, counted) or the subscriber has gone.
    pub fn offer(&self, segment: SealedSegment) -> bool {
        self.stats.offered.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(segment) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl SegmentReceiver {
    /// The next segment; `None` once every rendition has ended. Blocks the
    /// thread: for a subscriber's own thread, never the async runtime.
    pub fn blocking_recv(&mut self) -> Option<SealedSegment> {
        self.receiver.blocking_recv()
    }

    pub async fn recv(&mut self) -> Option<SealedSegment> {
        self.receiver.recv().await
    }

    pub fn stats(&self) -> Arc<TapStats> {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(msn: u64) -> SealedSegment {
        SealedSegment {
            rendition: Arc::from("source"),
            msn,
            duration: 1.0,
            program_date_time: SystemTime::UNIX_EPOCH,
            discontinuity: false,
            init_version: 0,
            init: Bytes::new(),
            tracks: Arc::from(Vec::new()),
            data: Bytes::from_static(b"seg"),
        }
    }

    #[tokio::test]
    async fn a_full_tap_drops_and_counts_and_ends_with_its_senders() {
        let (tap, mut receiver) = segment_tap(2);
        let second = tap.clone();
        assert!(tap.offer(segment(0)));
        assert!(second.offer(segment(1)));
        assert!(!tap.offer(segment(2)), "full: dropped, never waited for");
        let stats = receiver.stats();
        assert_eq!((stats.offered(), stats.dropped()), (3, 1));
        assert_eq!(receiver.recv().await.map(|s| s.msn), Some(0));
        assert!(tap.offer(segment(3)));
        drop((tap, second));
        assert_eq!(receiver.recv().await.map(|s| s.msn), Some(1));
        assert_eq!(receiver.recv().await.map(|s| s.msn), Some(3));
        assert!(receiver.recv().await.is_none(), "ends once every sender has gone");
    }

    #[tokio::test]
    async fn a_tapped_rendition_hands_over_each_segment_it_serves_and_ends_the_stream() {
        use std::time::{Duration, Instant};

        use media::LatencyMode;

        use crate::rendition::{Rendition, WindowConfig};
        use crate::segmenter::{Output, PartOutput};

        let (tap, mut receiver) = segment_tap(8);
        let window =
            WindowConfig { mode: LatencyMode::Low, window_segments: 4, segment_target: Duration::from_secs(2) };
        let rendition = Rendition::new("720p", window).tapped(tap);
        let init = Bytes::from_static(b"init-v0");
        let pdt = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let part = |msn, index, data: &'static [u8]| {
            Output::Part(PartOutput {
                msn,
                index,
                duration: 1.0,
                independent: index == 0,
                data: Bytes::from_static(data),
                first_arrival: Instant::now(),
            })
        };
        rendition.apply(&[
            Output::Init { version: 0, data: init.clone(), tracks: Arc::from(Vec::new()) },
            Output::SegmentStart { msn: 0, program_date_time: pdt, discontinuity: false, init_version: 0 },
            part(0, 0, b"aa"),
            part(0, 1, b"bb"),
        ]);
        assert!(receiver.receiver.try_recv().is_err(), "nothing before the segment is complete");
        rendition.apply(&[Output::SegmentEnd { msn: 0, duration: 2.0 }]);
        let sealed = receiver.recv().await.expect("the complete segment");
        assert_eq!((&*sealed.rendition, sealed.msn, sealed.duration), ("720p", 0, 2.0));
        assert_eq!((sealed.init_version, &sealed.init[..]), (0, &init[..]));
        assert_eq!((sealed.program_date_time, sealed.discontinuity), (pdt, false));
        assert_eq!(Some(sealed.data), rendition.segment(0), "the very bytes the origin serves");
        rendition.end();
        assert!(receiver.recv().await.is_none(), "the rendition ended: the stream ends");
    }
}
