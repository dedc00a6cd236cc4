//! The session's audio stage, in front of passthrough and ladder alike: a
//! stream whose audio is AAC (or that has none) never reaches it (the
//! session checks each announcement, `needs_transcode`); MP3, G.711 or Opus
//! audio is decoded once and encoded once to AAC-LC (`accel::audio`) on a
//! dedicated thread, before the ladder splits, so every rendition shares one
//! AAC track. Once started, every event of the session goes through the
//! thread, so audio and video stay in order. The announcement keeps the audio
//! track's index and carries the AAC configuration; video passes untouched.
//! When the decoder cannot open (or the transcode fails) the session goes on
//! without audio, with one warning. The channel's sound processing makes AAC
//! go through the transcoder too; a new one (`?restart=now`) reaches the
//! thread by a watch channel and is followed at the next event: what the
//! transcoder holds is encoded, and the audio is announced again.

use std::sync::Arc;

use tokio::sync::watch;

use accel::audio::AacTranscoder;
use accel::pipeline::truncate_thread_name;
use media::{EncodedUnit, SendError, SoundProcessing, StreamEvent, TrackInfo, UnitReceiver, UnitSender, unit_channel};

/// Events queued into the thread, and out of it to what follows (the packager or the ladder).
const STAGE_QUEUE: usize = 256;

/// Whether `tracks` carry audio that the stage must transcode to AAC: not
/// AAC, or any audio when the channel has `sound` processing to apply.
pub fn needs_transcode(tracks: &[TrackInfo], sound: &SoundProcessing) -> bool {
    transcode_index(tracks, sound).is_some()
}

/// A running audio stage: the session writes `input` and reads `output`.
#[derive(Debug)]
pub struct AudioStage {
    pub input: UnitSender,
    pub output: UnitReceiver,
    pub thread: std::thread::JoinHandle<()>,
    /// Set to start the sound's fade-out (the operator stopped the channel).
    pub fade_out: watch::Sender<bool>,
}

/// Starts the stage's thread for `channel` (its name, for the thread and
/// logs), applying its `sound` processing as it is now and as it changes.
pub fn start(channel: &str, mut sound: watch::Receiver<SoundProcessing>) -> std::io::Result<AudioStage> {
    let (input, events) = unit_channel(STAGE_QUEUE);
    let (out, output) = unit_channel(STAGE_QUEUE);
    let name = truncate_thread_name(format!("audio-{channel}"));
    // The session's span (channel, session) follows the stage onto its thread.
    let span = tracing::info_span!("audio");
    let current = sound.borrow_and_update().clone();
    let (fade_out, fading) = watch::channel(false);
    let worker = Worker {
        out,
        route: Route::PassThrough,
        tracks: Arc::from(Vec::new()),
        map: Vec::new(),
        sound,
        current,
        fading,
    };
    let thread = std::thread::Builder::new().name(name).spawn(move || span.in_scope(|| worker.run(events)))?;
    Ok(AudioStage { input, output, thread, fade_out })
}

/// The index of the audio track that must be transcoded to AAC, if any.
fn transcode_index(tracks: &[TrackInfo], sound: &SoundProcessing) -> Option<usize> {
    let shaped = |t: &TrackInfo| !sound.is_identity() && matches!(t.codec, media::CodecConfig::Aac(_));
    tracks.iter().position(|t| t.codec.needs_aac_transcode() || shaped(t))
}

/// What happens to the source's audio track.
enum Route {
    /// AAC or no audio: nothing to do.
    PassThrough,
    /// Transcoded to AAC; units of track `index` go through `transcoder`.
    Transcode { index: usize, source: TrackInfo, transcoder: Box<AacTranscoder> },
    /// Left out (its decoder could not open, or the transcode failed).
    Dropped { index: usize, source: TrackInfo },
}

/// The stage's thread.
struct Worker {
    out: UnitSender,
    route: Route,
    /// The source's last announcement.
    tracks: Arc<[TrackInfo]>,
    /// Source track index -> index in the output announcement (`None`: left out).
    map: Vec<Option<usize>>,
    /// The channel's sound processing, and the one applied now.
    sound: watch::Receiver<SoundProcessing>,
    current: SoundProcessing,
    /// Becomes true when the sound is to fade out.
    fading: watch::Receiver<bool>,
}

impl Worker {
    fn run(mut self, mut events: UnitReceiver) {
        let mut run = || -> Result<(), SendError> {
            while let Some(event) = events.blocking_recv() {
                self.follow_sound()?;
                self.follow_fade();
                match event {
                    StreamEvent::Tracks(tracks) => self.on_tracks(tracks)?,
                    StreamEvent::Unit(unit) => self.on_unit(unit)?,
                }
            }
            self.finish_transcode()
        };
        // An error here only says that the consumer has gone: the stream is over.
        let _ = run();
    }

