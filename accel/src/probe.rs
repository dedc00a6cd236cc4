//! What this box can encode with, found by trying: each backend opens a tiny
//! real encoder (and, on GPUs, a device context, a hardware scaler and a
//! hardware decoder) and reports it available with its codecs and limits, or
//! unavailable with the precise reason. NVIDIA libraries are loaded with
//! dlopen only: `libcuda.so.1` is checked before anything touches CUDA.

use std::fmt;
use std::path::PathBuf;

use ffmpeg_next as ffmpeg;
use media::VideoCodec;
use serde::Serialize;

use crate::device::{Backend, DeviceId};
use crate::ffi::{self, DynamicLibrary, HwDevice, HwKind};
use crate::options;

/// Picture size the software path accepts (3840x2160 with DCI 4K's width).
pub const SOFTWARE_MAX: (u32, u32) = (4096, 2304);

/// Why a backend cannot be used, precisely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Unavailable {
    /// The linked FFmpeg was built without this encoder.
    NotInFfmpeg { encoder: String },
    /// No device node such as `/dev/dri/renderD128`.
    NoDeviceNode { pattern: String },
    /// A driver library could not be loaded (dlopen's text).
    DriverLibraryMissing { library: String, error: String },
    /// The driver loaded but the device could not be opened.
    DeviceOpenFailed { error: String },
    /// A GPU with CUDA but no NVENC engine (data-centre parts such as A100, H100, H200).
    NoNvenc { gpu: String, error: String },
    /// The device opened but a tiny encoder did not (FFmpeg's error and log text).
    EncoderOpenFailed { encoder: String, error: String },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotInFfmpeg { encoder } => write!(f, "encoder {encoder} is not built into this FFmpeg"),
            Unavailable::NoDeviceNode { pattern } => write!(f, "no device node {pattern}"),
            Unavailable::DriverLibraryMissing { library, error } => {
                write!(f, "driver library {library} missing ({error})")
            }
            Unavailable::DeviceOpenFailed { error } => write!(f, "device could not be opened: {error}"),
            Unavailable::NoNvenc { gpu, error } => {
                write!(f, "{gpu} has CUDA but no NVENC encoder (data-centre GPU without video encode): {error}")
            }
            Unavailable::EncoderOpenFailed { encoder, error } => write!(f, "{encoder} could not be opened: {error}"),
        }
    }
}

/// Whether a backend can encode, and with what.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ProbeStatus {
    Available {
        encoders: Vec<VideoCodec>,
        max_width: u32,
        max_height: u32,
        /// Concurrent encoder sessions, when the hardware or driver limits them.
        session_limit: Option<u32>,
    },
    Unavailable {
        reason: Unavailable,
    },
}

/// One backend on one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendProbe {
    pub backend: Backend,
    pub device: DeviceId,
    /// What the device calls itself (GPU model, render node, CPU).
    pub name: String,
    #[serde(flatten)]
    pub status: ProbeStatus,
    /// Codecs decoded on the device (NVDEC, VAAPI, QSV), each tried.
    pub hw_decode: Vec<String>,
    /// The hardware scaler that worked on a real frame (scale_cuda, scale_vaapi, vpp_qsv).
    pub hw_scale: Option<String>,
    /// What else was learnt (a second codec that failed, why decode or scale is absent).
    pub notes: Vec<String>,
}

impl BackendProbe {
    pub fn is_available(&self) -> bool {
        matches!(self.status, ProbeStatus::Available { .. })
    }

    pub fn encoders(&self) -> &[VideoCodec] {
        match &self.status {
            ProbeStatus::Available { encoders, .. } => encoders,
            ProbeStatus::Unavailable { .. } => &[],
        }
    }

    fn unavailable(backend: Backend, device: DeviceId, name: impl Into<String>, reason: Unavailable) -> Self {
        BackendProbe {
            backend,
            device,
            name: name.into(),
            status: ProbeStatus::Unavailable { reason },
            hw_decode: Vec::new(),
            hw_scale: None,
            notes: Vec::new(),
        }
    }
}

