//! A channel's sound controls as one libavfilter graph on the AAC encoder's
//! input (planar float at the output rate and layout): karaoke `pan`, gain
//! `volume`, equaliser `bass`/`treble`/`equalizer`, loudness (`ebur128`
//! measuring, a `volume` the `Leveler` steers, a 4x oversampled `alimiter` as
//! the true-peak limit), `acompressor`, `alimiter` and `afade`; the last
//! step gives frames of the encoder's size back.
//!
//! Loudness is live: FFmpeg's `loudnorm` needs either two passes or, in its
//! one-pass dynamic mode, a 3 s lookahead (3 s more latency on every channel,
//! and it works at 192 kHz); `dynaudnorm` has a lookahead of several seconds
//! too and no LUFS target. So `ebur128` measures the source's loudness
//! (momentary while its first 3 s fill, short-term after) and the gain follows
//! `target - measured` at a bounded rate: no lookahead, converged within about
//! a second of the session's start, and a steady source gets a steady gain.

use ffmpeg_next as ffmpeg;
use media::sound::{EqKind, SoundProcessing};

use crate::error::AccelError;
use crate::ffi;

/// The `volume` filter the `Leveler` steers (its instance name in the graph).
const LEVELER: &str = "volume@leveler";
/// The `volume` filter that fades out when the operator stops the channel.
const FADE_OUT: &str = "volume@fadeout";
/// Loudness below this is silence: the gain holds rather than rising into the noise.
const SILENCE_LUFS: f64 = -60.0;
/// The most the leveler raises or lowers the source.
const MAX_LEVELER_DB: f64 = 30.0;
/// Until the short-term window (3 s) has filled, the gain steers by the
/// momentary loudness (400 ms) and moves fast so that the session starts at its level.
const SETTLE_SECONDS: f64 = 3.0;
const MOMENTARY_SECONDS: f64 = 0.4;
const SETTLE_DB_PER_SECOND: f64 = 40.0;
/// After that, slowly enough not to pump.
const FOLLOW_DB_PER_SECOND: f64 = 3.0;
/// True-peak detection oversamples 4x, as ITU-R BS.1770's meter does.
const TRUE_PEAK_OVERSAMPLING: u32 = 4;

/// The chain of filters for `sound` on audio at `rate` with `channels` (1 or
/// 2), in FFmpeg's syntax, and what was left out with why.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainText {
    pub filters: Vec<String>,
    pub skipped: Vec<String>,
}

/// `soxr`: whether the linked FFmpeg has the SoX resampler (`aresample`'s
/// options differ).
pub fn chain_text(sound: &SoundProcessing, rate: u32, channels: u8, soxr: bool) -> ChainText {
    let mut filters = Vec::new();
    let mut skipped = Vec::new();
    if sound.karaoke {
        if channels == 2 {
            // What is panned to the centre is equal in both: the difference cancels it.
            filters.push("pan=stereo|c0=c0-c1|c1=c1-c0".to_string());
        } else {
            skipped.push("karaoke: the output is mono".to_string());
        }
    }
    if sound.gain_db != 0.0 {
        filters.push(format!("volume=volume={}dB:precision=float", sound.gain_db));
    }
    let nyquist = rate / 2;
    for band in &sound.equalizer {
        if band.frequency_hz >= nyquist {
            skipped.push(format!("equalizer at {} Hz: above {nyquist} Hz at {rate} Hz", band.frequency_hz));
            continue;
        }
        let name = match band.kind {
            EqKind::LowShelf => "bass",
            EqKind::HighShelf => "treble",
            EqKind::Peak => "equalizer",
        };
        filters.push(format!("{name}=f={}:t=q:w={}:g={}", band.frequency_hz, band.q, band.gain_db));
    }
    if sound.loudness.is_some() {
        filters.push("ebur128=metadata=1".to_string());
        filters.push(format!("{LEVELER}=volume=1:precision=float"));
    }
    if let Some(c) = &sound.compressor {
        filters.push(format!(
            "acompressor=threshold={}:ratio={}:attack={}:release={}:makeup={}",
            linear(c.threshold_db),
            c.ratio,
            c.attack_ms,
            c.release_ms,
            linear(c.makeup_db)
        ));
    }
    if let Some(l) = &sound.limiter {
        filters.push(format!(
            "alimiter=limit={}:attack={}:release={}:level=0",
            linear(l.threshold_db),
            l.attack_ms,
            l.release_ms
        ));
    }
    if let Some(loudness) = &sound.loudness {
        let engine = if soxr { ":resampler=soxr:precision=28" } else { ":filter_size=64:phase_shift=10" };
        filters.push(format!("aresample={}{engine}", rate * TRUE_PEAK_OVERSAMPLING));
        filters.push(format!("alimiter=limit={}:attack=1:release=50:level=0", linear(loudness.true_peak_db)));
        filters.push(format!("aresample={rate}{engine}"));
    }
    if sound.fade_in_ms > 0 {
        filters.push(format!("afade=t=in:st=0:d={}:curve=tri", f64::from(sound.fade_in_ms) / 1000.0));
    }
    if sound.fade_out_ms > 0 {
        // Full level until `SoundGraph::fade_out` gives it a ramp of the frames' time.
        filters.push(format!("{FADE_OUT}=volume=1:eval=frame:precision=float"));
    }
    let layout = if channels == 1 { "mono" } else { "stereo" };
    filters.push(format!("aformat=sample_fmts=fltp:sample_rates={rate}:channel_layouts={layout}"));
    ChainText { filters, skipped }
}

