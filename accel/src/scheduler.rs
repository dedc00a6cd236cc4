//! Where a ladder runs: pure placement over a snapshot of device capacity.
//! A ladder is leased whole at session start onto the device with the most
//! headroom that supports its codecs; the channel's policy decides whether it
//! may fall back to the CPU or is refused. The demand is nominal at publish
//! time (a 16:9 source at 30 fps) and real once the source's first video
//! announcement gives its size and frame rate. `slots` applies the decision.

use media::{EncoderPolicy, RenditionSpec, TrackInfo, TrackKind, VideoCodec};
use serde::{Deserialize, Serialize};

use crate::device::{Backend, DeviceId};
use crate::pipeline::rung_size;

/// A quantity of encoder capacity: concurrent encoder sessions and pixel rate.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Load {
    pub sessions: u32,
    /// Megapixels per second.
    pub mpix_per_sec: f64,
}

impl Load {
    pub fn new(sessions: u32, mpix_per_sec: f64) -> Self {
        Self { sessions, mpix_per_sec }
    }

    pub fn plus(self, other: Load) -> Load {
        Load { sessions: self.sessions + other.sessions, mpix_per_sec: self.mpix_per_sec + other.mpix_per_sec }
    }

    pub fn minus(self, other: Load) -> Load {
        Load {
            sessions: self.sessions.saturating_sub(other.sessions),
            mpix_per_sec: (self.mpix_per_sec - other.mpix_per_sec).max(0.0),
        }
    }
}

/// Software decoding of the source costs about this fraction of encoding the same pixels.
pub const SOFTWARE_DECODE_WEIGHT: f64 = 0.25;
/// Frame rate assumed for a rung without a cap before the source's rate is known.
pub const NOMINAL_FPS: f64 = 30.0;

/// What a ladder needs, before the backend is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// One encoder session per rung.
    pub sessions: u32,
    /// Pixel rate of every rung's output, summed.
    pub encode_mpix_per_sec: f64,
    /// Pixel rate of the decoded source (charged on the CPU only; GPUs decode on NVDEC/VCN).
    pub decode_mpix_per_sec: f64,
    pub codecs: Vec<VideoCodec>,
}

impl Demand {
    /// The nominal demand of `rungs` for a 16:9 source at least as tall as the
    /// top rung, at `fps` (the rung's cap when lower). Used at session start,
    /// before the source's size is known.
    pub fn for_rungs(rungs: &[RenditionSpec], fps: f64) -> Demand {
        let rate = |r: &RenditionSpec| {
            let width = (r.height as f64 * 16.0 / 9.0 / 2.0).round() * 2.0;
            let fps = r.max_fps.map_or(fps, |cap| fps.min(cap as f64));
            width * r.height as f64 * fps / 1e6
        };
        let top = rungs.iter().max_by_key(|r| r.height);
        let mut codecs: Vec<VideoCodec> = rungs.iter().map(|r| r.codec).collect();
        codecs.sort_by_key(|c| *c as u8);
        codecs.dedup();
        Demand {
            sessions: rungs.len() as u32,
            encode_mpix_per_sec: rungs.iter().map(rate).sum(),
            decode_mpix_per_sec: top.map_or(0.0, |r| {
                let width = (r.height as f64 * 16.0 / 9.0 / 2.0).round() * 2.0;
                width * r.height as f64 * fps / 1e6
            }),
            codecs,
        }
    }

    /// The real demand of `rungs` for a `width`x`height` source at `fps`:
    /// rungs above the source are not encoded (never upscale), each rung
    /// keeps the source's aspect ratio, at the source's rate or its cap.
    pub fn for_source(rungs: &[RenditionSpec], (width, height): (u32, u32), fps: f64) -> Demand {
        let kept: Vec<&RenditionSpec> = rungs.iter().filter(|r| r.height <= height).collect();
        let rate = |r: &&RenditionSpec| {
            let (w, h) = rung_size(width, height, r.height);
            let fps = r.max_fps.map_or(fps, |cap| fps.min(cap as f64));
            w as f64 * h as f64 * fps / 1e6
        };
        let mut codecs: Vec<VideoCodec> = kept.iter().map(|r| r.codec).collect();
        codecs.sort_by_key(|c| *c as u8);
        codecs.dedup();
        Demand {
            sessions: kept.len() as u32,
            encode_mpix_per_sec: kept.iter().map(rate).sum(),
            decode_mpix_per_sec: width as f64 * height as f64 * fps / 1e6,
            codecs,
        }
    }

