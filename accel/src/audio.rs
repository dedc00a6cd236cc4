//! Audio that is not AAC (MP3, G.711, Opus) transcoded once to AAC-LC: the
//! source's decoder, swresample to the AAC encoder's planar float at the
//! source rate (48 kHz where AAC has no such rate) in mono or stereo (more
//! channels are downmixed), a FIFO cutting encoder-sized frames, and FFmpeg's
//! native `aac` encoder. Output timestamps count samples from the first source
//! timestamp in a timescale of the output rate, so they never drift; the source
//! clock is followed only where it departs by more than `DRIFT_TOLERANCE`:
//! a gap is filled with silence (up to `MAX_SILENCE`, beyond that the output
//! re-anchors and jumps with it), audio sent twice is trimmed, and a clock that
//! went back is rebased. A packet that does not decode is counted and skipped.
//! Synchronous and blocking: callers run it on a dedicated thread.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use ffmpeg::software::resampling;
use ffmpeg_next as ffmpeg;
use media::sound::Layout;
use media::{
    AacConfig, Arrival, AudioCodec, CodecConfig, EncodedUnit, OtherAudioConfig, SoundProcessing, Timebase, TrackInfo,
    TrackKind,
};

use crate::device::DeviceId;
use crate::error::AccelError;
use crate::ffi;
use crate::sound::SoundGraph;

/// FFmpeg's native AAC encoder (AAC-LC).
const ENCODER: &str = "aac";
/// AAC-LC bitrates of the output.
const STEREO_BITRATE: u32 = 128_000;
const MONO_BITRATE: u32 = 64_000;
/// Most bits the encoder can spend on one channel of one 1024-sample frame (ISO/IEC 14496-3 4.5.3.2).
const MAX_BITS_PER_CHANNEL_FRAME: u64 = 6144;
/// Output rate when AAC has no rate equal to the source's.
const FALLBACK_RATE: u32 = 48_000;
/// A source timestamp this close to the counted clock is the same instant.
pub const DRIFT_TOLERANCE: Duration = Duration::from_millis(10);
/// Source gaps up to this long are filled with silence (players stall at a
/// hole in the audio); a longer one re-anchors the output at the source's time.
pub const MAX_SILENCE: Duration = Duration::from_secs(2);

const PLANAR_FLOAT: ffmpeg::format::Sample = ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar);

/// What a transcoder has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioStats {
    /// Source units given to `push`.
    pub units_in: u64,
    /// Source units (or their frames) that failed to decode and were skipped.
    pub corrupt_units: u64,
    /// Samples per channel decoded from the source (before resampling).
    pub decoded_samples: u64,
    /// Samples of silence written into gaps of the source (and to align a re-anchor).
    pub silence_samples: u64,
    /// Samples dropped because the source sent audio for a time already covered.
    pub trimmed_samples: u64,
    /// Times the output followed a source jump (forward past `MAX_SILENCE`, or back).
    pub reanchors: u64,
    /// AAC units produced.
    pub units_out: u64,
}

/// Decodes one non-AAC audio track and encodes it once to AAC-LC.
pub struct AacTranscoder {
    /// The source codec's name, for logs.
    codec: String,
    /// The channel's sound controls, on the encoder's input; none: nothing to do.
    sound: Option<SoundGraph>,
    /// Resample with the high-quality settings (a chosen rate or layout).
    quality_resampler: bool,
    source_timebase: Timebase,
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<Resampler>,
    encoder: ffmpeg::encoder::Audio,
    output: TrackInfo,
    layout: ffmpeg::ChannelLayout,
    rate: u32,
    frame_size: usize,
    /// Resampled samples waiting for a whole encoder frame, one queue per channel.
    fifo: Vec<VecDeque<f32>>,
    /// Samples sent to the encoder (the pts of the next frame in its time base).
    encoded: i64,
    clock: SampleClock,
    /// (output time of a chunk's first sample, when its source unit arrived).
    arrivals: VecDeque<(i64, Arrival)>,
    arrival: Arrival,
    track: usize,
    stats: AudioStats,
}

/// A resampler for one input format.
struct Resampler {
    context: resampling::Context,
    input: (ffmpeg::format::Sample, u64, u32),
}

impl AacTranscoder {
    /// Opens the decoder for `source` (an audio track with `CodecConfig::OtherAudio`) and the AAC encoder.
    pub fn new(source: &TrackInfo) -> Result<Self, AccelError> {
        Self::with_sound(source, &SoundProcessing::default())
    }