    /// New sound processing from the session: the audio is routed again for
    /// it (the old transcoder's last frames first), and announced again.
    fn follow_sound(&mut self) -> Result<(), SendError> {
        if !self.sound.has_changed().unwrap_or(false) {
            return Ok(());
        }
        self.current = self.sound.borrow_and_update().clone();
        tracing::info!(sound = ?self.current, "the audio follows new sound processing");
        if self.tracks.is_empty() {
            return Ok(());
        }
        self.finish_transcode()?;
        self.route = Route::PassThrough;
        let tracks = self.tracks.clone();
        self.on_tracks(tracks)
    }

    /// Starts the transcoder's fade-out once the session asks for it.
    fn follow_fade(&mut self) {
        if !self.fading.has_changed().unwrap_or(false) || !*self.fading.borrow_and_update() {
            return;
        }
        if let Route::Transcode { transcoder, .. } = &mut self.route
            && let Err(error) = transcoder.fade_out()
        {
            tracing::warn!(%error, "the sound cannot fade out; it ends at once");
        }
    }

    fn on_tracks(&mut self, tracks: Arc<[TrackInfo]>) -> Result<(), SendError> {
        let wanted = transcode_index(&tracks, &self.current).map(|index| (index, tracks[index].clone()));
        let same = match (&self.route, &wanted) {
            (Route::Transcode { index, source, .. } | Route::Dropped { index, source }, Some((i, s))) => {
                index == i && source == s
            }
            (Route::PassThrough, None) => true,
            _ => false,
        };
        if !same {
            // What the old transcoder still holds belongs to the old announcement.
            self.finish_transcode()?;
            self.route = match wanted {
                None => Route::PassThrough,
                Some((index, source)) => match AacTranscoder::with_sound(&source, &self.current) {
                    Ok(transcoder) => {
                        tracing::info!(
                            codec = source.codec.name(),
                            rate = transcoder.track().timebase.0,
                            "audio transcoded to AAC-LC for every rendition"
                        );
                        Route::Transcode { index, source, transcoder: Box::new(transcoder) }
                    }
                    Err(error) => {
                        tracing::warn!(codec = source.codec.name(), reason = %error, "audio cannot be transcoded to AAC; the session goes on without audio");
                        Route::Dropped { index, source }
                    }
                },
            };
        }
        self.tracks = tracks.clone();
        self.announce(&tracks)
    }

    /// Sends the announcement as what follows sees it: the AAC track in the
    /// transcoded track's place, or without a dropped track.
    fn announce(&mut self, tracks: &[TrackInfo]) -> Result<(), SendError> {
        let mut announced = Vec::with_capacity(tracks.len());
        self.map.clear();
        for (i, track) in tracks.iter().enumerate() {
            match &self.route {
                Route::Transcode { index, transcoder, .. } if *index == i => announced.push(transcoder.track().clone()),
                Route::Dropped { index, .. } if *index == i => {
                    self.map.push(None);
                    continue;
                }
                _ => announced.push(track.clone()),
            }
            self.map.push(Some(announced.len() - 1));
        }
        self.out.blocking_send_tracks(Arc::from(announced))
    }

    fn on_unit(&mut self, mut unit: EncodedUnit) -> Result<(), SendError> {
        if let Route::Transcode { index, transcoder, .. } = &mut self.route
            && unit.track == *index
        {
            let mut encoded = Vec::new();
            match transcoder.push(&unit, &mut encoded) {
                Ok(()) => return self.send_all(encoded),
                Err(error) => return self.transcode_failed(error),
            }
        }
        let Some(Some(track)) = self.map.get(unit.track) else { return Ok(()) };
        unit.track = *track;
        self.out.send_unit(unit).map(|_| ())
    }

    fn send_all(&mut self, units: Vec<EncodedUnit>) -> Result<(), SendError> {
        for unit in units {
            self.out.send_unit(unit)?;
        }
        Ok(())
    }

    /// The transcode failed while running: the session goes on without audio (announced again).
    fn transcode_failed(&mut self, error: accel::AccelError) -> Result<(), SendError> {
        let Route::Transcode { index, source, transcoder } = std::mem::replace(&mut self.route, Route::PassThrough)
        else {
            return Ok(());
        };
        tracing::warn!(codec = source.codec.name(), %error, stats = ?transcoder.stats(), "audio transcode failed; the session goes on without audio");
        self.route = Route::Dropped { index, source };
        let tracks = self.tracks.clone();
        self.announce(&tracks)
    }

