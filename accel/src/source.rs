//! Sources for the bench and tests, as the stream events ingest would
//! produce: a generated one (libavfilter's `testsrc2` and a sine tone,
//! encoded with libx264 and FFmpeg's AAC) or a file read with libavformat.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use ffmpeg_next as ffmpeg;
use media::{AacConfig, Arrival, CodecConfig, EncodedUnit, StreamEvent, Timebase, TrackInfo, TrackKind, VideoCodec};

use crate::bitstream;
use crate::error::AccelError;
use crate::ffi;

/// A source held in memory: its events (tracks first) and its picture.
#[derive(Debug, Clone)]
pub struct Source {
    pub events: Vec<StreamEvent>,
    pub width: u32,
    pub height: u32,
    pub fps: (u32, u32),
    pub seconds: f64,
}

impl Source {
    pub fn video_frames(&self) -> usize {
        self.events.iter().filter(|e| matches!(e, StreamEvent::Unit(u) if u.kind == TrackKind::Video)).count()
    }
}

fn fail(what: &str) -> impl Fn(ffmpeg::Error) -> AccelError + '_ {
    move |e| AccelError::Source(format!("{what}: {e}"))
}

/// A moving test pattern with a tone: `seconds` of `width`x`height` at `fps`,
/// H.264 (ultrafast, a keyframe every `gop` frames) and AAC-LC stereo 48 kHz.
pub fn generated(width: u32, height: u32, fps: u32, seconds: u32, gop: u32) -> Result<Source, AccelError> {
    ffi::init();
    let mut graph = ffmpeg::filter::Graph::new();
    graph.add(&ffmpeg::filter::find("buffersink").expect("buffersink"), "out", "").map_err(fail("testsrc2 graph"))?;
    let spec = format!("testsrc2=size={width}x{height}:rate={fps}:duration={seconds},format=yuv420p");
    graph.input("out", 0).map_err(fail("testsrc2 graph"))?.parse(&spec).map_err(fail("testsrc2 graph"))?;
    graph.validate().map_err(fail("testsrc2 graph"))?;

    let bitrate = width as usize * height as usize * fps as usize / 10;
    let (mut encoder, config) = open_x264(width, height, fps, gop, bitrate, "zerolatency")?;
    let (audio_track, audio_units) = generated_audio(seconds)?;
    let video_track = TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: config,
        frame_rate: Some((fps, 1)),
        bitrate: None,
    };
    let mut video = Vec::new();
    let frame_ticks = 90_000 / fps as i64;
    let mut n = 0i64;
    let mut frame = ffmpeg::frame::Video::empty();
    let collect = take_h264_packets;
    while graph.get("out").expect("sink").sink().frame(&mut frame).is_ok() {
        frame.set_pts(Some(n * frame_ticks));
        // testsrc2 marks every frame I; let the GOP decide.
        frame.set_kind(ffmpeg::picture::Type::None);
        n += 1;
        encoder.send_frame(&frame).map_err(fail("libx264"))?;
        collect(&mut encoder, &mut video);
    }
    encoder.send_eof().map_err(fail("libx264"))?;
    collect(&mut encoder, &mut video);
    let events = interleave(vec![video_track, audio_track], vec![video, audio_units]);
    Ok(Source { events, width, height, fps: (fps, 1), seconds: seconds as f64 })
}

/// libx264 (ultrafast, no B-frames, a keyframe every `gop` frames exactly) for
/// `width`x`height` YUV 4:2:0 at `fps` in 90 kHz ticks, with its codec configuration.
pub(crate) fn open_x264(
    width: u32,
    height: u32,
    fps: u32,
    gop: u32,
    bitrate: usize,
    tune: &str,
) -> Result<(ffmpeg::codec::encoder::video::Encoder, CodecConfig), AccelError> {
    let codec = ffmpeg::encoder::find_by_name("libx264").ok_or(AccelError::EncoderMissing("libx264"))?;
    let mut encoder = ffmpeg::codec::Context::new_with_codec(codec).encoder().video().map_err(fail("libx264"))?;
    encoder.set_width(width);
    encoder.set_height(height);
    encoder.set_format(ffmpeg::format::Pixel::YUV420P);
    encoder.set_time_base((1, 90_000));
    encoder.set_frame_rate(Some((fps as i32, 1)));
    encoder.set_gop(gop);
    encoder.set_max_b_frames(0);
    encoder.set_bit_rate(bitrate);
    encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    let mut options = ffmpeg::Dictionary::new();
    options.set("preset", "ultrafast");
    options.set("tune", tune);
    options.set("x264-params", &format!("keyint={gop}:min-keyint={gop}:scenecut=0"));
    let encoder = encoder.open_with(options).map_err(fail("libx264"))?;
    let config = bitstream::codec_config(VideoCodec::H264, &ffi::extradata(encoder.as_ref()))
        .map_err(|e| AccelError::Source(format!("libx264 parameter sets: {e}")))?;
    Ok((encoder, config))
}