    /// Opens the decoder for `source` and the AAC encoder, with `sound`
    /// applied before the encoder; an AAC source is transcoded only when
    /// `sound` does something.
    pub fn with_sound(source: &TrackInfo, sound: &SoundProcessing) -> Result<Self, AccelError> {
        ffi::init();
        let setup = match &source.codec {
            CodecConfig::OtherAudio(config) => DecoderSetup::other(config),
            CodecConfig::Aac(aac) if !sound.is_identity() => DecoderSetup::aac(aac),
            other => return Err(AccelError::Source(format!("{} audio needs no transcode to AAC", other.name()))),
        };
        let decoder = setup.open(source.timebase)?;
        let (rate, channels) = match &sound.resample {
            Some(r) => (r.rate, if r.layout == Layout::Mono { 1 } else { 2 }),
            None => (output_rate(setup.rate), if setup.channels == 1 { 1 } else { 2 }),
        };
        let layout = if channels == 1 { ffmpeg::ChannelLayout::MONO } else { ffmpeg::ChannelLayout::STEREO };
        let codec = ffmpeg::encoder::find_by_name(ENCODER).ok_or(AccelError::EncoderMissing(ENCODER))?;
        let bitrate = aac_bitrate(rate, channels);
        let open_error = |detail: String| AccelError::EncoderOpen { encoder: ENCODER, detail };
        let mut encoder =
            ffmpeg::codec::Context::new_with_codec(codec).encoder().audio().map_err(|e| open_error(e.to_string()))?;
        encoder.set_rate(rate as i32);
        encoder.set_channel_layout(layout);
        encoder.set_format(PLANAR_FLOAT);
        encoder.set_time_base((1, rate as i32));
        encoder.set_bit_rate(bitrate as usize);
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        let (opened, log) = ffi::capture_log(|| encoder.open());
        let encoder = opened.map_err(|e| open_error(with_log(e, &log)))?;
        let asc = ffi::extradata(encoder.as_ref());
        let aac = AacConfig::from_asc(Bytes::from(asc))
            .map_err(|e| open_error(format!("its AudioSpecificConfig does not parse: {e}")))?;
        let timebase = Timebase(rate);
        let output = TrackInfo {
            kind: TrackKind::Audio,
            timebase,
            codec: CodecConfig::Aac(aac),
            frame_rate: None,
            bitrate: Some(bitrate),
        };
        let frame_size = (encoder.frame_size() as usize).max(1);
        let shaped = SoundProcessing { resample: None, ..sound.clone() };
        let graph =
            if shaped.is_identity() { None } else { Some(SoundGraph::build(&shaped, rate, layout, frame_size)?) };
        tracing::debug!(codec = %setup.name, source_rate = setup.rate, rate, channels, bitrate, "audio transcoder opened");
        Ok(Self {
            codec: setup.name,
            sound: graph,
            quality_resampler: sound.resample.is_some(),
            source_timebase: source.timebase,
            decoder,
            resampler: None,
            encoder,
            output,
            layout,
            rate,
            frame_size,
            fifo: vec![VecDeque::with_capacity(frame_size * 4); channels as usize],
            encoded: 0,
            clock: SampleClock::new(timebase.ticks(DRIFT_TOLERANCE), timebase.ticks(MAX_SILENCE)),
            arrivals: VecDeque::new(),
            arrival: Arrival::now(),
            track: 0,
            stats: AudioStats::default(),
        })
    }

    /// Starts the sound's fade-out (the operator stopped the channel); nothing without one.
    pub fn fade_out(&mut self) -> Result<(), AccelError> {
        match &mut self.sound {
            Some(graph) => graph.fade_out(),
            None => Ok(()),
        }
    }

    /// The AAC track the output units belong to (its `AudioSpecificConfig` is the encoder's).
    pub fn track(&self) -> &TrackInfo {
        &self.output
    }

    /// The codec being transcoded, by name.
    pub fn source_codec(&self) -> &str {
        &self.codec
    }

    pub fn stats(&self) -> AudioStats {
        self.stats
    }

    /// Decodes one source unit and appends the AAC units that became ready
    /// (each one frame, `track` as the source unit's). A unit that does not
    /// decode is counted and skipped; errors are the encoder's or the resampler's.
    pub fn push(&mut self, unit: &EncodedUnit, out: &mut Vec<EncodedUnit>) -> Result<(), AccelError> {
        self.track = unit.track;
        self.arrival = unit.arrival;
        self.stats.units_in += 1;
        let mut packet = ffmpeg::Packet::copy(&unit.data);
        packet.set_pts(Some(unit.pts));
        packet.set_dts(Some(unit.dts));
        if let Err(e) = self.decoder.send_packet(&packet) {
            self.corrupt(e);
        }
        self.drain_decoder(out)
    }

    /// The source ended: decodes what the decoder holds, encodes the last
    /// (short) frame and drains the encoder.
    pub fn finish(&mut self, out: &mut Vec<EncodedUnit>) -> Result<(), AccelError> {
        if self.decoder.send_eof().is_ok() {
            self.drain_decoder(out)?;
        }
        self.encode_ready(out, true)?;
        self.encoder.send_eof().map_err(|e| self.encode_error(e))?;
        self.receive_packets(out)
    }

    fn corrupt(&mut self, error: ffmpeg::Error) {
        self.stats.corrupt_units += 1;
        if self.stats.corrupt_units.is_power_of_two() {
            tracing::warn!(codec = %self.codec, %error, total = self.stats.corrupt_units, "source audio failed to decode; skipped");
        }
    }