    /// `for_source` from a track announcement: the video track's size and
    /// declared frame rate (`NOMINAL_FPS` when the publisher declared none).
    /// `None` while the announcement has no video.
    pub fn for_tracks(rungs: &[RenditionSpec], tracks: &[TrackInfo]) -> Option<Demand> {
        let video = tracks.iter().find(|t| t.kind == TrackKind::Video)?;
        let size = video.resolution().filter(|(w, h)| *w > 0 && *h > 0)?;
        let fps = video.frame_rate.filter(|(n, d)| *n > 0 && *d > 0).map_or(NOMINAL_FPS, |(n, d)| n as f64 / d as f64);
        Some(Demand::for_source(rungs, size, fps))
    }

    /// The load this demand puts on a device of `backend`.
    pub fn load_on(&self, backend: Backend) -> Load {
        let decode = if backend == Backend::Software { self.decode_mpix_per_sec * SOFTWARE_DECODE_WEIGHT } else { 0.0 };
        Load { sessions: self.sessions, mpix_per_sec: self.encode_mpix_per_sec + decode }
    }
}

/// One device as the scheduler sees it at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    pub id: DeviceId,
    pub backend: Backend,
    pub codecs: Vec<VideoCodec>,
    pub capacity: Load,
    pub used: Load,
    /// False after a failure (device lost) until the next probe.
    pub healthy: bool,
}

impl DeviceState {
    /// Why `demand` does not fit, or `None` when it does.
    pub(crate) fn misfit(&self, demand: &Demand) -> Option<String> {
        if !self.healthy {
            return Some(format!("{} failed and is out of service", self.id));
        }
        if let Some(codec) = demand.codecs.iter().find(|c| !self.codecs.contains(c)) {
            return Some(format!("{} cannot encode {}", self.id, codec_name(*codec)));
        }
        let load = demand.load_on(self.backend);
        if self.used.sessions + load.sessions > self.capacity.sessions {
            return Some(format!(
                "{} has {} of {} encoder sessions free, the ladder needs {}",
                self.id,
                self.capacity.sessions.saturating_sub(self.used.sessions),
                self.capacity.sessions,
                load.sessions
            ));
        }
        if self.used.mpix_per_sec + load.mpix_per_sec > self.capacity.mpix_per_sec + 1e-9 {
            return Some(format!(
                "{} has {:.1} of {:.1} MPix/s free, the ladder needs {:.1}",
                self.id,
                (self.capacity.mpix_per_sec - self.used.mpix_per_sec).max(0.0),
                self.capacity.mpix_per_sec,
                load.mpix_per_sec
            ));
        }
        None
    }

    /// The smaller of the session and pixel-rate fractions left after placing `demand`.
    fn headroom_after(&self, demand: &Demand) -> f64 {
        let load = demand.load_on(self.backend);
        let sessions = 1.0 - (self.used.sessions + load.sessions) as f64 / self.capacity.sessions.max(1) as f64;
        let pixels = 1.0 - (self.used.mpix_per_sec + load.mpix_per_sec) / self.capacity.mpix_per_sec.max(1e-9);
        sessions.min(pixels)
    }
}

fn codec_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "h264",
        VideoCodec::Hevc => "hevc",
    }
}

/// Where the ladder goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub device: DeviceId,
    pub backend: Backend,
    pub load: Load,
    /// Set when `prefer-hardware` fell back to the CPU: why no hardware slot was used (raise an alert).
    pub fallback: Option<String>,
}