/// Everything the probe found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// libavcodec's version, e.g. `59.37.100` (FFmpeg 5.1).
    pub libavcodec: String,
    pub cpu_cores: usize,
    pub backends: Vec<BackendProbe>,
}

impl ProbeReport {
    /// "backend device: reason" for each hardware backend that is unavailable.
    pub fn unavailable_reasons(&self) -> Vec<String> {
        self.backends
            .iter()
            .filter(|b| b.backend.is_hardware())
            .filter_map(|b| match &b.status {
                ProbeStatus::Unavailable { reason } => Some(format!("{} {}: {reason}", b.backend, b.device)),
                ProbeStatus::Available { .. } => None,
            })
            .collect()
    }

    /// The table `appliance probe` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "libavcodec {} · {} CPU cores\n{:<9} {:<28} {:<12} DETAIL\n",
            self.libavcodec, self.cpu_cores, "BACKEND", "DEVICE", "STATUS"
        );
        for b in &self.backends {
            let (status, detail) = match &b.status {
                ProbeStatus::Available { encoders, max_width, max_height, session_limit } => {
                    let codecs: Vec<&str> = encoders.iter().map(|c| options::entry(b.backend, *c).encoder).collect();
                    let mut d = format!("{} · {} · up to {max_width}x{max_height}", b.name, codecs.join(", "));
                    d.push_str(&match session_limit {
                        Some(n) => format!(" · {n} sessions"),
                        None => " · sessions not limited by the driver".to_string(),
                    });
                    ("available", d)
                }
                ProbeStatus::Unavailable { reason } => ("unavailable", reason.to_string()),
            };
            out.push_str(&format!("{:<9} {:<28} {:<12} {detail}\n", b.backend.as_str(), b.device.as_str(), status));
            if !b.hw_decode.is_empty() {
                out.push_str(&format!("{:<51} hardware decode: {}\n", "", b.hw_decode.join(", ")));
            }
            if let Some(scale) = &b.hw_scale {
                out.push_str(&format!("{:<51} hardware scale: {scale}\n", ""));
            }
            for note in &b.notes {
                out.push_str(&format!("{:<51} note: {note}\n", ""));
            }
        }
        out
    }
}

/// Probes every backend. Takes a fraction of a second without GPUs; call it off the async runtime.
pub fn probe() -> ProbeReport {
    ffi::init();
    let cpu_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut backends = vec![probe_software(cpu_cores)];
    backends.extend(probe_nvidia());
    let nodes = render_nodes();
    backends.extend(probe_intel_qsv(&nodes));
    backends.extend(probe_vaapi(&nodes));
    let version = ffmpeg::codec::version();
    ProbeReport {
        libavcodec: format!("{}.{}.{}", version >> 16, (version >> 8) & 0xff, version & 0xff),
        cpu_cores,
        backends,
    }
}

/// Opens `encoder` at `width`x`height` for a moment. `hw` gives it a frames context on a device.
fn try_encoder(
    encoder: &'static str,
    width: u32,
    height: u32,
    hw: Option<&HwDevice>,
    extra: &[(&str, &str)],
) -> Result<(), String> {
    let codec = ffmpeg::encoder::find_by_name(encoder).ok_or_else(|| "not in this FFmpeg".to_string())?;
    let (result, log) = ffi::capture_log(|| -> Result<(), String> {
        let mut unopened = ffi::NotOpenedCodec::new(codec);
        if let Some(device) = hw {
            unopened.set_hw_frames(&device.frames(ffmpeg::format::Pixel::NV12, width, height)?);
        }
        let mut ctx = unopened.into_context().encoder().video().map_err(|e| e.to_string())?;
        ctx.set_width(width);
        ctx.set_height(height);
        ctx.set_time_base((1, 90_000));
        ctx.set_frame_rate(Some((30, 1)));
        ctx.set_bit_rate(500_000);
        ctx.set_max_b_frames(0);
        ctx.set_format(hw.map_or(ffmpeg::format::Pixel::YUV420P, |device| device.kind().pixel_format()));
        let mut dict = ffmpeg::Dictionary::new();
        for (k, v) in extra {
            dict.set(k, v);
        }
        ctx.open_with(dict).map(|_| ()).map_err(|e| e.to_string())
    });
    result.map_err(|e| {
        let detail: Vec<&String> = log.iter().filter(|l| !l.trim().is_empty()).collect();
        if detail.is_empty() {
            e
        } else {
            format!("{e}: {}", detail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" / "))
        }
    })
}