    fn drain_decoder(&mut self, out: &mut Vec<EncodedUnit>) -> Result<(), AccelError> {
        loop {
            let mut frame = ffmpeg::frame::Audio::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => self.on_decoded(frame, out)?,
                Err(ffmpeg::Error::Other { errno: libc::EAGAIN }) | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => {
                    self.corrupt(e);
                    return Ok(());
                }
            }
        }
    }

    fn on_decoded(&mut self, mut frame: ffmpeg::frame::Audio, out: &mut Vec<EncodedUnit>) -> Result<(), AccelError> {
        if frame.samples() == 0 {
            return Ok(());
        }
        self.stats.decoded_samples += frame.samples() as u64;
        let source_time =
            frame.pts().or(frame.timestamp()).map(|pts| self.source_timebase.rescale(pts, Timebase(self.rate)));
        let converted = self.resample(&mut frame)?;
        let count = converted.samples();
        let skip = match self.clock.place(source_time, self.frame_size as i64) {
            Placement::Continue => 0,
            Placement::Silence(samples) => {
                self.write_silence(samples as usize);
                0
            }
            Placement::Reanchor { pad, at } => {
                self.write_silence(pad as usize);
                self.clock.anchor(at);
                self.stats.reanchors += 1;
                tracing::info!(codec = %self.codec, to = at, "source audio jumped; output re-anchored");
                0
            }
            Placement::Rebase => {
                self.stats.reanchors += 1;
                tracing::info!(codec = %self.codec, "source audio clock went back; output continues");
                0
            }
            Placement::Trim(samples) => (samples as usize).min(count),
        };
        self.stats.trimmed_samples += skip as u64;
        if skip < count {
            let start = self.clock.next_time();
            self.arrivals.push_back((start, self.arrival));
            for (channel, queue) in self.fifo.iter_mut().enumerate() {
                queue.extend(&converted.plane::<f32>(channel)[skip..count]);
            }
            self.clock.wrote((count - skip) as i64);
        }
        self.encode_ready(out, false)
    }

    /// `frame` in the encoder's format, layout and rate.
    fn resample(&mut self, frame: &mut ffmpeg::frame::Audio) -> Result<ffmpeg::frame::Audio, AccelError> {
        let fail = |e: ffmpeg::Error| AccelError::Resample(e.to_string());
        let mut layout = frame.channel_layout();
        if layout.is_empty() || layout.channels() != frame.channels() as i32 {
            // PCM decoders may leave the layout unspecified: the default for the channel count.
            layout = ffmpeg::ChannelLayout::default(frame.channels() as i32);
            frame.set_channel_layout(layout);
        }
        let input = (frame.format(), layout.bits(), frame.rate());
        if self.resampler.as_ref().is_none_or(|r| r.input != input) {
            let options = if self.quality_resampler { quality_resampler_options() } else { ffmpeg::Dictionary::new() };
            let context =
                resampling::Context::get_with(input.0, layout, input.2, PLANAR_FLOAT, self.layout, self.rate, options)
                    .map_err(|e| {
                        AccelError::Resample(format!("{:?} {} Hz {} ch: {e}", input.0, input.2, layout.channels()))
                    })?;
            self.resampler = Some(Resampler { context, input });
        }
        let resampler = self.resampler.as_mut().expect("created above");
        let capacity = frame.samples() as u64 * self.rate as u64 / input.2.max(1) as u64 + 256;
        let mut converted = ffmpeg::frame::Audio::new(PLANAR_FLOAT, capacity as usize, self.layout);
        resampler.context.run(frame, &mut converted).map_err(fail)?;
        Ok(converted)
    }

    fn write_silence(&mut self, samples: usize) {
        if samples == 0 {
            return;
        }
        let start = self.clock.next_time();
        self.arrivals.push_back((start, self.arrival));
        for queue in &mut self.fifo {
            queue.extend(std::iter::repeat_n(0.0, samples));
        }
        self.clock.wrote(samples as i64);
        self.stats.silence_samples += samples as u64;
    }

    /// Encodes every whole frame in the FIFO (and the short rest when `last`),
    /// through the sound graph when there is one.
    fn encode_ready(&mut self, out: &mut Vec<EncodedUnit>, last: bool) -> Result<(), AccelError> {
        loop {
            let queued = self.fifo[0].len();
            if queued == 0 || (queued < self.frame_size && !last) {
                break;
            }
            let count = queued.min(self.frame_size);
            let mut frame = ffmpeg::frame::Audio::new(PLANAR_FLOAT, count, self.layout);
            frame.set_rate(self.rate);
            for (channel, queue) in self.fifo.iter_mut().enumerate() {
                for (to, from) in frame.plane_mut::<f32>(channel).iter_mut().zip(queue.drain(..count)) {
                    *to = from;
                }
            }
            match &mut self.sound {
                None => self.encode(frame, out)?,
                Some(graph) => {
                    let mut shaped = Vec::new();
                    graph.push(&mut frame, &mut shaped)?;
                    for frame in shaped {
                        self.encode(frame, out)?;
                    }
                }
            }
        }
        if last && let Some(graph) = &mut self.sound {
            let mut shaped = Vec::new();
            graph.finish(&mut shaped)?;
            for frame in shaped {
                self.encode(frame, out)?;
            }
        }
        Ok(())
    }

    /// Sends one frame to the encoder, timed by the samples sent before it.
    fn encode(&mut self, mut frame: ffmpeg::frame::Audio, out: &mut Vec<EncodedUnit>) -> Result<(), AccelError> {
        frame.set_rate(self.rate);
        frame.set_pts(Some(self.encoded));
        self.encoded += frame.samples() as i64;
        self.encoder.send_frame(&frame).map_err(|e| self.encode_error(e))?;
        self.receive_packets(out)
    }

    fn receive_packets(&mut self, out: &mut Vec<EncodedUnit>) -> Result<(), AccelError> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {}
                Err(ffmpeg::Error::Other { errno: libc::EAGAIN }) | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(self.encode_error(e)),
            }
            let (Some(pts), Some(data)) = (packet.pts(), packet.data()) else { continue };
            if pts < 0 {
                // The encoder's priming frame: it decodes to the silence before the first sample.
                continue;
            }
            let at = self.clock.output_time(pts);
            let last_sample = at + packet.duration().max(1) - 1;
            while self.arrivals.get(1).is_some_and(|(time, _)| *time <= last_sample) {
                self.arrivals.pop_front();
            }
            let arrival = self.arrivals.front().map_or(self.arrival, |(_, a)| *a);
            self.stats.units_out += 1;
            out.push(EncodedUnit {
                track: self.track,
                kind: TrackKind::Audio,
                pts: at,
                dts: at,
                keyframe: true,
                data: Bytes::copy_from_slice(data),
                arrival,
            });
        }
    }

    fn encode_error(&self, e: ffmpeg::Error) -> AccelError {
        AccelError::Encode { encoder: ENCODER, device: DeviceId::cpu(), detail: e.to_string() }
    }
}