fn linear(db: f64) -> String {
    format!("{:.6}", 10f64.powf(db / 20.0))
}

/// Whether the linked FFmpeg resamples with libsoxr (Debian's does).
pub fn has_soxr() -> bool {
    static SOXR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SOXR.get_or_init(|| {
        ffi::init();
        let mut graph = ffmpeg::filter::Graph::new();
        let built = (|| {
            graph
                .add(
                    &ffmpeg::filter::find("abuffer")?,
                    "in",
                    "sample_rate=44100:sample_fmt=fltp:channel_layout=stereo:time_base=1/44100",
                )
                .ok()?;
            graph.add(&ffmpeg::filter::find("abuffersink")?, "out", "").ok()?;
            graph.output("in", 0).ok()?.input("out", 0).ok()?.parse("aresample=48000:resampler=soxr").ok()?;
            let (validated, _) = ffi::capture_log(|| graph.validate());
            validated.ok()
        })();
        built.is_some()
    })
}

/// The running graph of one session's sound.
pub struct SoundGraph {
    graph: ffmpeg::filter::Graph,
    rate: u32,
    spec: String,
    leveler: Option<Leveler>,
    /// Seconds of the fade-out (0: none).
    fade_out: f64,
    /// Samples given to the graph (the next frame's pts in 1/rate).
    samples_in: i64,
}