/// Places `demand` under `policy`. `unavailable` lists the probe's reasons for
/// hardware that is absent, quoted when hardware is required and there is none.
pub fn place(
    devices: &[DeviceState],
    demand: &Demand,
    policy: EncoderPolicy,
    unavailable: &[String],
) -> Result<Placement, String> {
    let best = |hardware: bool| {
        devices
            .iter()
            .filter(|d| d.backend.is_hardware() == hardware && d.misfit(demand).is_none())
            .max_by(|a, b| a.headroom_after(demand).total_cmp(&b.headroom_after(demand)).then_with(|| b.id.cmp(&a.id)))
    };
    let why_not = |hardware: bool| -> String {
        let misfits: Vec<String> =
            devices.iter().filter(|d| d.backend.is_hardware() == hardware).filter_map(|d| d.misfit(demand)).collect();
        match (hardware, misfits.is_empty()) {
            (true, true) if unavailable.is_empty() => "no hardware encoder on this box".to_string(),
            (true, true) => format!("no hardware encoder on this box ({})", unavailable.join("; ")),
            (false, true) => "no software encoder on this box".to_string(),
            (_, false) => misfits.join("; "),
        }
    };
    let placed = |d: &DeviceState, fallback: Option<String>| Placement {
        device: d.id.clone(),
        backend: d.backend,
        load: demand.load_on(d.backend),
        fallback,
    };
    match policy {
        EncoderPolicy::HardwareOnly => {
            best(true).map(|d| placed(d, None)).ok_or_else(|| format!("hardware-only: {}", why_not(true)))
        }
        EncoderPolicy::Software => {
            best(false).map(|d| placed(d, None)).ok_or_else(|| format!("software: CPU budget: {}", why_not(false)))
        }
        EncoderPolicy::PreferHardware => match best(true) {
            Some(d) => Ok(placed(d, None)),
            None => {
                let reason = why_not(true);
                best(false).map(|d| placed(d, Some(reason.clone()))).ok_or_else(|| {
                    format!("prefer-hardware: {reason}; and the CPU budget is spent: {}", why_not(false))
                })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(
        id: &str,
        backend: Backend,
        codecs: &[VideoCodec],
        capacity: (u32, f64),
        used: (u32, f64),
    ) -> DeviceState {
        DeviceState {
            id: DeviceId::new(id),
            backend,
            codecs: codecs.to_vec(),
            capacity: Load::new(capacity.0, capacity.1),
            used: Load::new(used.0, used.1),
            healthy: true,
        }
    }

    const H264: &[VideoCodec] = &[VideoCodec::H264];
    const BOTH: &[VideoCodec] = &[VideoCodec::H264, VideoCodec::Hevc];

    fn demand(sessions: u32, mpix: f64, codecs: &[VideoCodec]) -> Demand {
        Demand { sessions, encode_mpix_per_sec: mpix, decode_mpix_per_sec: 40.0, codecs: codecs.to_vec() }
    }

    #[test]
    fn placement_refusal_and_fallback_table() {
        use EncoderPolicy::*;
        let cpu = || device("cpu", Backend::Software, BOTH, (64, 100.0), (0, 0.0));
        let gpu0 = |used: (u32, f64)| device("cuda:0", Backend::Nvenc, BOTH, (8, 1000.0), used);
        let gpu1 = |used: (u32, f64)| device("cuda:1", Backend::Nvenc, H264, (8, 1000.0), used);
        let none: &[String] = &[];
        let probe_reason = ["nvenc: driver library libcuda.so.1 missing".to_string()];
        // (name, devices, demand, policy, unavailable, want device or Err(substring), want fallback)
        type Case<'a> =
            (&'a str, Vec<DeviceState>, Demand, EncoderPolicy, &'a [String], Result<&'a str, &'a str>, bool);
        let cases: Vec<Case> = vec![
            (
                "most headroom wins",
                vec![cpu(), gpu0((6, 100.0)), gpu1((1, 100.0))],
                demand(3, 50.0, H264),
                PreferHardware,
                none,
                Ok("cuda:1"),
                false,
            ),
            (
                "pixel headroom counts too",
                vec![gpu0((1, 800.0)), gpu1((3, 100.0))],
                demand(3, 50.0, H264),
                HardwareOnly,
                none,
                Ok("cuda:1"),
                false,
            ),
            (
                "codec support filters",
                vec![gpu0((6, 100.0)), gpu1((0, 0.0))],
                demand(2, 50.0, BOTH),
                HardwareOnly,
                none,
                Ok("cuda:0"),
                false,
            ),
            (
                "hardware-only without hardware quotes the probe",
                vec![cpu()],
                demand(3, 10.0, H264),
                HardwareOnly,
                &probe_reason,
                Err("hardware-only: no hardware encoder on this box (nvenc: driver library libcuda.so.1 missing)"),
                false,
            ),
            (
                "hardware-only with full hardware",
                vec![cpu(), gpu0((7, 0.0))],
                demand(3, 10.0, H264),
                HardwareOnly,
                none,
                Err("cuda:0 has 1 of 8 encoder sessions free, the ladder needs 3"),
                false,
            ),
            (
                "prefer-hardware falls back with the reason",
                vec![cpu(), gpu0((7, 0.0))],
                demand(3, 10.0, H264),
                PreferHardware,
                none,
                Ok("cpu"),
                true,
            ),
            (
                "software never takes hardware",
                vec![cpu(), gpu0((0, 0.0))],
                demand(3, 10.0, H264),
                Software,
                none,
                Ok("cpu"),
                false,
            ),
            // 90 + 0.25 x 40 of decode = 100 fits exactly; 91 does not.
            ("cpu budget fits exactly", vec![cpu()], demand(3, 90.0, H264), Software, none, Ok("cpu"), false),
            (
                "overloaded box refuses",
                vec![cpu()],
                demand(3, 91.0, H264),
                Software,
                none,
                Err("software: CPU budget: cpu has 100.0 of 100.0 MPix/s free, the ladder needs 101.0"),
                false,
            ),
            (
                "prefer-hardware refused when both are full",
                vec![device("cpu", Backend::Software, BOTH, (64, 100.0), (0, 95.0))],
                demand(1, 10.0, H264),
                PreferHardware,
                none,
                Err("and the CPU budget is spent"),
                false,
            ),
        ];
        for (name, devices, demand, policy, unavailable, want, want_fallback) in cases {
            let got = place(&devices, &demand, policy, unavailable);
            match (want, &got) {
                (Ok(id), Ok(p)) => {
                    assert_eq!(p.device.as_str(), id, "{name}");
                    assert_eq!(p.fallback.is_some(), want_fallback, "{name}: {p:?}");
                }
                (Err(text), Err(reason)) => assert!(reason.contains(text), "{name}: {reason}"),
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn failure_moves_to_the_next_device_or_per_policy() {
        let mut devices = vec![
            device("cpu", Backend::Software, BOTH, (64, 100.0), (0, 0.0)),
            device("cuda:0", Backend::Nvenc, BOTH, (8, 1000.0), (0, 0.0)),
            device("vaapi:/dev/dri/renderD128", Backend::Vaapi, H264, (8, 400.0), (2, 300.0)),
        ];
        let d = demand(3, 50.0, H264);
        assert_eq!(place(&devices, &d, EncoderPolicy::HardwareOnly, &[]).unwrap().device.as_str(), "cuda:0");
        devices[1].healthy = false;
        assert_eq!(
            place(&devices, &d, EncoderPolicy::HardwareOnly, &[]).unwrap().device.as_str(),
            "vaapi:/dev/dri/renderD128"
        );
        devices[2].healthy = false;
        let refused = place(&devices, &d, EncoderPolicy::HardwareOnly, &[]).unwrap_err();
        assert!(refused.contains("cuda:0 failed and is out of service"), "{refused}");
        let moved = place(&devices, &d, EncoderPolicy::PreferHardware, &[]).unwrap();
        assert_eq!(moved.device.as_str(), "cpu");
        assert!(moved.fallback.unwrap().contains("renderD128 failed"));
    }

    #[test]
    fn real_demand_of_a_source() {
        let rung = |height, max_fps| RenditionSpec {
            height,
            bitrate_kbps: 500,
            codec: VideoCodec::H264,
            max_fps,
            when: Default::default(),
        };
        let ladder = [rung(1080, None), rung(720, Some(30)), rung(360, None)];
        let mpix = |w: f64, h: f64, fps: f64| w * h * fps / 1e6;
        // (source, fps, sessions, encode, decode)
        let cases = [
            // What the nominal demand assumes.
            ((1920, 1080), 30.0, 3, mpix(1920., 1080., 30.) + mpix(1280., 720., 30.) + mpix(640., 360., 30.), 62.208),
            // 60 fps counts double, except the rung capped at 30.
            ((1920, 1080), 60.0, 3, mpix(1920., 1080., 60.) + mpix(1280., 720., 30.) + mpix(640., 360., 60.), 124.416),
            // A 4K source is decoded at 4K; the rungs stay their size.
            ((3840, 2160), 60.0, 3, mpix(1920., 1080., 60.) + mpix(1280., 720., 30.) + mpix(640., 360., 60.), 497.664),
            // A 720p source drops the 1080p rung (never upscale).
            ((1280, 720), 30.0, 2, mpix(1280., 720., 30.) + mpix(640., 360., 30.), 27.648),
            // A 4:3 source keeps its aspect ratio in every rung.
            ((1440, 1080), 30.0, 3, mpix(1440., 1080., 30.) + mpix(960., 720., 30.) + mpix(480., 360., 30.), 46.656),
        ];
        for (size, fps, sessions, encode, decode) in cases {
            let d = Demand::for_source(&ladder, size, fps);
            assert_eq!(d.sessions, sessions, "{size:?}@{fps}");
            assert!((d.encode_mpix_per_sec - encode).abs() < 1e-6, "{size:?}@{fps}: {}", d.encode_mpix_per_sec);
            assert!((d.decode_mpix_per_sec - decode).abs() < 1e-6, "{size:?}@{fps}: {}", d.decode_mpix_per_sec);
        }
        assert_eq!(
            Demand::for_source(&ladder, (1920, 1080), 30.0),
            Demand::for_rungs(&ladder, 30.0),
            "a 16:9 30 fps source is what the nominal demand assumes"
        );
    }

    #[test]
    fn real_demand_from_the_first_video_announcement() {
        use media::test_vectors::AVCC_640X360;
        use media::{AacConfig, AvcConfig, CodecConfig, Timebase};
        let video = |frame_rate| TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec: CodecConfig::Avc(AvcConfig::from_record(bytes::Bytes::from_static(&AVCC_640X360)).unwrap()),
            frame_rate,
            bitrate: None,
        };
        let audio = TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(48_000),
            codec: CodecConfig::Aac(AacConfig::from_asc(bytes::Bytes::from_static(&[0x11, 0x90])).unwrap()),
            frame_rate: None,
            bitrate: None,
        };
        let ladder = [RenditionSpec {
            height: 240,
            bitrate_kbps: 400,
            codec: VideoCodec::H264,
            max_fps: None,
            when: Default::default(),
        }];
        let cases = [
            (vec![video(Some((60, 1))), audio.clone()], Some(Demand::for_source(&ladder, (640, 360), 60.0))),
            (vec![video(Some((60_000, 1001)))], Some(Demand::for_source(&ladder, (640, 360), 60_000.0 / 1001.0))),
            // No declared rate: the nominal one.
            (vec![video(None), audio.clone()], Some(Demand::for_source(&ladder, (640, 360), NOMINAL_FPS))),
            // Audio first: nothing to count yet.
            (vec![audio], None),
        ];
        for (tracks, want) in cases {
            assert_eq!(Demand::for_tracks(&ladder, &tracks), want, "{tracks:?}");
        }
    }

    #[test]
    fn nominal_demand_of_a_ladder() {
        let rung = |height, max_fps| RenditionSpec {
            height,
            bitrate_kbps: 500,
            codec: VideoCodec::H264,
            max_fps,
            when: Default::default(),
        };
        let d = Demand::for_rungs(&[rung(360, None), rung(240, Some(15)), rung(144, None)], 30.0);
        assert_eq!(d.sessions, 3);
        // 640x360x30 + 426x240x15 + 256x144x30
        let want = (640.0 * 360.0 * 30.0 + 426.0 * 240.0 * 15.0 + 256.0 * 144.0 * 30.0) / 1e6;
        assert!((d.encode_mpix_per_sec - want).abs() < 1e-9, "{}", d.encode_mpix_per_sec);
        assert!((d.decode_mpix_per_sec - 6.912).abs() < 1e-9);
        assert_eq!(d.codecs, [VideoCodec::H264]);
        assert_eq!(d.load_on(Backend::Nvenc).mpix_per_sec, d.encode_mpix_per_sec);
        assert!(d.load_on(Backend::Software).mpix_per_sec > d.encode_mpix_per_sec);
    }
}