/// Uploads one frame, scales it with `scale` on the device and downloads it.
fn try_hw_scale(device: &HwDevice, scale: &str) -> Result<(), String> {
    let mut graph = ffmpeg::filter::Graph::new();
    let fail = |e: ffmpeg::Error| e.to_string();
    graph
        .add(
            &ffmpeg::filter::find("buffer").ok_or("no buffer filter")?,
            "in",
            "video_size=64x64:pix_fmt=nv12:time_base=1/30",
        )
        .map_err(fail)?;
    graph.add(&ffmpeg::filter::find("buffersink").ok_or("no buffersink filter")?, "out", "").map_err(fail)?;
    let spec = format!("hwupload,{scale},hwdownload,format=nv12");
    graph.output("in", 0).map_err(fail)?.input("out", 0).map_err(fail)?.parse(&spec).map_err(fail)?;
    let mut graph = graph;
    ffi::set_graph_device(&mut graph, device);
    let (validated, log) = ffi::capture_log(|| graph.validate());
    validated.map_err(|e| format!("{e}: {}", log.join(" / ")))?;
    let mut frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::NV12, 64, 64);
    for plane in 0..frame.planes() {
        frame.data_mut(plane).fill(128);
    }
    frame.set_pts(Some(0));
    graph.get("in").ok_or("no source")?.source().add(&frame).map_err(fail)?;
    let mut out = ffmpeg::frame::Video::empty();
    graph.get("out").ok_or("no sink")?.sink().frame(&mut out).map_err(fail)?;
    if (out.width(), out.height()) == (32, 32) {
        Ok(())
    } else {
        Err(format!("scaled to {}x{}", out.width(), out.height()))
    }
}

fn probe_software(cores: usize) -> BackendProbe {
    let mut encoders = Vec::new();
    let mut notes = Vec::new();
    let mut first_error = None;
    for codec in [VideoCodec::H264, VideoCodec::Hevc] {
        let name = options::entry(Backend::Software, codec).encoder;
        let extra: &[(&str, &str)] =
            if codec == VideoCodec::Hevc { &[("x265-params", "log-level=error")] } else { &[] };
        match try_encoder(name, 64, 64, None, extra) {
            Ok(()) => encoders.push(codec),
            Err(error) => {
                notes.push(format!("{name}: {error}"));
                first_error.get_or_insert(Unavailable::EncoderOpenFailed { encoder: name.into(), error });
            }
        }
    }
    let name = format!("CPU ({cores} cores)");
    if encoders.is_empty() {
        let reason = first_error.expect("an error for each codec");
        return BackendProbe::unavailable(Backend::Software, DeviceId::cpu(), name, reason);
    }
    BackendProbe {
        backend: Backend::Software,
        device: DeviceId::cpu(),
        name,
        status: ProbeStatus::Available {
            encoders,
            max_width: SOFTWARE_MAX.0,
            max_height: SOFTWARE_MAX.1,
            session_limit: None,
        },
        hw_decode: Vec::new(),
        hw_scale: None,
        notes,
    }
}

/// FFmpeg's and the driver's words for "this GPU has no NVENC".
fn means_no_nvenc(error: &str) -> bool {
    const MARKS: [&str; 5] = [
        "unsupported device",
        "No capable devices found",
        "No NVENC capable devices found",
        "NV_ENC_ERR_UNSUPPORTED_DEVICE",
        "NV_ENC_ERR_NO_ENCODE_DEVICE",
    ];
    MARKS.iter().any(|m| error.contains(m))
}