    /// Drains the running transcoder (the publish ended or the audio changed) and logs what it did.
    fn finish_transcode(&mut self) -> Result<(), SendError> {
        let Route::Transcode { transcoder, source, .. } = &mut self.route else { return Ok(()) };
        let mut encoded = Vec::new();
        if let Err(error) = transcoder.finish(&mut encoded) {
            tracing::warn!(codec = source.codec.name(), %error, "the end of the audio could not be encoded");
        }
        let stats = transcoder.stats();
        tracing::info!(
            codec = source.codec.name(),
            units_in = stats.units_in,
            units_out = stats.units_out,
            corrupt_units = stats.corrupt_units,
            silence_ms = stats.silence_samples * 1000 / transcoder.track().timebase.0.max(1) as u64,
            reanchors = stats.reanchors,
            "audio transcode ended"
        );
        self.send_all(encoded)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use media::{AacConfig, Arrival, AudioCodec, AvcConfig, CodecConfig, OtherAudioConfig, Timebase, TrackKind};

    use super::*;

    use media::test_vectors::AVCC_640X360;

    fn video() -> TrackInfo {
        TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC_640X360)).unwrap()),
            frame_rate: Some((25, 1)),
            bitrate: None,
        }
    }

    fn audio(codec: CodecConfig, rate: u32) -> TrackInfo {
        TrackInfo { kind: TrackKind::Audio, timebase: Timebase(rate), codec, frame_rate: None, bitrate: Some(64_000) }
    }

    fn unit(track: usize, kind: TrackKind, pts: i64, data: Vec<u8>) -> EncodedUnit {
        EncodedUnit { track, kind, pts, dts: pts, keyframe: true, data: Bytes::from(data), arrival: Arrival::now() }
    }

    /// One second of 25 fps video (each frame's data is its number) and the
    /// audio the source sent with it (`audio_unit` for the i-th of 50 units, 20 ms each).
    async fn publish(tracks: Vec<TrackInfo>, audio_unit: impl Fn(usize) -> EncodedUnit) -> Vec<StreamEvent> {
        publish_changing(tracks, audio_unit, None).await
    }

    /// `publish`, with the sound processing changed to `change.1` before the `change.0`-th audio unit.
    async fn publish_changing(
        tracks: Vec<TrackInfo>,
        audio_unit: impl Fn(usize) -> EncodedUnit,
        change: Option<(usize, SoundProcessing)>,
    ) -> Vec<StreamEvent> {
        let (sound, follow) = watch::channel(SoundProcessing::default());
        let AudioStage { input: mut tx, output: mut stage, thread, .. } = start("test", follow).unwrap();
        tx.send_tracks(Arc::from(tracks)).await.unwrap();
        let mut events = Vec::new();
        if change.is_some() {
            // The change comes after the first announcement went out.
            events.extend(tokio::time::timeout(Duration::from_secs(30), stage.recv()).await.expect("announced"));
        }
        for i in 0..50 {
            if let Some((at, new)) = &change
                && *at == i
            {
                sound.send_replace(new.clone());
            }
            tx.send_unit(audio_unit(i)).unwrap();
            if i % 2 == 0 {
                let frame = i as i64 / 2;
                tx.send_unit(unit(0, TrackKind::Video, frame * 3_600, vec![frame as u8])).unwrap();
            }
            tokio::task::yield_now().await;
        }
        drop(tx);
        loop {
            match tokio::time::timeout(Duration::from_secs(30), stage.recv()).await {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {
                    thread.join().expect("the stage's thread ends cleanly");
                    return events;
                }
                Err(_) => panic!("the audio stage never ended"),
            }
        }
    }

    fn announced(events: &[StreamEvent]) -> Vec<Arc<[TrackInfo]>> {
        events.iter().filter_map(|e| if let StreamEvent::Tracks(t) = e { Some(t.clone()) } else { None }).collect()
    }

    fn units(events: &[StreamEvent], kind: TrackKind) -> Vec<EncodedUnit> {
        events
            .iter()
            .filter_map(|e| if let StreamEvent::Unit(u) = e { Some(u.clone()) } else { None })
            .filter(|u| u.kind == kind)
            .collect()
    }

    /// The video went through untouched and in order.
    fn assert_video_untouched(events: &[StreamEvent]) {
        let video = units(events, TrackKind::Video);
        assert_eq!(video.len(), 25);
        for (i, u) in video.iter().enumerate() {
            assert_eq!((u.track, u.pts, &u.data[..]), (0, i as i64 * 3_600, &[i as u8][..]));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aac_passes_through_untouched() {
        let aac = CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap());
        let tracks = vec![video(), audio(aac, 48_000)];
        assert!(!needs_transcode(&tracks, &SoundProcessing::default()), "the session keeps AAC off the stage's thread");
        let louder = SoundProcessing { gain_db: 6.0, ..SoundProcessing::default() };
        assert!(needs_transcode(&tracks, &louder), "unless its sound is processed");
        // And a stage already running (an earlier announcement had MP3) passes AAC untouched.
        let events = publish(tracks.clone(), |i| unit(1, TrackKind::Audio, i as i64 * 1024, vec![0x21, i as u8])).await;
        assert_eq!(announced(&events), [Arc::from(tracks)]);
        assert_video_untouched(&events);
        let audio = units(&events, TrackKind::Audio);
        assert_eq!(audio.len(), 50);
        assert!(audio.iter().enumerate().all(|(i, u)| u.pts == i as i64 * 1024 && u.data[1] == i as u8));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn g711_becomes_aac_in_its_place() {
        let g711 = audio(CodecConfig::OtherAudio(OtherAudioConfig::g711(AudioCodec::G711MuLaw, 1)), 8_000);
        assert!(needs_transcode(&[video(), g711.clone()], &SoundProcessing::default()));
        // 20 ms of a square wave a unit: 160 mu-law bytes.
        let square = |i: usize| {
            unit(1, TrackKind::Audio, i as i64 * 160, (0..160).map(|n| if n % 16 < 8 { 0x20 } else { 0xa0 }).collect())
        };
        let events = publish(vec![video(), g711], square).await;
        let tracks = announced(&events);
        assert_eq!(tracks.len(), 1);
        assert_eq!(tracks[0][0], video());
        let CodecConfig::Aac(aac) = &tracks[0][1].codec else { panic!("{:?}", tracks[0][1].codec) };
        assert_eq!((aac.object_type, aac.sample_rate, aac.channels), (2, 8_000, 1));
        assert_eq!((tracks[0][1].timebase, tracks[0][1].kind), (Timebase(8_000), TrackKind::Audio));
        assert_video_untouched(&events);
        let audio = units(&events, TrackKind::Audio);
        // One second of 8 kHz audio is 7.8 AAC frames: 8 with the last one padded.
        assert_eq!(audio.len(), 8);
        assert!(audio.iter().enumerate().all(|(i, u)| u.track == 1 && u.pts == i as i64 * 1024 && u.dts == u.pts));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_sound_processing_is_followed_mid_stream() {
        let g711 = audio(CodecConfig::OtherAudio(OtherAudioConfig::g711(AudioCodec::G711MuLaw, 1)), 8_000);
        let square = |i: usize| {
            unit(1, TrackKind::Audio, i as i64 * 160, (0..160).map(|n| if n % 16 < 8 { 0x20 } else { 0xa0 }).collect())
        };
        let mono_16k: SoundProcessing = serde_json::from_str(r#"{"resample":{"rate":16000,"layout":"mono"}}"#).unwrap();
        let events = publish_changing(vec![video(), g711], square, Some((25, mono_16k))).await;
        // Announced again with the new sound: 16 kHz AAC from then on.
        let tracks = announced(&events);
        assert_eq!(tracks.len(), 2, "{tracks:?}");
        let rates: Vec<u32> = tracks.iter().map(|t| t[1].timebase.0).collect();
        assert_eq!(rates, [8_000, 16_000]);
        assert_video_untouched(&events);
        let second =
            events.iter().position(|e| matches!(e, StreamEvent::Tracks(t) if t[1].timebase.0 == 16_000)).unwrap();
        let after = units(&events[second..], TrackKind::Audio);
        assert!(!after.is_empty() && after.iter().all(|u| u.track == 1), "{after:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_decoder_that_cannot_open_leaves_the_video_alone() {
        let broken = OtherAudioConfig {
            codec: AudioCodec::Opus,
            sample_rate: 48_000,
            channels: 2,
            extradata: Bytes::from_static(b"OpusHead"),
        };
        let events = publish(vec![video(), audio(CodecConfig::OtherAudio(broken), 48_000)], |i| {
            unit(1, TrackKind::Audio, i as i64 * 960, vec![0xfc, 0xff, 0xfe])
        })
        .await;
        assert_eq!(announced(&events), [Arc::from(vec![video()])]);
        assert_video_untouched(&events);
        assert!(units(&events, TrackKind::Audio).is_empty());
    }
}