/// Moves every packet `encoder` (H.264) has ready into `video` as track 0's units.
pub(crate) fn take_h264_packets(encoder: &mut ffmpeg::codec::encoder::video::Encoder, video: &mut Vec<EncodedUnit>) {
    let mut packet = ffmpeg::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        let pts = packet.pts().unwrap_or(0);
        video.push(EncodedUnit {
            track: 0,
            kind: TrackKind::Video,
            pts,
            dts: packet.dts().unwrap_or(pts),
            keyframe: packet.is_key(),
            data: bitstream::to_length_prefixed(VideoCodec::H264, packet.data().unwrap_or_default()),
            arrival: Arrival::now(),
        });
    }
}

/// `seconds` of a 440 Hz tone as AAC-LC stereo at 48 kHz.
fn generated_audio(seconds: u32) -> Result<(TrackInfo, Vec<EncodedUnit>), AccelError> {
    let mut graph = ffmpeg::filter::Graph::new();
    graph.add(&ffmpeg::filter::find("abuffersink").expect("abuffersink"), "out", "").map_err(fail("sine graph"))?;
    let spec = format!(
        "sine=frequency=440:sample_rate=48000:duration={seconds},aformat=sample_fmts=fltp:channel_layouts=stereo"
    );
    graph.input("out", 0).map_err(fail("sine graph"))?.parse(&spec).map_err(fail("sine graph"))?;
    graph.validate().map_err(fail("sine graph"))?;
    let codec = ffmpeg::encoder::find_by_name("aac").ok_or(AccelError::EncoderMissing("aac"))?;
    let mut encoder = ffmpeg::codec::Context::new_with_codec(codec).encoder().audio().map_err(fail("aac"))?;
    encoder.set_rate(48_000);
    encoder.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
    encoder.set_format(ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar));
    encoder.set_time_base((1, 48_000));
    encoder.set_bit_rate(96_000);
    encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    let mut encoder = encoder.open().map_err(fail("aac"))?;
    let frame_size = encoder.frame_size() as usize;
    graph.get("out").expect("sink").sink().set_frame_size(frame_size as u32);
    let asc = ffi::extradata(encoder.as_ref());
    let track = TrackInfo {
        kind: TrackKind::Audio,
        timebase: Timebase(48_000),
        codec: CodecConfig::Aac(AacConfig::from_asc(Bytes::from(asc)).map_err(|e| AccelError::Source(e.to_string()))?),
        frame_rate: None,
        bitrate: Some(96_000),
    };
    let mut units = Vec::new();
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut packet = ffmpeg::Packet::empty();
    let mut samples = 0i64;
    let mut collect = |encoder: &mut ffmpeg::codec::encoder::audio::Encoder, units: &mut Vec<EncodedUnit>| {
        while encoder.receive_packet(&mut packet).is_ok() {
            let pts = packet.pts().unwrap_or(0);
            if pts < 0 {
                continue; // encoder priming
            }
            let data = Bytes::copy_from_slice(packet.data().unwrap_or_default());
            units.push(EncodedUnit {
                track: 1,
                kind: TrackKind::Audio,
                pts,
                dts: pts,
                keyframe: true,
                data,
                arrival: Arrival::now(),
            });
        }
    };
    while graph.get("out").expect("sink").sink().frame(&mut frame).is_ok() {
        frame.set_pts(Some(samples));
        samples += frame.samples() as i64;
        encoder.send_frame(&frame).map_err(fail("aac"))?;
        collect(&mut encoder, &mut units);
    }
    encoder.send_eof().map_err(fail("aac"))?;
    collect(&mut encoder, &mut units);
    Ok((track, units))
}

/// Orders units of several tracks by decode time in seconds, after one track announcement.
fn interleave(tracks: Vec<TrackInfo>, per_track: Vec<Vec<EncodedUnit>>) -> Vec<StreamEvent> {
    let timebases: Vec<Timebase> = tracks.iter().map(|t| t.timebase).collect();
    let mut all: Vec<EncodedUnit> = per_track.into_iter().flatten().collect();
    all.sort_by(|a, b| timebases[a.track].seconds(a.dts).total_cmp(&timebases[b.track].seconds(b.dts)));
    let mut events = vec![StreamEvent::Tracks(Arc::from(tracks))];
    events.extend(all.into_iter().map(StreamEvent::Unit));
    events
}

