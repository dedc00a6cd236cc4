//! The fan-out of a session's renditions to its outputs: each output that
//! subscribed to a rendition has its own bounded queue, fed without ever
//! waiting (a full queue drops to the next keyframe and counts it, and a
//! track announcement that finds it full goes just before that keyframe),
//! with the tracks it did not ask for left out and the rest re-indexed.

use std::sync::Arc;

use media::{DropStats, EncodedUnit, StreamEvent, TrackInfo, TrackKind, UnitSender, unit_channel};

use super::ports::{Feed, Subscription, Tracks};

/// One output's queue of one rendition.
#[derive(Debug)]
struct Subscriber {
    /// Index of the output in the session's table.
    output: usize,
    tracks: Tracks,
    /// Source track index -> index in what this subscriber was announced (`None`: left out).
    map: Vec<Option<usize>>,
    /// Whether it was announced a video track (then only a video keyframe starts it).
    has_video: bool,
    /// Joined mid-stream: nothing is sent before a unit a decoder can start from.
    waiting_for_keyframe: bool,
    queue: UnitSender,
}

impl Subscriber {
    /// Sends `tracks` as this subscriber sees them. `false`: it has gone.
    fn announce(&mut self, tracks: &Arc<[TrackInfo]>) -> bool {
        let announced = match self.tracks {
            Tracks::All => {
                self.map = (0..tracks.len()).map(Some).collect();
                tracks.clone()
            }
            Tracks::Only(kind) => {
                let mut kept = Vec::new();
                self.map = tracks
                    .iter()
                    .map(|t| {
                        (t.kind == kind).then(|| {
                            kept.push(t.clone());
                            kept.len() - 1
                        })
                    })
                    .collect();
                Arc::from(kept)
            }
        };
        self.has_video = announced.iter().any(|t| t.kind == TrackKind::Video);
        self.queue.announce(announced).is_ok()
    }

    /// Sends `unit` if this subscriber wants its track. `false`: it has gone.
    fn send(&mut self, unit: &EncodedUnit) -> bool {
        let Some(Some(track)) = self.map.get(unit.track) else { return true };
        if self.waiting_for_keyframe {
            if !(unit.keyframe && (unit.kind == TrackKind::Video || !self.has_video)) {
                return true;
            }
            self.waiting_for_keyframe = false;
        }
        let mut unit = unit.clone();
        unit.track = *track;
        self.queue.send_unit(unit).is_ok()
    }
}

/// The subscribers of one rendition.
#[derive(Debug)]
pub struct Fanout {
    pub rendition: String,
    subscribers: Vec<Subscriber>,
    /// The last announcement, for outputs that subscribe later (they start at the next keyframe).
    last_tracks: Option<Arc<[TrackInfo]>>,
}

impl Fanout {
    pub fn new(rendition: impl Into<String>) -> Fanout {
        Fanout { rendition: rendition.into(), subscribers: Vec::new(), last_tracks: None }
    }

    /// A queue of `capacity` for output `output` if its subscription wants this
    /// rendition: the feed it reads, and the queue's drop counters.
    pub fn subscribe(
        &mut self,
        output: usize,
        subscription: &Subscription,
        capacity: usize,
    ) -> Option<(Feed, Arc<DropStats>)> {
        if !subscription.renditions.wants(&self.rendition) {
            return None;
        }
        let (queue, events) = unit_channel(capacity);
        let stats = queue.stats();
        let mut subscriber = Subscriber {
            output,
            tracks: subscription.tracks,
            map: Vec::new(),
            has_video: false,
            waiting_for_keyframe: false,
            queue,
        };
        if let Some(tracks) = &self.last_tracks {
            // Mid-stream: it starts at the next keyframe, with the tracks announced first.
            subscriber.waiting_for_keyframe = true;
            subscriber.announce(tracks);
        }
        self.subscribers.push(subscriber);
        Some((Feed { rendition: self.rendition.clone(), events }, stats))
    }

    /// Sends `event` to every subscriber; returns the outputs whose queue has gone.
    pub fn send(&mut self, event: &StreamEvent) -> Vec<usize> {
        let mut gone = Vec::new();
        if let StreamEvent::Tracks(tracks) = event {
            self.last_tracks = Some(tracks.clone());
        }
        self.subscribers.retain_mut(|s| {
            let alive = match event {
                StreamEvent::Tracks(tracks) => s.announce(tracks),
                StreamEvent::Unit(unit) => s.send(unit),
            };
            if !alive {
                gone.push(s.output);
            }
            alive
        });
        gone
    }

    /// Closes output `output`'s queue (it failed or detached).
    pub fn unsubscribe(&mut self, output: usize) {
        self.subscribers.retain(|s| s.output != output);
    }

