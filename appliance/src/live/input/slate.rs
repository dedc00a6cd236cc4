//! The slate of a session: rendered (`accel::slate`) on a blocking thread
//! whenever an input goes on air with a new picture size, so it is ready the
//! moment no input delivers; and, while on air, fed in real time: its one
//! second of video looped and its silent AAC frame repeated, timestamped
//! from zero (the port's timeline rebases them).
//!
//! Today the card is generated (the channel's name on a plain background);
//! an operator-uploaded image is a later step.

use std::sync::Arc;

use accel::slate::{Slate, SlateAudio};
use media::codec::AAC_FRAME_SAMPLES;
use media::{Arrival, CodecConfig, EncodedUnit, Timebase, TrackInfo, TrackKind};
use tokio::task::JoinHandle;

/// The slate's frame rate when the input declared none.
const DEFAULT_FPS: u32 = 30;

/// What a slate is rendered for: picture size, frame rate and audio format.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Format {
    width: u32,
    height: u32,
    fps: u32,
    audio: Option<SlateAudio>,
    /// The input's AAC-LC track, which the slate announces as its own: its
    /// silent frames decode with it, and a ladder's rungs see no new audio
    /// track (which would cost a discontinuity).
    aac: Option<TrackInfo>,
}

impl Format {
    fn of(tracks: &[TrackInfo]) -> Option<Format> {
        let video = tracks.iter().find(|t| t.kind == TrackKind::Video)?;
        let (width, height) = video.resolution()?;
        let fps = video
            .frame_rate
            .filter(|(n, d)| *n > 0 && *d > 0)
            .map_or(DEFAULT_FPS, |(n, d)| ((n as f64 / d as f64).round() as u32).clamp(1, 60));
        let input_audio = tracks.iter().find(|t| t.kind == TrackKind::Audio);
        let audio = input_audio.map(|t| match &t.codec {
            CodecConfig::Aac(aac) => SlateAudio { sample_rate: aac.sample_rate, channels: aac.channels.clamp(1, 2) },
            // Audio the session transcodes to AAC: the slate is already AAC at a common rate.
            _ => SlateAudio { sample_rate: 48_000, channels: 2 },
        });
        let aac = input_audio
            .filter(|t| matches!(&t.codec, CodecConfig::Aac(aac) if aac.object_type == 2 && aac.channels <= 2))
            .cloned();
        Some(Format { width, height, fps, audio, aac })
    }
}

/// A session's slates: the one for the latest format on air, ready or being rendered.
pub struct Slates {
    title: String,
    ready: Option<(Format, Arc<Slate>)>,
    rendering: Option<(Format, JoinHandle<Result<Slate, accel::AccelError>>)>,
}

impl Slates {
    pub fn new(title: &str) -> Slates {
        Slates { title: title.to_string(), ready: None, rendering: None }
    }

    /// An input went on air with `tracks`: renders their slate unless it is there or on its way.
    pub fn prepare(&mut self, tracks: &[TrackInfo]) {
        let Some(format) = Format::of(tracks) else { return };
        self.collect();
        let have = |f: Option<&Format>| f == Some(&format);
        if have(self.ready.as_ref().map(|(f, _)| f)) || have(self.rendering.as_ref().map(|(f, _)| f)) {
            return;
        }
        let (title, wanted) = (self.title.clone(), format.clone());
        let job = tokio::task::spawn_blocking(move || {
            let mut slate = accel::slate::render(&title, wanted.width, wanted.height, wanted.fps, wanted.audio)?;
            if let Some(aac) = wanted.aac {
                let mut tracks = slate.tracks.to_vec();
                tracks[1] = aac;
                slate.tracks = tracks.into();
            }
            Ok(slate)
        });
        self.rendering = Some((format, job));
    }

    /// Takes a finished rendering.
    fn collect(&mut self) {
        if !self.rendering.as_ref().is_some_and(|(_, job)| job.is_finished()) {
            return;
        }
        let (format, job) = self.rendering.take().expect("checked above");
        match futures_util::FutureExt::now_or_never(job) {
            Some(Ok(Ok(slate))) => {
                tracing::debug!(width = format.width, height = format.height, "slate rendered");
                self.ready = Some((format, Arc::new(slate)));
            }
            Some(Ok(Err(e))) => tracing::error!(error = %e, "cannot render the slate"),
            Some(Err(e)) => tracing::error!(error = %e, "the slate's rendering failed"),
            None => {}
        }
    }

    /// The slate to put on air now, if one is rendered.
    pub fn ready(&mut self) -> Option<Arc<Slate>> {
        self.collect();
        self.ready.as_ref().map(|(_, slate)| slate.clone())
    }
}

/// A slate on air: its units in real time.
pub struct SlateFeed {
    slate: Arc<Slate>,
    started: tokio::time::Instant,
    /// Video units sent, over every loop.
    video_sent: i64,
    /// Silent audio frames sent.
    audio_sent: i64,
}

impl SlateFeed {
    pub fn new(slate: Arc<Slate>) -> SlateFeed {
        SlateFeed { slate, started: tokio::time::Instant::now(), video_sent: 0, audio_sent: 0 }
    }

    /// The tracks it announces.
    pub fn tracks(&self) -> Arc<[TrackInfo]> {
        self.slate.tracks.clone()
    }

    /// The next unit, when it is due, with its track's timebase.
    pub async fn next(&mut self) -> (EncodedUnit, Timebase) {
        let frames = self.slate.video.len() as i64;
        let (n, i) = (self.video_sent / frames, (self.video_sent % frames) as usize);
        let video_dts = n * self.slate.period_ticks + self.slate.video[i].dts;
        let audio = self.slate.silence.clone().zip(self.slate.tracks.get(1).map(|t| t.timebase));
        let audio_dts = audio.as_ref().map(|(_, tb)| (self.audio_sent * AAC_FRAME_SAMPLES as i64, *tb));
        let video_due = Timebase::VIDEO.seconds(video_dts);
        let audio_first = audio_dts.is_some_and(|(dts, tb)| tb.seconds(dts) < video_due);
        let due = if audio_first { audio_dts.map_or(video_due, |(dts, tb)| tb.seconds(dts)) } else { video_due };
        tokio::time::sleep_until(self.started + std::time::Duration::from_secs_f64(due.max(0.0))).await;
        let arrival = Arrival::now();
        if audio_first {
            let ((data, timebase), (dts, _)) = (audio.expect("audio first"), audio_dts.expect("audio first"));
            self.audio_sent += 1;
            let unit = EncodedUnit { track: 1, kind: TrackKind::Audio, pts: dts, dts, keyframe: true, data, arrival };
            return (unit, timebase);
        }
        self.video_sent += 1;
        let source = &self.slate.video[i];
        let shift = n * self.slate.period_ticks;
        let unit = EncodedUnit { pts: source.pts + shift, dts: video_dts, arrival, ..source.clone() };
        (unit, Timebase::VIDEO)
    }
}