impl SoundGraph {
    /// The graph of `sound` for planar float at `rate` in `layout`, giving
    /// frames of `frame_size` samples (the last one at the end may be shorter).
    pub fn build(
        sound: &SoundProcessing,
        rate: u32,
        layout: ffmpeg::ChannelLayout,
        frame_size: usize,
    ) -> Result<SoundGraph, AccelError> {
        ffi::init();
        let fail = |e: ffmpeg::Error| AccelError::Filter(e.to_string());
        let channels = if layout.channels() == 1 { 1 } else { 2 };
        let text = chain_text(sound, rate, channels, has_soxr());
        if !text.skipped.is_empty() {
            tracing::warn!(skipped = ?text.skipped, "sound processing: controls left out for this source");
        }
        let spec = text.filters.join(",");
        let layout_name = if channels == 1 { "mono" } else { "stereo" };
        let mut graph = ffmpeg::filter::Graph::new();
        let args = format!("sample_rate={rate}:sample_fmt=fltp:channel_layout={layout_name}:time_base=1/{rate}");
        graph.add(&ffmpeg::filter::find("abuffer").expect("libavfilter has abuffer"), "in", &args).map_err(fail)?;
        graph
            .add(&ffmpeg::filter::find("abuffersink").expect("libavfilter has abuffersink"), "out", "")
            .map_err(fail)?;
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&spec))
            .map_err(|e| AccelError::Filter(format!("{spec}: {e}")))?;
        let (validated, log) = ffi::capture_log(|| graph.validate());
        validated.map_err(|e| AccelError::Filter(format!("{spec}: {e}: {}", log.join(" / "))))?;
        graph.get("out").expect("just added").sink().set_frame_size(frame_size as u32);
        tracing::info!(%spec, "sound processing graph built");
        let leveler = sound.loudness.map(|l| Leveler::new(l.target_lufs));
        let fade_out = f64::from(sound.fade_out_ms) / 1000.0;
        Ok(SoundGraph { graph, rate, spec, leveler, fade_out, samples_in: 0 })
    }

    /// The graph in FFmpeg's syntax.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Starts the fade-out from the next sample given to the graph (a linear
    /// ramp to silence over `fade_out_ms`); none configured: nothing happens.
    pub fn fade_out(&mut self) -> Result<(), AccelError> {
        if self.fade_out <= 0.0 {
            return Ok(());
        }
        let from = self.samples_in as f64 / f64::from(self.rate);
        let ramp = format!("max(0,1-(t-{from:.6})/{})", self.fade_out);
        tracing::info!(from, seconds = self.fade_out, "sound fading out");
        ffi::send_graph_command(&mut self.graph, FADE_OUT, "volume", &ramp)
            .map_err(|e| AccelError::Filter(format!("the fade-out refused its ramp: {e}")))
    }

    /// The leveler's gain now (dB), when loudness is normalised.
    pub fn leveler_db(&self) -> Option<f64> {
        self.leveler.as_ref().map(|l| l.gain_db)
    }

    /// Filters one frame (its pts is set here: samples since the start);
    /// appends the frames that came out.
    pub fn push(
        &mut self,
        frame: &mut ffmpeg::frame::Audio,
        out: &mut Vec<ffmpeg::frame::Audio>,
    ) -> Result<(), AccelError> {
        frame.set_pts(Some(self.samples_in));
        self.samples_in += frame.samples() as i64;
        let mut source = self.graph.get("in").expect("the graph has its source");
        source.source().add(frame).map_err(|e| AccelError::Filter(e.to_string()))?;
        self.drain(out)
    }

    /// The input ended: appends what the graph still holds.
    pub fn finish(&mut self, out: &mut Vec<ffmpeg::frame::Audio>) -> Result<(), AccelError> {
        let mut source = self.graph.get("in").expect("the graph has its source");
        source.source().flush().map_err(|e| AccelError::Filter(e.to_string()))?;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut Vec<ffmpeg::frame::Audio>) -> Result<(), AccelError> {
        loop {
            let mut frame = ffmpeg::frame::Audio::empty();
            let got = self.graph.get("out").expect("the graph has its sink").sink().frame(&mut frame);
            match got {
                Ok(()) => {
                    self.steer(&frame)?;
                    out.push(frame);
                }
                Err(ffmpeg::Error::Other { errno: libc::EAGAIN }) | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(AccelError::Filter(e.to_string())),
            }
        }
    }

    /// Gives the leveler what `ebur128` measured (carried in the frame's metadata).
    fn steer(&mut self, frame: &ffmpeg::frame::Audio) -> Result<(), AccelError> {
        let Some(leveler) = &mut self.leveler else { return Ok(()) };
        let metadata = frame.metadata();
        let read = |key: &str| metadata.get(key).and_then(|v| v.trim().parse::<f64>().ok());
        let seconds = frame.samples() as f64 / f64::from(self.rate);
        let Some(gain) = leveler.step(read("lavfi.r128.M"), read("lavfi.r128.S"), seconds) else { return Ok(()) };
        ffi::send_graph_command(&mut self.graph, LEVELER, "volume", &format!("{:.6}", 10f64.powf(gain / 20.0)))
            .map_err(|e| AccelError::Filter(format!("the leveler refused a new gain: {e}")))
    }
}

impl std::fmt::Debug for SoundGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoundGraph").field("spec", &self.spec).field("leveler", &self.leveler).finish()
    }
}

/// The loudness normaliser's gain: toward `target - measured` at a bounded
/// rate, fast while the session settles, slow after; held through silence.
#[derive(Debug, Clone, PartialEq)]
pub struct Leveler {
    target: f64,
    /// The gain the leveler wants now, and the one last sent to the graph.
    gain_db: f64,
    applied_db: f64,
    /// Seconds of audio seen.
    seconds: f64,
}

impl Leveler {
    pub fn new(target_lufs: f64) -> Leveler {
        Leveler { target: target_lufs, gain_db: 0.0, applied_db: 0.0, seconds: 0.0 }
    }

