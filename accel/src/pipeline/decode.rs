//! The one decoder of a session's source (NVDEC, VAAPI or QSV where the
//! backend has a device, else the CPU), with the arrival time of every unit
//! in it: it waits for a keyframe after each (re)open, counts decode errors,
//! and calls a hardware decoder that keeps failing a lost device.

use std::collections::VecDeque;

use ffmpeg_next as ffmpeg;
use media::{Arrival, CodecConfig, EncodedUnit, TrackInfo};

use crate::cadence::TICKS_PER_SECOND;
use crate::device::{Backend, DeviceId};
use crate::error::AccelError;
use crate::ffi::{self, HwDevice, NotOpenedCodec};

/// Consecutive decode errors on a hardware decoder that mean the device is gone.
const HW_DECODE_ERRORS_LOST: u32 = 30;
/// Arrival times kept for units inside the decoder (and the encoders' queues).
const ARRIVALS: usize = 256;

/// The session's decoder; reopened when the source's video codec changes.
pub(super) struct SourceDecoder {
    /// Channel name, for logs.
    label: String,
    device: DeviceId,
    /// Whether the decoder runs on the session's device (its errors can mean the device is lost).
    on_device: bool,
    decoder: Option<ffmpeg::decoder::Video>,
    waiting_for_keyframe: bool,
    errors_in_a_row: u32,
    errors_total: u64,
    arrivals: VecDeque<(i64, Arrival)>,
}

impl SourceDecoder {
    pub(super) fn new(label: String, device: DeviceId, on_device: bool) -> Self {
        SourceDecoder {
            label,
            device,
            on_device,
            decoder: None,
            waiting_for_keyframe: true,
            errors_in_a_row: 0,
            errors_total: 0,
            arrivals: VecDeque::new(),
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.decoder.is_some()
    }

    /// Opens a decoder for `video` (closes it for a source without video)
    /// and waits for the next keyframe.
    pub(super) fn open(
        &mut self,
        video: Option<&TrackInfo>,
        backend: Backend,
        hw: Option<&HwDevice>,
    ) -> Result<(), AccelError> {
        self.decoder = match video {
            Some(track) => Some(open_decoder(track, backend, hw)?),
            None => None,
        };
        self.waiting_for_keyframe = true;
        Ok(())
    }

    /// Sends one source unit; whether it reached the decoder (so frames may
    /// be ready). Units before the first keyframe are skipped; a decode
    /// error is counted and warned about at powers of two, and on a device
    /// it means the device is lost after `HW_DECODE_ERRORS_LOST` in a row.
    pub(super) fn send(&mut self, unit: &EncodedUnit) -> Result<bool, AccelError> {
        if self.waiting_for_keyframe {
            if !unit.keyframe {
                return Ok(false);
            }
            self.waiting_for_keyframe = false;
        }
        let Some(decoder) = self.decoder.as_mut() else { return Ok(false) };
        self.arrivals.push_back((unit.pts, unit.arrival));
        while self.arrivals.len() > ARRIVALS {
            self.arrivals.pop_front();
        }
        let mut packet = ffmpeg::Packet::copy(&unit.data);
        packet.set_pts(Some(unit.pts));
        packet.set_dts(Some(unit.dts));
        if unit.keyframe {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        match decoder.send_packet(&packet) {
            Ok(()) => self.errors_in_a_row = 0,
            Err(e) => {
                self.errors_in_a_row += 1;
                self.errors_total += 1;
                if self.errors_total.is_power_of_two() {
                    tracing::warn!(channel = %self.label, error = %e, total = self.errors_total, "source frames failed to decode");
                }
                if self.on_device && self.errors_in_a_row >= HW_DECODE_ERRORS_LOST {
                    return Err(AccelError::DeviceLost {
                        device: self.device.clone(),
                        detail: format!("{} decode errors in a row: {e}", self.errors_in_a_row),
                    });
                }
            }
        }
        Ok(true)
    }

    /// The next decoded frame, if one is ready.
    pub(super) fn receive(&mut self) -> Option<ffmpeg::frame::Video> {
        let decoder = self.decoder.as_mut()?;
        let mut frame = ffmpeg::frame::Video::empty();
        decoder.receive_frame(&mut frame).ok().map(|()| frame)
    }

    /// The input ended: lets the decoder give up the frames it holds
    /// (`receive` them next); whether a decoder was open.
    pub(super) fn send_eof(&mut self) -> bool {
        let Some(decoder) = self.decoder.as_mut() else { return false };
        let _ = decoder.send_eof();
        true
    }

    /// When the unit that became the frame at `pts` arrived (now, if it is not known).
    pub(super) fn arrival_of(&mut self, pts: i64) -> Arrival {
        while let Some((front, _)) = self.arrivals.front() {
            if *front < pts && self.arrivals.len() > 1 && self.arrivals.iter().any(|(p, _)| *p == pts) {
                self.arrivals.pop_front();
            } else {
                break;
            }
        }
        self.arrivals.iter().find(|(p, _)| *p == pts).map(|(_, a)| *a).unwrap_or_else(Arrival::now)
    }

    /// Units the decoder refused over the whole session.
    pub(super) fn errors_total(&self) -> u64 {
        self.errors_total
    }
}

pub(crate) fn open_decoder(
    track: &TrackInfo,
    backend: Backend,
    hw: Option<&HwDevice>,
) -> Result<ffmpeg::decoder::Video, AccelError> {
    let (id, record, qsv_name) = match &track.codec {
        CodecConfig::Avc(avc) => (ffmpeg::codec::Id::H264, avc.record.clone(), "h264_qsv"),
        CodecConfig::Hevc(hevc) => (ffmpeg::codec::Id::HEVC, hevc.record.clone(), "hevc_qsv"),
        CodecConfig::Av1(av1) => (ffmpeg::codec::Id::AV1, av1.record.clone(), "av1_qsv"),
        CodecConfig::Aac(_) | CodecConfig::OtherAudio(_) => {
            return Err(AccelError::Source("the video track carries audio".into()));
        }
    };
    let codec = match backend {
        Backend::Qsv => ffmpeg::decoder::find_by_name(qsv_name),
        // FFmpeg's own AV1 decoder decodes only through a hardware device (NVDEC,
        // VAAPI); on the CPU, the first AV1 decoder registered is libdav1d.
        _ if id == ffmpeg::codec::Id::AV1 && hw.is_some() => ffmpeg::decoder::find_by_name("av1"),
        _ => ffmpeg::decoder::find(id),
    }
    .ok_or_else(|| AccelError::Decode(format!("no decoder for {id:?} in this FFmpeg")))?;
    let mut unopened = NotOpenedCodec::new(codec);
    unopened.set_extradata(&record);
    if let Some(hw) = hw {
        unopened.set_hw_device(hw);
    }
    let mut ctx = unopened.into_context();
    if hw.is_none() {
        // Slice threads add no delay; frame threads (a frame of delay per
        // thread) only where one core cannot decode the source in time.
        let large = track.resolution().is_some_and(|(w, h)| w * h > 1920 * 1088);
        let kind = if large { ffmpeg::threading::Type::Frame } else { ffmpeg::threading::Type::Slice };
        ctx.set_threading(ffmpeg::threading::Config { kind, count: 0, ..Default::default() });
    }
    let mut decoder = ctx.decoder();
    decoder.set_packet_time_base((1, TICKS_PER_SECOND as i32));
    let (opened, log) = ffi::capture_log(|| decoder.video());
    opened.map_err(|e| AccelError::Decode(format!("{e}: {}", log.join(" / "))))
}