fn probe_nvidia() -> Vec<BackendProbe> {
    let any = DeviceId::new("cuda");
    if !ffi::has_encoder("h264_nvenc") {
        let reason = Unavailable::NotInFfmpeg { encoder: "h264_nvenc".into() };
        return vec![BackendProbe::unavailable(Backend::Nvenc, any, "NVIDIA", reason)];
    }
    let libcuda = match DynamicLibrary::open("libcuda.so.1") {
        Ok(lib) => lib,
        Err(error) => {
            let reason = Unavailable::DriverLibraryMissing { library: "libcuda.so.1".into(), error };
            return vec![BackendProbe::unavailable(Backend::Nvenc, any, "NVIDIA", reason)];
        }
    };
    let devices = match ffi::cuda_devices(&libcuda) {
        Ok(devices) if devices.is_empty() => {
            let reason = Unavailable::DeviceOpenFailed { error: "the CUDA driver reports no device".into() };
            return vec![BackendProbe::unavailable(Backend::Nvenc, any, "NVIDIA", reason)];
        }
        Ok(devices) => devices,
        Err(error) => {
            let reason = Unavailable::DeviceOpenFailed { error };
            return vec![BackendProbe::unavailable(Backend::Nvenc, any, "NVIDIA", reason)];
        }
    };
    devices
        .into_iter()
        .map(|d| probe_cuda_device(d.index, &format!("{} ({} GiB)", d.name, d.memory_bytes >> 30)))
        .collect()
}

fn probe_cuda_device(index: u32, name: &str) -> BackendProbe {
    let id = DeviceId::new(format!("cuda:{index}"));
    let hw = match HwDevice::create(HwKind::Cuda, Some(&index.to_string()), &[]) {
        Ok(hw) => hw,
        Err(error) => {
            return BackendProbe::unavailable(Backend::Nvenc, id, name, Unavailable::DeviceOpenFailed { error });
        }
    };
    let mut probe = BackendProbe::unavailable(
        Backend::Nvenc,
        id,
        name,
        Unavailable::DeviceOpenFailed { error: "not probed".into() },
    );
    // NVDEC: opening the cuvid decoders loads libnvcuvid and checks the decoder caps.
    for (codec, decoder) in [("h264", "h264_cuvid"), ("hevc", "hevc_cuvid")] {
        match try_decoder(decoder, index) {
            Ok(()) => probe.hw_decode.push(format!("{codec} (NVDEC)")),
            Err(error) => probe.notes.push(format!("{decoder}: {error}")),
        }
    }
    match try_hw_scale(&hw, "scale_cuda=w=32:h=32") {
        Ok(()) => probe.hw_scale = Some("scale_cuda".into()),
        Err(error) => probe.notes.push(format!("scale_cuda: {error}")),
    }
    if let Err(error) = DynamicLibrary::open("libnvidia-encode.so.1") {
        probe.status = ProbeStatus::Unavailable {
            reason: Unavailable::DriverLibraryMissing { library: "libnvidia-encode.so.1".into(), error },
        };
        return probe;
    }
    let gpu = index.to_string();
    let mut encoders = Vec::new();
    let mut first_error = None;
    for codec in [VideoCodec::H264, VideoCodec::Hevc] {
        let encoder = options::entry(Backend::Nvenc, codec).encoder;
        match try_encoder(encoder, 256, 144, None, &[("gpu", &gpu)]) {
            Ok(()) => encoders.push(codec),
            Err(error) => {
                probe.notes.push(format!("{encoder}: {error}"));
                first_error.get_or_insert((encoder, error));
            }
        }
    }
    if encoders.is_empty() {
        let (encoder, error) = first_error.expect("an error per codec");
        let reason = if means_no_nvenc(&error) {
            Unavailable::NoNvenc { gpu: name.to_string(), error }
        } else {
            Unavailable::EncoderOpenFailed { encoder: encoder.into(), error }
        };
        probe.status = ProbeStatus::Unavailable { reason };
        return probe;
    }
    let big = try_encoder(options::entry(Backend::Nvenc, encoders[0]).encoder, 3840, 2160, None, &[("gpu", &gpu)]);
    let (max_width, max_height) = if big.is_ok() { (4096, 2304) } else { (1920, 1088) };
    if let Err(error) = big {
        probe.notes.push(format!("3840x2160 encoder did not open: {error}"));
    }
    let consumer = name.contains("GeForce") || (name.contains("RTX") && !name.contains("RTX A"));
    probe.status = ProbeStatus::Available {
        encoders,
        max_width,
        max_height,
        // The driver limits consumer GPUs to 8 concurrent NVENC sessions (since 550).
        session_limit: consumer.then_some(8),
    };
    probe
}