    pub fn has_subscribers(&self) -> bool {
        !self.subscribers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use media::{AacConfig, Arrival, AvcConfig, CodecConfig, Timebase};

    use super::*;
    use crate::live::ports::Renditions;

    fn tracks() -> Arc<[TrackInfo]> {
        let video = TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec: CodecConfig::Avc(
                AvcConfig::from_record(Bytes::from_static(&media::test_vectors::AVCC_640X360)).unwrap(),
            ),
            frame_rate: None,
            bitrate: None,
        };
        let audio = TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(48_000),
            codec: CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap()),
            frame_rate: None,
            bitrate: None,
        };
        Arc::from(vec![video, audio])
    }

    fn unit(track: usize, kind: TrackKind, keyframe: bool, dts: i64) -> StreamEvent {
        StreamEvent::Unit(EncodedUnit {
            track,
            kind,
            pts: dts,
            dts,
            keyframe,
            data: Bytes::from_static(b"x"),
            arrival: Arrival::now(),
        })
    }

    #[tokio::test]
    async fn each_output_gets_what_it_asked_for_and_a_stalled_one_drops_alone() {
        let mut fanout = Fanout::new("source");
        let everything = Subscription::everything();
        let audio_only = Subscription { renditions: Renditions::All, tracks: Tracks::Only(TrackKind::Audio) };
        let elsewhere = Subscription { renditions: Renditions::Named(vec!["720p".into()]), tracks: Tracks::All };
        let (mut all, _) = fanout.subscribe(0, &everything, 64).unwrap();
        let (mut audio, _) = fanout.subscribe(1, &audio_only, 64).unwrap();
        let (_stalled, stalled_drops) = fanout.subscribe(2, &everything, 2).unwrap();
        assert!(fanout.subscribe(3, &elsewhere, 64).is_none(), "another rendition");

        fanout.send(&StreamEvent::Tracks(tracks()));
        for i in 0..10 {
            fanout.send(&unit(0, TrackKind::Video, i % 5 == 0, i));
            fanout.send(&unit(1, TrackKind::Audio, true, i));
        }
        let Some(StreamEvent::Tracks(t)) = audio.events.recv().await else { panic!("announcement first") };
        assert_eq!((t.len(), t[0].kind), (1, TrackKind::Audio), "audio alone, re-indexed");
        for i in 0..10 {
            let Some(StreamEvent::Unit(u)) = audio.events.recv().await else { panic!("audio unit") };
            assert_eq!((u.track, u.kind, u.dts), (0, TrackKind::Audio, i));
        }
        assert!(matches!(all.events.recv().await, Some(StreamEvent::Tracks(t)) if t.len() == 2));
        let mut received = 0;
        while let Ok(Some(_)) = tokio::time::timeout(std::time::Duration::from_millis(10), all.events.recv()).await {
            received += 1;
        }
        assert_eq!(received, 20, "every unit reached the output that keeps up");
        assert_eq!(stalled_drops.dropped_units(), 19, "the stalled output kept its announcement and one unit");
        assert_eq!(stalled_drops.drop_episodes(), 1);
    }

    #[tokio::test]
    async fn a_late_subscriber_is_announced_the_tracks_and_a_gone_one_is_reported() {
        let mut fanout = Fanout::new("source");
        fanout.send(&StreamEvent::Tracks(tracks()));
        fanout.send(&unit(0, TrackKind::Video, true, 0));
        fanout.send(&unit(0, TrackKind::Video, false, 1));
        let (mut late, late_drops) = fanout.subscribe(0, &Subscription::everything(), 8).unwrap();
        assert!(matches!(late.events.recv().await, Some(StreamEvent::Tracks(t)) if t.len() == 2));
        // Mid-GOP: it starts at the next video keyframe, and what it skipped is not a drop.
        fanout.send(&unit(0, TrackKind::Video, false, 2));
        fanout.send(&unit(1, TrackKind::Audio, true, 2));
        fanout.send(&unit(0, TrackKind::Video, true, 3));
        assert!(matches!(late.events.recv().await, Some(StreamEvent::Unit(u)) if u.dts == 3 && u.keyframe));
        assert_eq!(late_drops.dropped_units(), 0);
        let (gone, _) = fanout.subscribe(1, &Subscription::everything(), 8).unwrap();
        drop(gone);
        assert_eq!(fanout.send(&unit(0, TrackKind::Video, true, 4)), [1]);
        assert!(fanout.has_subscribers());
        fanout.unsubscribe(0);
        assert!(!fanout.has_subscribers());
    }
}
