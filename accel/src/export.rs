//! MP4 export: a recorded rendition (its init section and CMAF segments,
//! given as one fragmented MP4 file) remuxed in process by libavformat into
//! a standard MP4 with its index at the front (`movflags=faststart`), no
//! re-encode. A range is cut on keyframes: it starts at the last video
//! keyframe at or before `start` (so the asked moment is in it) and ends
//! before the first video keyframe at or after `start + duration`. Blocking:
//! callers run it on a blocking thread. The output is written to a file (the
//! faststart pass rewrites it there), never held in memory.

use std::path::Path;

use ffmpeg_next as ffmpeg;

use crate::error::AccelError;

/// What was exported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exported {
    /// Where it starts in the input, seconds from the input's start (a keyframe).
    pub start: f64,
    /// Seconds of video written.
    pub duration: f64,
    pub video_frames: u64,
}

fn failed(what: &'static str) -> impl Fn(ffmpeg::Error) -> AccelError {
    move |e| AccelError::File { path: what.to_string(), reason: e.to_string() }
}

/// Remuxes `input` (fragmented MP4) into a faststart MP4 at `output`, from
/// `start` seconds for `duration` seconds (the rest when None), cut on keyframes.
pub fn export_mp4(input: &Path, output: &Path, start: f64, duration: Option<f64>) -> Result<Exported, AccelError> {
    crate::ffi::init();
    let mut ictx = ffmpeg::format::input(input).map_err(failed("export input"))?;
    let video = ictx
        .streams()
        .best(ffmpeg::media::Type::Video)
        .ok_or_else(|| AccelError::Source("the recording has no video".into()))?
        .index();
    let time_bases: Vec<ffmpeg::Rational> = ictx.streams().map(|s| s.time_base()).collect();
    let input_start = ictx.stream(video).map(|s| s.start_time()).filter(|t| *t != i64::MIN).unwrap_or(0);
    let video_tb = time_bases[video];
    let seconds = |ts: i64, tb: ffmpeg::Rational| ts as f64 * f64::from(tb);
    let mut octx = ffmpeg::format::output_as(output, "mp4").map_err(failed("export output"))?;
    let mut mapping = vec![None; time_bases.len()];
    for stream in ictx.streams() {
        let kind = stream.parameters().medium();
        if !matches!(kind, ffmpeg::media::Type::Video | ffmpeg::media::Type::Audio) {
            continue;
        }
        let mut out =
            octx.add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None)).map_err(failed("export stream"))?;
        out.set_parameters(stream.parameters());
        mapping[stream.index()] = Some(out.index());
    }
    // Seek to the keyframe at or before `start` (the demuxer's index of every fragment).
    if start > 0.0 {
        let target = input_start + (start / f64::from(video_tb)).round() as i64;
        let target_us = (seconds(target, video_tb) * 1_000_000.0) as i64;
        ictx.seek(target_us, ..target_us).map_err(failed("export seek"))?;
    }
    let mut options = ffmpeg::Dictionary::new();
    options.set("movflags", "+faststart");
    octx.write_header_with(options).map_err(failed("export header"))?;
    let out_tbs: Vec<ffmpeg::Rational> = octx.streams().map(|s| s.time_base()).collect();
    // The first keyframe written: every timestamp is shifted so it is at 0.
    let mut origin: Option<f64> = None;
    let mut end: Option<f64> = None;
    let (mut video_frames, mut last_video) = (0u64, 0.0f64);
    for (stream, mut packet) in ictx.packets() {
        let index = stream.index();
        let Some(out_index) = mapping[index] else { continue };
        let tb = time_bases[index];
        let Some(dts) = packet.dts().or(packet.pts()) else { continue };
        let at = seconds(dts, tb);
        if index == video {
            if origin.is_none() {
                if !packet.is_key() {
                    continue;
                }
                origin = Some(at);
                end = duration.map(|d| at.max(seconds(input_start, video_tb) + start) + d);
            } else if packet.is_key() && end.is_some_and(|end| at >= end - 1e-6) {
                break;
            }
            video_frames += 1;
            last_video = at + seconds(packet.duration(), tb);
        }
        let Some(origin) = origin else { continue };
        if at < origin - 1e-6 || end.is_some_and(|end| index != video && at >= end) {
            continue;
        }
        let shift = (origin / f64::from(tb)).round() as i64;
        packet.set_dts(Some(dts - shift));
        packet.set_pts(packet.pts().map(|p| p - shift));
        packet.rescale_ts(tb, out_tbs[out_index]);
        packet.set_stream(out_index);
        packet.set_position(-1);
        packet.write_interleaved(&mut octx).map_err(failed("export write"))?;
    }
    octx.write_trailer().map_err(failed("export trailer"))?;
    let origin = origin.ok_or_else(|| AccelError::Source("no keyframe in the range asked for".into()))?;
    Ok(Exported { start: origin - seconds(input_start, video_tb), duration: last_video - origin, video_frames })
}