/// Opens a hardware decoder on GPU `index` (cuvid decoders test their caps at open).
fn try_decoder(name: &str, index: u32) -> Result<(), String> {
    let codec = ffmpeg::decoder::find_by_name(name).ok_or_else(|| "not in this FFmpeg".to_string())?;
    let (result, log) = ffi::capture_log(|| {
        let ctx = ffmpeg::codec::Context::new_with_codec(codec);
        let mut dict = ffmpeg::Dictionary::new();
        dict.set("gpu", &index.to_string());
        ctx.decoder().open_with(dict).map(|_| ())
    });
    result.map_err(|e| format!("{e}: {}", log.join(" / ")))
}

fn codec_name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::H264 => "h264",
        VideoCodec::Hevc => "hevc",
    }
}

/// The DRM render nodes, sorted.
fn render_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("renderD")))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
}

fn probe_vaapi(nodes: &[PathBuf]) -> Vec<BackendProbe> {
    if !ffi::has_encoder("h264_vaapi") {
        let reason = Unavailable::NotInFfmpeg { encoder: "h264_vaapi".into() };
        return vec![BackendProbe::unavailable(Backend::Vaapi, DeviceId::new("vaapi"), "VA-API", reason)];
    }
    if nodes.is_empty() {
        let reason = Unavailable::NoDeviceNode { pattern: "/dev/dri/renderD*".into() };
        return vec![BackendProbe::unavailable(Backend::Vaapi, DeviceId::new("vaapi"), "VA-API", reason)];
    }
    nodes.iter().map(|node| probe_hw_node(Backend::Vaapi, HwKind::Vaapi, node, "scale_vaapi=w=32:h=32")).collect()
}

fn probe_intel_qsv(nodes: &[PathBuf]) -> Vec<BackendProbe> {
    if !ffi::has_encoder("h264_qsv") {
        let reason = Unavailable::NotInFfmpeg { encoder: "h264_qsv".into() };
        return vec![BackendProbe::unavailable(Backend::Qsv, DeviceId::new("qsv"), "Intel QSV", reason)];
    }
    match nodes.first() {
        None => {
            let reason = Unavailable::NoDeviceNode { pattern: "/dev/dri/renderD*".into() };
            vec![BackendProbe::unavailable(Backend::Qsv, DeviceId::new("qsv"), "Intel QSV", reason)]
        }
        Some(node) => vec![probe_hw_node(Backend::Qsv, HwKind::Qsv, node, "vpp_qsv=w=32:h=32")],
    }
}