impl std::fmt::Debug for AacTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacTranscoder")
            .field("source", &self.codec)
            .field("rate", &self.rate)
            .field("channels", &self.fifo.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The AAC-LC bitrate for a rate and channel count: 128 kbit/s stereo, 64
/// kbit/s mono, capped where low rates cannot carry that much.
pub fn aac_bitrate(rate: u32, channels: u8) -> u32 {
    let nominal = if channels == 1 { MONO_BITRATE } else { STEREO_BITRATE };
    let cap = MAX_BITS_PER_CHANNEL_FRAME * channels as u64 * rate as u64 / 1024;
    nominal.min(cap.min(u32::MAX as u64) as u32)
}

fn with_log(error: ffmpeg::Error, log: &[String]) -> String {
    if log.is_empty() { error.to_string() } else { format!("{error}: {}", log.join(" / ")) }
}

/// What opening a source's decoder takes.
struct DecoderSetup {
    id: ffmpeg::codec::Id,
    /// The codec's name, for errors and logs.
    name: String,
    extradata: Bytes,
    rate: u32,
    channels: u8,
}

impl DecoderSetup {
    fn other(config: &OtherAudioConfig) -> DecoderSetup {
        let id = match config.codec {
            AudioCodec::Mp3 => ffmpeg::codec::Id::MP3,
            AudioCodec::G711ALaw => ffmpeg::codec::Id::PCM_ALAW,
            AudioCodec::G711MuLaw => ffmpeg::codec::Id::PCM_MULAW,
            AudioCodec::Opus => ffmpeg::codec::Id::OPUS,
        };
        DecoderSetup {
            id,
            name: config.codec.to_string(),
            extradata: config.extradata.clone(),
            rate: config.sample_rate,
            channels: config.channels,
        }
    }

    /// AAC, decoded only to apply sound processing (its AudioSpecificConfig as extradata).
    fn aac(config: &AacConfig) -> DecoderSetup {
        DecoderSetup {
            id: ffmpeg::codec::Id::AAC,
            name: "AAC".to_string(),
            extradata: config.asc.clone(),
            rate: config.sample_rate,
            channels: config.channels.max(1),
        }
    }

    fn open(&self, timebase: Timebase) -> Result<ffmpeg::decoder::Audio, AccelError> {
        let open_error = |detail: String| AccelError::DecoderOpen { decoder: self.name.clone(), detail };
        let codec = ffmpeg::decoder::find(self.id).ok_or_else(|| open_error("not built into this FFmpeg".into()))?;
        let mut ctx = ffi::NotOpenedCodec::new(codec);
        if !self.extradata.is_empty() {
            ctx.set_extradata(&self.extradata);
        }
        ctx.set_audio_format(self.rate, self.channels);
        let mut decoder = ctx.into_context().decoder();
        decoder.set_packet_time_base((1, timebase.0.min(i32::MAX as u32) as i32));
        let (opened, log) = ffi::capture_log(|| decoder.audio());
        opened.map_err(|e| open_error(with_log(e, &log)))
    }
}

/// The source's rate where AAC has it, else `FALLBACK_RATE`.
fn output_rate(source_rate: u32) -> u32 {
    let supported = ffmpeg::encoder::find_by_name(ENCODER)
        .and_then(|codec| codec.audio().ok())
        .and_then(|a| a.rates())
        .map(|r| r.collect::<Vec<i32>>())
        .unwrap_or_default();
    if supported.is_empty() || supported.contains(&(source_rate as i32)) { source_rate } else { FALLBACK_RATE }
}

/// swresample at its best for a chosen rate or layout: a 64-tap filter
/// with finer phases. Not the SoX resampler: it gives its output in blocks
/// (tens of milliseconds late), which the sample clock would take for gaps
/// in the source; the graph's 4x oversampling, which has no clock to keep,
/// uses it.
pub const QUALITY_RESAMPLER: [(&str, &str); 3] =
    [("filter_size", "64"), ("phase_shift", "12"), ("exact_rational", "1")];

fn quality_resampler_options() -> ffmpeg::Dictionary<'static> {
    let mut options = ffmpeg::Dictionary::new();
    for (key, value) in QUALITY_RESAMPLER {
        options.set(key, value);
    }
    options
}