/// Reads up to `seconds` of the first H.264/HEVC video and AAC audio stream of a file.
pub fn from_file(path: &Path, seconds: f64) -> Result<Source, AccelError> {
    ffi::init();
    let mut input = ffmpeg::format::input(path).map_err(fail(&path.display().to_string()))?;
    let video = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| AccelError::Source(format!("{}: no video stream", path.display())))?;
    let (video_index, video_tb) = (video.index(), video.time_base());
    let params = video.parameters();
    let codec = match params.id() {
        ffmpeg::codec::Id::H264 => VideoCodec::H264,
        ffmpeg::codec::Id::HEVC => VideoCodec::Hevc,
        other => return Err(AccelError::Source(format!("{}: video is {other:?}, not H.264 or HEVC", path.display()))),
    };
    let decoder = ffmpeg::codec::Context::from_parameters(params.clone()).map_err(fail("video parameters"))?;
    let extradata = ffi::extradata(&decoder);
    let rate = video.avg_frame_rate();
    let fps = if rate.numerator() > 0 && rate.denominator() > 0 {
        (rate.numerator() as u32, rate.denominator() as u32)
    } else {
        (30, 1)
    };
    let config = bitstream::codec_config(codec, &extradata).map_err(|e| AccelError::Source(e.to_string()))?;
    let (width, height) = match &config {
        CodecConfig::Avc(a) => (a.width, a.height),
        CodecConfig::Hevc(h) => (h.width, h.height),
        CodecConfig::Av1(a) => (a.width, a.height),
        CodecConfig::Aac(_) | CodecConfig::OtherAudio(_) => (0, 0),
    };
    let mut tracks = vec![TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: config,
        frame_rate: Some(fps),
        bitrate: None,
    }];
    let audio = input.streams().best(ffmpeg::media::Type::Audio).and_then(|a| {
        let params = a.parameters();
        if params.id() != ffmpeg::codec::Id::AAC {
            return None;
        }
        let ctx = ffmpeg::codec::Context::from_parameters(params).ok()?;
        let aac = AacConfig::from_asc(Bytes::from(ffi::extradata(&ctx))).ok()?;
        Some((a.index(), a.time_base(), aac))
    });
    if let Some((_, _, aac)) = &audio {
        tracks.push(TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(aac.sample_rate),
            codec: CodecConfig::Aac(aac.clone()),
            frame_rate: None,
            bitrate: None,
        });
    }
    let rescale = |ts: i64, tb: ffmpeg::Rational, to: u32| -> i64 {
        (ts as i128 * tb.numerator() as i128 * to as i128 / tb.denominator().max(1) as i128) as i64
    };
    let (mut video_units, mut audio_units) = (Vec::new(), Vec::new());
    let mut first: Option<i64> = None;
    for (stream, packet) in input.packets() {
        let Some(data) = packet.data() else { continue };
        if stream.index() == video_index {
            let pts = rescale(packet.pts().or(packet.dts()).unwrap_or(0), video_tb, 90_000);
            let dts = rescale(packet.dts().or(packet.pts()).unwrap_or(0), video_tb, 90_000);
            let start = *first.get_or_insert(dts);
            if Timebase::VIDEO.seconds(dts - start) >= seconds {
                break;
            }
            let data = if data.first() == Some(&0) && (data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1]))
            {
                bitstream::to_length_prefixed(codec, data)
            } else {
                Bytes::copy_from_slice(data)
            };
            video_units.push(EncodedUnit {
                track: 0,
                kind: TrackKind::Video,
                pts: pts - start,
                dts: dts - start,
                keyframe: packet.is_key(),
                data,
                arrival: Arrival::now(),
            });
        } else if let Some((index, tb, aac)) = &audio
            && stream.index() == *index
        {
            let pts = rescale(packet.pts().unwrap_or(0), *tb, aac.sample_rate);
            let start = Timebase::VIDEO.rescale(first.unwrap_or(0), Timebase(aac.sample_rate));
            if pts < start {
                continue;
            }
            audio_units.push(EncodedUnit {
                track: 1,
                kind: TrackKind::Audio,
                pts: pts - start,
                dts: pts - start,
                keyframe: true,
                data: Bytes::copy_from_slice(data),
                arrival: Arrival::now(),
            });
        }
    }
    let duration = video_units.len() as f64 * fps.1 as f64 / fps.0 as f64;
    let events = interleave(tracks, vec![video_units, audio_units]);
    Ok(Source { events, width, height, fps, seconds: duration })
}