/// VAAPI or QSV on one render node: device, tiny encoders on device frames, and the scaler.
fn probe_hw_node(backend: Backend, kind: HwKind, node: &std::path::Path, scale: &str) -> BackendProbe {
    let path = node.display().to_string();
    let id = DeviceId::new(format!("{}:{path}", backend.as_str()));
    let opened = match kind {
        HwKind::Qsv => HwDevice::create(kind, Some("hw"), &[("child_device", &path)]),
        _ => HwDevice::create(kind, Some(&path), &[]),
    };
    let hw = match opened {
        Ok(hw) => hw,
        Err(error) => return BackendProbe::unavailable(backend, id, path, Unavailable::DeviceOpenFailed { error }),
    };
    let mut probe =
        BackendProbe::unavailable(backend, id, path, Unavailable::DeviceOpenFailed { error: "not probed".into() });
    let mut encoders = Vec::new();
    let mut first_error = None;
    for codec in [VideoCodec::H264, VideoCodec::Hevc] {
        let encoder = options::entry(backend, codec).encoder;
        match try_encoder(encoder, 256, 144, Some(&hw), &[]) {
            Ok(()) => encoders.push(codec),
            Err(error) => {
                probe.notes.push(format!("{encoder}: {error}"));
                first_error.get_or_insert((encoder, error));
            }
        }
    }
    match try_hw_scale(&hw, scale) {
        Ok(()) => probe.hw_scale = Some(scale.split('=').next().unwrap_or(scale).to_string()),
        Err(error) => probe.notes.push(format!("{scale}: {error}")),
    }
    if encoders.is_empty() {
        let (encoder, error) = first_error.expect("an error per codec");
        probe.status =
            ProbeStatus::Unavailable { reason: Unavailable::EncoderOpenFailed { encoder: encoder.into(), error } };
        return probe;
    }
    // Decoding goes through FFmpeg's hwaccel on this device; it is first exercised by a session.
    probe.hw_decode = encoders.iter().map(|c| format!("{} ({backend} hwaccel)", codec_name(*c))).collect();
    let big = try_encoder(options::entry(backend, encoders[0]).encoder, 3840, 2160, Some(&hw), &[]);
    let (max_width, max_height) = if big.is_ok() { (4096, 2304) } else { (1920, 1088) };
    probe.status = ProbeStatus::Available { encoders, max_width, max_height, session_limit: None };
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_precisely() {
        let cases = [
            (
                Unavailable::DriverLibraryMissing {
                    library: "libcuda.so.1".into(),
                    error: "libcuda.so.1: cannot open shared object file: No such file or directory".into(),
                },
                "driver library libcuda.so.1 missing (libcuda.so.1: cannot open shared object file: No such file or directory)",
            ),
            (Unavailable::NoDeviceNode { pattern: "/dev/dri/renderD*".into() }, "no device node /dev/dri/renderD*"),
            (
                Unavailable::NoNvenc {
                    gpu: "NVIDIA H100 80GB HBM3 (79 GiB)".into(),
                    error: "OpenEncodeSessionEx failed: unsupported device (2)".into(),
                },
                "NVIDIA H100 80GB HBM3 (79 GiB) has CUDA but no NVENC encoder (data-centre GPU without video encode): OpenEncodeSessionEx failed: unsupported device (2)",
            ),
            (
                Unavailable::EncoderOpenFailed {
                    encoder: "h264_vaapi".into(),
                    error: "Function not implemented".into(),
                },
                "h264_vaapi could not be opened: Function not implemented",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want);
        }
        assert!(means_no_nvenc("[h264_nvenc @ 0x1] OpenEncodeSessionEx failed: unsupported device (2): (no details)"));
        assert!(means_no_nvenc("No capable devices found"));
        assert!(
            !means_no_nvenc("OpenEncodeSessionEx failed: out of memory (10)"),
            "a full GeForce is not a missing NVENC"
        );
    }

    #[test]
    fn this_box_has_software_encoding() {
        let report = probe();
        let software = &report.backends[0];
        assert_eq!(software.backend, Backend::Software);
        assert!(software.is_available(), "{}", report.table());
        assert!(software.encoders().contains(&VideoCodec::H264));
        assert!(report.libavcodec.starts_with("59."), "FFmpeg 5.1 is libavcodec 59: {}", report.libavcodec);
        // Every hardware backend is listed, available or with its reason.
        for backend in [Backend::Nvenc, Backend::Qsv, Backend::Vaapi] {
            assert!(report.backends.iter().any(|b| b.backend == backend), "{backend} missing:\n{}", report.table());
        }
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["backends"][0]["status"], "available");
        eprintln!("{}", report.table());
    }
}