/// How a decoded chunk joins the output timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Right after the previous samples.
    Continue,
    /// After this many samples of silence filling a gap in the source.
    Silence(i64),
    /// Its first samples cover time already output: drop this many.
    Trim(i64),
    /// The source jumped ahead past `MAX_SILENCE`: pad the encoder's input to a
    /// frame boundary with `pad` samples of silence, then the output continues at `at`.
    Reanchor { pad: i64, at: i64 },
    /// The source clock went back past `MAX_SILENCE`: followed from here, the output continuing.
    Rebase,
}

/// Output times of the samples entering the encoder, all in ticks of the
/// output rate: counted from the first source timestamp (so they never
/// drift), and told how to follow the source where it departs from the count.
#[derive(Debug)]
struct SampleClock {
    tolerance: i64,
    max_silence: i64,
    /// Samples written so far (the encoder's input timeline).
    written: i64,
    /// Output time of the next sample; `None` before the first.
    next: Option<i64>,
    /// Added to source times to compare them with output times; moves when the source clock goes back.
    offset: i64,
    /// (encoder sample index, output time) where each continuous run starts.
    anchors: VecDeque<(i64, i64)>,
}

impl SampleClock {
    fn new(tolerance: i64, max_silence: i64) -> Self {
        Self { tolerance, max_silence, written: 0, next: None, offset: 0, anchors: VecDeque::new() }
    }

    fn place(&mut self, source: Option<i64>, frame_size: i64) -> Placement {
        let Some(next) = self.next else {
            self.anchor(source.unwrap_or(0));
            return Placement::Continue;
        };
        let Some(source) = source else { return Placement::Continue };
        let drift = source + self.offset - next;
        if drift.abs() <= self.tolerance {
            Placement::Continue
        } else if drift > self.max_silence {
            let pad = (frame_size - self.written % frame_size) % frame_size;
            Placement::Reanchor { pad, at: source + self.offset }
        } else if drift > 0 {
            Placement::Silence(drift)
        } else if -drift <= self.max_silence {
            Placement::Trim(-drift)
        } else {
            self.offset -= drift;
            Placement::Rebase
        }
    }

    /// The next sample written is at output time `at` (at or after the current end).
    fn anchor(&mut self, at: i64) {
        let at = self.next.map_or(at, |next| at.max(next));
        self.anchors.push_back((self.written, at));
        self.next = Some(at);
    }

    fn wrote(&mut self, samples: i64) {
        self.written += samples;
        self.next = Some(self.next.unwrap_or(0) + samples);
    }

    fn next_time(&self) -> i64 {
        self.next.unwrap_or(0)
    }

    /// Output time of the encoder's sample `index` (packets come out in order).
    fn output_time(&mut self, index: i64) -> i64 {
        while self.anchors.get(1).is_some_and(|(start, _)| *start <= index) {
            self.anchors.pop_front();
        }
        self.anchors.front().map_or(index, |(start, at)| at + (index - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        let cases =
            [(48_000, 2, 128_000), (44_100, 1, 64_000), (8_000, 1, 48_000), (8_000, 2, 96_000), (16_000, 2, 128_000)];
        for (rate, channels, want) in cases {
            assert_eq!(aac_bitrate(rate, channels), want, "{rate} Hz x {channels}");
        }
    }

    #[test]
    fn sample_clock_follows_the_source_only_where_it_departs() {
        // 48 kHz: tolerance 480 samples (10 ms), silence up to 96 000 (2 s).
        let mut clock = SampleClock::new(480, 96_000);
        assert_eq!(clock.place(Some(4_800), 1024), Placement::Continue, "anchored at the first source time");
        clock.wrote(1_152);
        assert_eq!(clock.place(Some(5_952 + 300), 1024), Placement::Continue, "jitter is ignored");
        clock.wrote(1_152);
        // A 100 ms gap (after the expected 7 104): silence.
        assert_eq!(clock.place(Some(7_104 + 4_800), 1024), Placement::Silence(4_800));
        clock.wrote(4_800 + 1_152);
        // Audio repeated for 21 ms: trimmed off the front of the next chunk.
        assert_eq!(clock.place(Some(13_056 - 1_024), 1024), Placement::Trim(1_024));
        clock.wrote(1_152 - 1_024);
        assert_eq!(clock.next_time(), 13_184);
        // A 5 s jump: re-anchored at a frame boundary of the encoder's input.
        let jump = clock.place(Some(13_184 + 240_000), 1024);
        assert_eq!(jump, Placement::Reanchor { pad: 1024 - 8_384 % 1024, at: 253_184 });
        clock.wrote(1024 - 8_384 % 1024);
        clock.anchor(253_184);
        clock.wrote(1_152);
        // The source clock went back 10 s: the output continues.
        assert_eq!(clock.place(Some(254_336 - 480_000), 1024), Placement::Rebase);
        clock.wrote(1_152);
        assert_eq!(clock.place(Some(254_336 - 480_000 + 1_152), 1024), Placement::Continue);
        // Encoder sample indexes to output times across the re-anchor.
        assert_eq!(clock.output_time(0), 4_800);
        assert_eq!(clock.output_time(8_192), 12_992);
        assert_eq!(clock.output_time(9_216), 253_184);
        assert_eq!(clock.output_time(10_240), 254_208);
    }

    #[test]
    fn what_is_not_other_audio_is_refused() {
        let aac = TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(48_000),
            codec: CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap()),
            frame_rate: None,
            bitrate: None,
        };
        let err = AacTranscoder::new(&aac).unwrap_err();
        assert_eq!(err.to_string(), "source not accepted: AAC audio needs no transcode to AAC");
    }