    /// One frame of `seconds` came out with these measurements (LUFS) of the
    /// source before the leveler: the new gain (dB) when it changed enough to send.
    pub fn step(&mut self, momentary: Option<f64>, short_term: Option<f64>, seconds: f64) -> Option<f64> {
        self.seconds += seconds;
        let settling = self.seconds < SETTLE_SECONDS;
        let measured = if settling { momentary } else { short_term.or(momentary) };
        let measured = measured.filter(|m| self.seconds >= MOMENTARY_SECONDS && *m > SILENCE_LUFS)?;
        let wanted = (self.target - measured).clamp(-MAX_LEVELER_DB, MAX_LEVELER_DB);
        let rate = if settling { SETTLE_DB_PER_SECOND } else { FOLLOW_DB_PER_SECOND };
        let most = rate * seconds;
        self.gain_db += (wanted - self.gain_db).clamp(-most, most);
        if (self.gain_db - self.applied_db).abs() < 0.01 {
            return None;
        }
        self.applied_db = self.gain_db;
        Some(self.gain_db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sound(json: &str) -> SoundProcessing {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_chain_follows_the_controls_in_order() {
        assert_eq!(
            chain_text(&SoundProcessing::default(), 48_000, 2, true).filters,
            ["aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"]
        );
        let all = sound(
            r#"{"karaoke":true,"gain_db":6,"equalizer":[{"type":"low-shelf","frequency_hz":100,"gain_db":3},{"type":"high-shelf","frequency_hz":8000,"gain_db":-2,"q":1},{"type":"peak","frequency_hz":1000,"gain_db":-1.5,"q":2}],
                "loudness":{"target_lufs":-14},"compressor":{"threshold_db":-20},"limiter":{"threshold_db":-3},"fade_in_ms":1500,"fade_out_ms":2000}"#,
        );
        let text = chain_text(&all, 48_000, 2, true);
        assert_eq!(
            text.filters,
            [
                "pan=stereo|c0=c0-c1|c1=c1-c0",
                "volume=volume=6dB:precision=float",
                "bass=f=100:t=q:w=0.7071067811865476:g=3",
                "treble=f=8000:t=q:w=1:g=-2",
                "equalizer=f=1000:t=q:w=2:g=-1.5",
                "ebur128=metadata=1",
                "volume@leveler=volume=1:precision=float",
                "acompressor=threshold=0.100000:ratio=4:attack=20:release=250:makeup=1.000000",
                "alimiter=limit=0.707946:attack=5:release=50:level=0",
                "aresample=192000:resampler=soxr:precision=28",
                "alimiter=limit=0.891251:attack=1:release=50:level=0",
                "aresample=48000:resampler=soxr:precision=28",
                "afade=t=in:st=0:d=1.5:curve=tri",
                "volume@fadeout=volume=1:eval=frame:precision=float",
                "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo",
            ]
        );
        assert!(text.skipped.is_empty());
        // Mono: no karaoke; 8 kHz: no band above 4 kHz; no SoX: swr's high-quality settings.
        let text = chain_text(&all, 8_000, 1, false);
        assert_eq!(text.skipped, ["karaoke: the output is mono", "equalizer at 8000 Hz: above 4000 Hz at 8000 Hz"]);
        assert!(text.filters.contains(&"aresample=32000:filter_size=64:phase_shift=10".to_string()), "{text:?}");
        assert_eq!(text.filters.last().unwrap(), "aformat=sample_fmts=fltp:sample_rates=8000:channel_layouts=mono");
    }

    #[test]
    fn the_leveler_settles_fast_then_follows_slowly_and_holds_through_silence() {
        let mut leveler = Leveler::new(-23.0);
        let frame = 0.1;
        // Nothing before the momentary window has filled, nor on silence.
        for _ in 0..3 {
            assert_eq!(leveler.step(Some(-38.0), None, frame), None);
        }
        assert_eq!(leveler.step(Some(-90.0), None, frame), None);
        // 15 LU too quiet: +4 dB a frame (40 dB/s) until +15.
        let gains: Vec<f64> = (0..5).filter_map(|_| leveler.step(Some(-38.0), None, frame)).collect();
        assert_eq!(gains.len(), 4, "{gains:?}");
        assert!((gains[0] - 4.0).abs() < 1e-9 && (gains[3] - 15.0).abs() < 1e-9, "{gains:?}");
        // Steady: nothing more to send.
        for _ in 0..21 {
            assert_eq!(leveler.step(Some(-38.0), Some(-38.0), frame), None);
        }
        // After 3 s the short-term loudness steers, at 3 dB/s (0.3 dB a frame).
        let louder = leveler.step(Some(-20.0), Some(-28.0), frame).unwrap();
        assert!((louder - 14.7).abs() < 1e-9, "{louder}");
        // Silence holds the gain.
        assert_eq!(leveler.step(Some(-80.0), Some(-75.0), frame), None);
        // Never beyond 30 dB.
        let mut quiet = Leveler::new(-5.0);
        let last = (0..40).filter_map(|_| quiet.step(Some(-59.0), None, frame)).last().unwrap();
        assert_eq!(last, MAX_LEVELER_DB);
    }

    /// A 1 kHz stereo tone of `amplitude` through the graph of `json`: the frames out.
    fn run(json: &str, amplitude: f32, seconds: usize) -> (Vec<f32>, Vec<f32>, SoundGraph) {
        run_fading(json, amplitude, seconds, None)
    }

    /// `run`, with the fade-out started at frame `fade_at`.
    fn run_fading(
        json: &str,
        amplitude: f32,
        seconds: usize,
        fade_at: Option<usize>,
    ) -> (Vec<f32>, Vec<f32>, SoundGraph) {
        let mut graph = SoundGraph::build(&sound(json), 48_000, ffmpeg::ChannelLayout::STEREO, 1024).unwrap();
        let (mut left, mut right) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        let mut n = 0usize;
        for index in 0..seconds * 48_000 / 1024 {
            if fade_at == Some(index) {
                graph.fade_out().unwrap();
            }
            let mut frame = ffmpeg::frame::Audio::new(
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                1024,
                ffmpeg::ChannelLayout::STEREO,
            );
            frame.set_rate(48_000);
            for i in 0..1024 {
                let s = amplitude * (2.0 * std::f32::consts::PI * 1000.0 * (n + i) as f32 / 48_000.0).sin();
                frame.plane_mut::<f32>(0)[i] = s;
                frame.plane_mut::<f32>(1)[i] = s;
            }
            n += 1024;
            graph.push(&mut frame, &mut out).unwrap();
        }
        graph.finish(&mut out).unwrap();
        for f in &out {
            assert!(f.samples() <= 1024);
            left.extend_from_slice(&f.plane::<f32>(0)[..f.samples()]);
            right.extend_from_slice(&f.plane::<f32>(1)[..f.samples()]);
        }
        // Resampling 4x and back (the true-peak limiter) may round the end by a few samples.
        assert!(left.len().abs_diff(n) < 64, "{} samples out for {n} in", left.len());
        (left, right, graph)
    }

    fn rms_db(samples: &[f32]) -> f64 {
        let power = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
        10.0 * power.log10()
    }

    #[test]
    fn the_graph_applies_gain_karaoke_fade_and_levels_loudness() {
        let (plain, _, _) = run("{}", 0.1, 2);
        let (louder, _, _) = run(r#"{"gain_db":6}"#, 0.1, 2);
        let gain = rms_db(&louder[48_000..]) - rms_db(&plain[48_000..]);
        assert!((gain - 6.0).abs() < 0.05, "{gain}");
        let (karaoke, _, _) = run(r#"{"karaoke":true}"#, 0.1, 1);
        assert!(rms_db(&karaoke[4_800..]) < -100.0, "a centred tone cancels: {}", rms_db(&karaoke[4_800..]));
        // A 500 ms fade-out started at frame 47 (1.0027 s): silent from 1.5027 s on.
        let (ending, _, _) = run_fading(r#"{"fade_out_ms":500}"#, 0.1, 2, Some(47));
        let (before, during, after) =
            (rms_db(&ending[..48_000]), rms_db(&ending[48_128..60_000]), rms_db(&ending[73_000..]));
        assert!((before - rms_db(&plain[..48_000])).abs() < 0.01, "full level before the fade: {before}");
        assert!(during < before - 1.0 && during > before - 10.0, "fading: {during} against {before}");
        assert!(after < -90.0, "silent after the fade: {after}");
        let (faded, _, _) = run(r#"{"fade_in_ms":1000}"#, 0.1, 2);
        let (early, late) = (rms_db(&faded[..4_800]), rms_db(&faded[60_000..]));
        assert!(late - early > 15.0, "the first 100 ms of a 1 s fade-in: {early} against {late}");
        // A stereo 1 kHz tone of amplitude A measures 20 log10(A) LUFS: 0.0126 is -38, 15 LU below the target.
        let (levelled, _, graph) = run(r#"{"loudness":{}}"#, 0.0126, 4);
        let (plain, _, _) = run("{}", 0.1, 4);
        let lift = rms_db(&levelled[96_000..]) - rms_db(&plain[96_000..]) + 20.0 * (0.1f64 / 0.0126).log10();
        let leveler = graph.leveler_db().unwrap();
        eprintln!(
            "gain {gain:+.2} dB for +6; leveler {leveler:+.2} dB, output raised {lift:+.2} dB for a source 15 LU quiet"
        );
        assert!((leveler - 15.0).abs() < 1.5, "leveler at {leveler} dB");
        assert!((lift - leveler).abs() < 0.5, "output raised {lift} dB for a leveler at {leveler} dB");
        // The true-peak limiter's 4x oversampling and back leaves the tone as it was.
        let rising = levelled[96_000..144_000].windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!(rising.abs_diff(1000) <= 2, "{rising} cycles of a 1 kHz tone in a second");
    }
}