    #[test]
    fn a_decoder_that_cannot_open_says_why() {
        let opus = TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(48_000),
            codec: CodecConfig::OtherAudio(OtherAudioConfig {
                codec: AudioCodec::Opus,
                sample_rate: 48_000,
                channels: 2,
                extradata: Bytes::from_static(b"OpusHead\x01\x02"),
            }),
            frame_rate: None,
            bitrate: None,
        };
        let err = AacTranscoder::new(&opus).unwrap_err();
        assert!(matches!(&err, AccelError::DecoderOpen { decoder, .. } if decoder == "Opus"), "{err}");
    }

    /// For the timings the tests print (never asserted: speed is the bench's business).
    const BUILD: &str = if cfg!(debug_assertions) { "debug" } else { "release" };

    /// Runs the `ffmpeg` program and returns what it wrote to `file`; `None` (said loudly) without it.
    fn ffmpeg_output(args: &[&str], file: &str) -> Option<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-y"])
            .args(args)
            .arg(&path)
            .status();
        match status {
            Ok(s) if s.success() => Some(std::fs::read(&path).unwrap()),
            Ok(s) => panic!("ffmpeg {args:?} failed: {s}"),
            Err(_) => {
                test_tools::skip("the ffmpeg program is not installed");
                None
            }
        }
    }

    fn unit(track: usize, pts: i64, data: &[u8]) -> EncodedUnit {
        EncodedUnit {
            track,
            kind: TrackKind::Audio,
            pts,
            dts: pts,
            keyframe: true,
            data: Bytes::copy_from_slice(data),
            arrival: Arrival::now(),
        }
    }

    fn other_track(config: OtherAudioConfig) -> TrackInfo {
        TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(config.sample_rate),
            codec: CodecConfig::OtherAudio(config),
            frame_rate: None,
            bitrate: None,
        }
    }

    /// A 440 Hz tone of `seconds` as MP3 (libmp3lame), split into frames with
    /// our header parser, timed in samples as ingest times them.
    fn mp3_source(rate: u32, channels: u8, seconds: u32) -> Option<(TrackInfo, Vec<EncodedUnit>)> {
        let source = format!("sine=f=440:d={seconds}:sample_rate={rate}");
        let (rate_arg, channels_arg) = (rate.to_string(), channels.to_string());
        let args = ["-f", "lavfi", "-i", &source, "-ar", &rate_arg, "-ac", &channels_arg, "-c:a", "libmp3lame"];
        let mp3 = ffmpeg_output(
            &[&args[..], &["-b:a", "128k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3"]].concat(),
            "tone.mp3",
        )?;
        let frames: Vec<&[u8]> = media::mpeg_audio::frames(&mp3).map(|f| f.expect("whole MP3 frames").1).collect();
        let config = OtherAudioConfig::from_mp3_frame(frames[0]).unwrap();
        assert_eq!((config.sample_rate, config.channels), (rate, channels));
        let mut pts = 0;
        let units = frames
            .iter()
            .map(|frame| {
                let u = unit(1, pts, frame);
                pts += media::mpeg_audio::samples_in(frame).unwrap() as i64;
                u
            })
            .collect();
        Some((other_track(config), units))
    }

    /// Decodes AAC units with FFmpeg's AAC decoder: (first channel's samples, decode errors).
    fn decode_aac(track: &TrackInfo, units: &[EncodedUnit]) -> (Vec<f32>, usize) {
        let CodecConfig::Aac(aac) = &track.codec else { panic!("not AAC: {:?}", track.codec) };
        let codec = ffmpeg::decoder::find(ffmpeg::codec::Id::AAC).unwrap();
        let mut ctx = ffi::NotOpenedCodec::new(codec);
        ctx.set_extradata(&aac.asc);
        let mut decoder = ctx.into_context().decoder().audio().unwrap();
        let (mut samples, mut errors) = (Vec::new(), 0);
        let mut frame = ffmpeg::frame::Audio::empty();
        for u in units {
            if decoder.send_packet(&ffmpeg::Packet::copy(&u.data)).is_err() {
                errors += 1;
            }
            while decoder.receive_frame(&mut frame).is_ok() {
                assert_eq!(frame.format(), PLANAR_FLOAT);
                samples.extend_from_slice(&frame.plane::<f32>(0)[..frame.samples()]);
            }
        }
        (samples, errors)
    }

    /// The frequency of a tone from its rising zero crossings.
    fn tone_hz(samples: &[f32], rate: u32) -> f64 {
        let rising = samples.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        rising as f64 * rate as f64 / samples.len() as f64
    }

    /// Transcodes every unit, then finishes; returns the AAC units and the wall time it took.
    fn transcode(transcoder: &mut AacTranscoder, units: &[EncodedUnit]) -> (Vec<EncodedUnit>, Duration) {
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        for u in units {
            transcoder.push(u, &mut out).unwrap();
        }
        transcoder.finish(&mut out).unwrap();
        (out, started.elapsed())
    }

    fn assert_contiguous(units: &[EncodedUnit], start: i64) {
        assert_eq!(units[0].pts, start, "anchored at the first source timestamp");
        for w in units.windows(2) {
            assert_eq!(w[1].pts - w[0].pts, 1024, "contiguous AAC frames");
            assert_eq!((w[1].dts, w[1].track, w[1].keyframe), (w[1].pts, 1, true));
        }
    }

    #[test]
    fn mp3_becomes_decodable_aac_lc_of_the_same_length() {
        for (rate, channels) in [(44_100, 2), (22_050, 1), (48_000, 1)] {
            let Some((source, units)) = mp3_source(rate, channels, 2) else { return };
            let mut transcoder = AacTranscoder::new(&source).unwrap();
            let track = transcoder.track().clone();
            let CodecConfig::Aac(aac) = &track.codec else { unreachable!() };
            assert_eq!((aac.object_type, aac.sample_rate, aac.channels), (2, rate, channels), "AAC-LC");
            assert_eq!(track.timebase, Timebase(rate));
            assert_eq!(track.bitrate, Some(if channels == 1 { 64_000 } else { 128_000 }));
            let (out, took) = transcode(&mut transcoder, &units);
            assert_contiguous(&out, 0);
            let stats = transcoder.stats();
            assert_eq!(
                (stats.corrupt_units, stats.silence_samples, stats.trimmed_samples, stats.reanchors),
                (0, 0, 0, 0)
            );
            assert_eq!(stats.units_out, out.len() as u64);
            let (decoded, errors) = decode_aac(&track, &out);
            assert_eq!(errors, 0);
            let source_samples = stats.decoded_samples as i64;
            assert!(
                (decoded.len() as i64 - source_samples).abs() < 1024,
                "{rate} Hz: {} AAC samples for {source_samples} MP3 samples",
                decoded.len()
            );
            let middle = &decoded[rate as usize / 2..rate as usize * 3 / 2];
            let hz = tone_hz(middle, rate);
            assert!((hz - 440.0).abs() < 5.0, "{rate} Hz: the tone is {hz} Hz");
            let seconds = source_samples as f64 / rate as f64;
            eprintln!(
                "MP3 {rate} Hz x{channels} -> AAC-LC: {:.0} us per second of audio ({BUILD} build)",
                took.as_micros() as f64 / seconds
            );
        }
    }

    #[test]
    fn aac_is_transcoded_when_sound_is_processed() {
        let Some((source, units)) = mp3_source(48_000, 2, 2) else { return };
        let (aac, _) = transcode(&mut AacTranscoder::new(&source).unwrap(), &units);
        let aac_track = AacTranscoder::new(&source).unwrap().track().clone();
        let louder: SoundProcessing = serde_json::from_str(r#"{"gain_db":-6,"resample":{"rate":44100}}"#).unwrap();
        let mut transcoder = AacTranscoder::with_sound(&aac_track, &louder).unwrap();
        assert_eq!(transcoder.source_codec(), "AAC");
        assert_eq!(transcoder.track().timebase, Timebase(44_100), "resampled as asked");
        let (out, _) = transcode(&mut transcoder, &aac);
        let rms = |s: &[f32]| (s.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        let (before, _) = decode_aac(&aac_track, &aac);
        let (after, errors) = decode_aac(transcoder.track(), &out);
        assert_eq!(errors, 0);
        let gain = 20.0 * (rms(&after[22_050..66_150]) / rms(&before[24_000..72_000])).log10();
        assert!((gain + 6.0).abs() < 0.3, "-6 dB asked, {gain:.2} dB measured");
        let hz = tone_hz(&after[22_050..66_150], 44_100);
        assert!((hz - 440.0).abs() < 5.0, "the tone is {hz} Hz, {} samples for {}", after.len(), before.len());
    }

    #[test]
    fn source_gaps_jumps_and_corrupt_packets() {
        let Some((source, units)) = mp3_source(44_100, 2, 4) else { return };
        let mut transcoder = AacTranscoder::new(&source).unwrap();
        let start = 10 * 44_100;
        let mut out = Vec::new();
        for (i, u) in units.iter().enumerate() {
            let mut u = u.clone();
            // A 200 ms gap after a second, a 5 s jump after two, a corrupt packet at three.
            u.pts += start + if i >= 38 { 8_820 } else { 0 } + if i >= 76 { 5 * 44_100 } else { 0 };
            u.dts = u.pts;
            if i == 114 {
                u.data = Bytes::from_static(b"definitely not an MPEG audio frame");
            }
            transcoder.push(&u, &mut out).unwrap();
        }
        transcoder.finish(&mut out).unwrap();
        let stats = transcoder.stats();
        assert_eq!(stats.corrupt_units, 1, "{stats:?}");
        assert_eq!(stats.reanchors, 1, "{stats:?}");
        // The gap, the corrupt frame's 1152 samples, and the padding before the re-anchor.
        assert!((8_820 + 1_152..8_820 + 1_152 + 1024).contains(&stats.silence_samples), "{stats:?}");
        assert_eq!(out[0].pts, start);
        let steps: Vec<i64> = out.windows(2).map(|w| w[1].pts - w[0].pts).filter(|d| *d != 1024).collect();
        assert_eq!(steps.len(), 1, "one jump in the output: {steps:?}");
        // The padding that aligned the re-anchor sits before the jump.
        assert!((5 * 44_100 - 1024..=5 * 44_100).contains(&(steps[0] - 1024)), "{steps:?}");
        // After the jump, the output is back on the source's clock.
        let jumped = out.windows(2).position(|w| w[1].pts - w[0].pts != 1024).unwrap() + 1;
        let source_after = units[76].pts + start + 8_820 + 5 * 44_100;
        assert!((out[jumped].pts - source_after).abs() < 1024, "{} vs {source_after}", out[jumped].pts);
        let (_, errors) = decode_aac(transcoder.track(), &out);
        assert_eq!(errors, 0);
    }

    #[test]
    fn g711_becomes_8_khz_mono_aac() {
        for (format, codec) in [("alaw", AudioCodec::G711ALaw), ("mulaw", AudioCodec::G711MuLaw)] {
            let args = ["-f", "lavfi", "-i", "sine=f=440:d=2", "-ar", "8000", "-ac", "1", "-f", format];
            let Some(raw) = ffmpeg_output(&args, "tone.g711") else { return };
            let source = other_track(OtherAudioConfig::g711(codec, 1));
            let units: Vec<EncodedUnit> =
                raw.chunks(160).enumerate().map(|(i, chunk)| unit(1, 4_000 + i as i64 * 160, chunk)).collect();
            let mut transcoder = AacTranscoder::new(&source).unwrap();
            let track = transcoder.track().clone();
            assert_eq!((track.timebase, track.bitrate), (Timebase(8_000), Some(48_000)));
            let (out, took) = transcode(&mut transcoder, &units);
            assert_contiguous(&out, 4_000);
            let (decoded, errors) = decode_aac(&track, &out);
            assert_eq!(errors, 0);
            assert!((decoded.len() as i64 - raw.len() as i64).abs() < 1024, "{} for {}", decoded.len(), raw.len());
            let hz = tone_hz(&decoded[4_000..12_000], 8_000);
            assert!((hz - 440.0).abs() < 5.0, "{format}: the tone is {hz} Hz");
            eprintln!(
                "G.711 {format} -> AAC-LC: {:.0} us per second of audio ({BUILD} build)",
                took.as_micros() as f64 / 2.0
            );
        }
    }

    #[test]
    fn opus_becomes_48_khz_aac() {
        ffi::init();
        let Some(codec) = ffmpeg::encoder::find_by_name("libopus") else {
            test_tools::skip("this FFmpeg has no libopus encoder (Debian's has)");
            return;
        };
        let mut encoder = ffmpeg::codec::Context::new_with_codec(codec).encoder().audio().unwrap();
        encoder.set_rate(48_000);
        encoder.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
        encoder.set_format(ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed));
        encoder.set_time_base((1, 48_000));
        encoder.set_bit_rate(96_000);
        let mut encoder = encoder.open().unwrap();
        let head = Bytes::from(ffi::extradata(encoder.as_ref()));
        let frame_size = encoder.frame_size() as usize;
        let mut packets = Vec::new();
        let mut collect = |encoder: &mut ffmpeg::encoder::Audio| {
            let mut packet = ffmpeg::Packet::empty();
            while encoder.receive_packet(&mut packet).is_ok() {
                packets.push((packet.pts().unwrap(), packet.data().unwrap().to_vec()));
            }
        };
        for n in 0..100 {
            let mut frame = ffmpeg::frame::Audio::new(encoder.format(), frame_size, ffmpeg::ChannelLayout::STEREO);
            frame.set_pts(Some((n * frame_size) as i64));
            for (i, s) in frame.plane_mut::<f32>(0).iter_mut().enumerate() {
                let t = (n * frame_size + i / 2) as f32 / 48_000.0;
                *s = 0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
            }
            encoder.send_frame(&frame).unwrap();
            collect(&mut encoder);
        }
        encoder.send_eof().unwrap();
        collect(&mut encoder);
        let source = other_track(OtherAudioConfig::from_opus_head(head).unwrap());
        let units: Vec<EncodedUnit> = packets.iter().map(|(pts, data)| unit(1, pts.max(&0) + 9_600, data)).collect();
        let mut transcoder = AacTranscoder::new(&source).unwrap();
        let (out, _) = transcode(&mut transcoder, &units);
        assert!(out[0].pts >= 9_600 && out[0].pts < 9_600 + 1024, "{}", out[0].pts);
        assert_contiguous(&out, out[0].pts);
        let (decoded, errors) = decode_aac(transcoder.track(), &out);
        assert_eq!(errors, 0);
        assert_eq!(transcoder.stats().corrupt_units, 0);
        let hz = tone_hz(&decoded[24_000..72_000], 48_000);
        assert!((hz - 440.0).abs() < 5.0, "the tone is {hz} Hz");
    }
}
