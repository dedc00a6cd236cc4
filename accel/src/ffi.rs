//! Every `unsafe` block of the appliance: the parts of FFmpeg that
//! `ffmpeg-next` does not wrap (hardware device and frame contexts, codec
//! extradata, buffer-source parameters, the log callback) and the run-time
//! loading of NVIDIA's driver libraries. Each raw pointer is owned by an RAII
//! type here; the rest of the crate sees only safe functions.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::ptr;
use std::sync::Once;

use ffmpeg::ffi as sys;
use ffmpeg_next as ffmpeg;

/// FFmpeg log levels (libavutil/log.h).
const AV_LOG_ERROR: c_int = 16;
const AV_LOG_WARNING: c_int = 24;
const AV_LOG_VERBOSE: c_int = 40;

thread_local! {
    /// Log lines captured on this thread while `capture_log` runs.
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

static INIT: Once = Once::new();

/// Initialises FFmpeg once per process and routes its log into `tracing`
/// (errors at warn, warnings at debug) and into `capture_log` buffers.
pub fn init() {
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        // SAFETY: `log_callback` has exactly the signature av_log expects and
        // is a plain function that lives for the whole program. Installing a
        // callback is a store of one pointer; libavutil reads it on each log
        // call, and Once guarantees we store it a single time.
        unsafe { sys::av_log_set_callback(Some(log_callback)) };
    });
}

/// The av_log callback. Called from any thread that logs, with a va_list we
/// hand to FFmpeg's own formatter exactly once.
unsafe extern "C" fn log_callback(avcl: *mut c_void, level: c_int, fmt: *const c_char, vl: *mut sys::__va_list_tag) {
    let capturing = CAPTURE.with(|c| c.borrow().is_some());
    if level > AV_LOG_VERBOSE || (level > AV_LOG_WARNING && !capturing) || fmt.is_null() {
        return;
    }
    let mut line = [0 as c_char; 1024];
    let mut print_prefix: c_int = 1;
    // SAFETY: `line` is a writable buffer of the length we pass; `avcl`, `fmt`
    // and `vl` are what av_log gave this callback and are valid for its
    // duration; the va_list is consumed once, here, as av_log_default_callback
    // would. av_log_format_line2 always NUL-terminates within `line_size`.
    let text = unsafe {
        sys::av_log_format_line2(avcl, level, fmt, vl, line.as_mut_ptr(), line.len() as c_int, &mut print_prefix);
        CStr::from_ptr(line.as_ptr()).to_string_lossy().trim_end().to_string()
    };
    if text.is_empty() {
        return;
    }
    if capturing {
        CAPTURE.with(|c| {
            if let Some(lines) = c.borrow_mut().as_mut() {
                lines.push(text.clone());
            }
        });
    }
    if level <= AV_LOG_ERROR {
        tracing::warn!(target: "ffmpeg", "{text}");
    } else if level <= AV_LOG_WARNING {
        tracing::debug!(target: "ffmpeg", "{text}");
    }
}

/// Runs `f` and returns what FFmpeg logged on this thread meanwhile (verbose
/// and more severe): the detail behind a bare error code such as
/// "OpenEncodeSessionEx failed: unsupported device (2)".
pub fn capture_log<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    init();
    let previous = CAPTURE.with(|c| c.borrow_mut().replace(Vec::new()));
    // The level gate of av_log itself: verbose lines must reach the callback.
    // SAFETY: av_log_get_level/av_log_set_level read and store one int.
    let old_level = unsafe { sys::av_log_get_level() };
    if old_level < AV_LOG_VERBOSE {
        // SAFETY: as above.
        unsafe { sys::av_log_set_level(AV_LOG_VERBOSE) };
    }
    let value = f();
    if old_level < AV_LOG_VERBOSE {
        // SAFETY: as above; restores the level we found.
        unsafe { sys::av_log_set_level(old_level) };
    }
    let lines = CAPTURE.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous)).unwrap_or_default();
    (value, lines)
}

/// A shared library opened with dlopen, closed on drop.
#[derive(Debug)]
pub struct DynamicLibrary {
    handle: *mut c_void,
}

// SAFETY: a dlopen handle is a process-wide reference count, usable and
// closable from any thread (POSIX requires dlsym/dlclose to be thread-safe).
unsafe impl Send for DynamicLibrary {}
// SAFETY: as above; `&DynamicLibrary` only allows dlsym, which is thread-safe.
unsafe impl Sync for DynamicLibrary {}

impl DynamicLibrary {
    /// Opens `name` (for example `libcuda.so.1`); the error is dlerror's text.
    pub fn open(name: &str) -> Result<DynamicLibrary, String> {
        let c_name = CString::new(name).map_err(|_| format!("{name}: invalid library name"))?;
        // SAFETY: `c_name` is a valid C string for the call; RTLD_NOW makes
        // unresolved symbols fail here rather than at a later call.
        let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(dl_error().unwrap_or_else(|| format!("{name}: cannot be loaded")));
        }
        Ok(DynamicLibrary { handle })
    }

    /// The address of `symbol`, or None when the library lacks it.
    fn symbol(&self, symbol: &CStr) -> Option<*mut c_void> {
        // SAFETY: `self.handle` is a live handle (closed only in Drop) and
        // `symbol` a valid C string.
        let address = unsafe { libc::dlsym(self.handle, symbol.as_ptr()) };
        (!address.is_null()).then_some(address)
    }
}

impl Drop for DynamicLibrary {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful dlopen and is closed once.
        unsafe { libc::dlclose(self.handle) };
    }
}

fn dl_error() -> Option<String> {
    // SAFETY: dlerror returns null or a NUL-terminated thread-local string
    // that stays valid until the next dl* call on this thread; we copy it now.
    let text = unsafe { libc::dlerror() };
    // SAFETY: non-null and NUL-terminated, per dlerror's contract.
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned())
}

/// One CUDA device as the driver names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaDevice {
    pub index: u32,
    pub name: String,
    pub memory_bytes: u64,
}

type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
type CuDeviceGetCount = unsafe extern "C" fn(*mut c_int) -> c_int;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
type CuDeviceTotalMem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;
type CuGetErrorName = unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int;

/// Lists CUDA devices through the driver API loaded from `libcuda.so.1` (never linked).
pub fn cuda_devices(libcuda: &DynamicLibrary) -> Result<Vec<CudaDevice>, String> {
    let sym =
        |name: &CStr| libcuda.symbol(name).ok_or_else(|| format!("libcuda.so.1 lacks {}", name.to_string_lossy()));
    // SAFETY: each address comes from dlsym on libcuda for the named entry
    // point of the CUDA driver API, whose C signatures are the types above
    // (cuda.h, stable since CUDA 4). The library outlives these calls
    // because `libcuda` is borrowed for the whole function.
    let (init, count, get, get_name, total_mem) = unsafe {
        (
            std::mem::transmute::<*mut c_void, CuInit>(sym(c"cuInit")?),
            std::mem::transmute::<*mut c_void, CuDeviceGetCount>(sym(c"cuDeviceGetCount")?),
            std::mem::transmute::<*mut c_void, CuDeviceGet>(sym(c"cuDeviceGet")?),
            std::mem::transmute::<*mut c_void, CuDeviceGetName>(sym(c"cuDeviceGetName")?),
            std::mem::transmute::<*mut c_void, CuDeviceTotalMem>(sym(c"cuDeviceTotalMem_v2")?),
        )
    };
    let error_name = libcuda.symbol(c"cuGetErrorName");
    let describe = |code: c_int| -> String {
        if let Some(address) = error_name {
            let mut text: *const c_char = ptr::null();
            // SAFETY: cuGetErrorName has this signature and writes a pointer
            // to a static string (or leaves it null for unknown codes).
            let ok = unsafe { std::mem::transmute::<*mut c_void, CuGetErrorName>(address)(code, &mut text) } == 0;
            if ok && !text.is_null() {
                // SAFETY: a static NUL-terminated string owned by the driver.
                return format!("{} ({code})", unsafe { CStr::from_ptr(text) }.to_string_lossy());
            }
        }
        format!("CUDA error {code}")
    };
    // SAFETY: cuInit takes flags 0 and may be called repeatedly.
    let status = unsafe { init(0) };
    if status != 0 {
        return Err(format!("cuInit failed: {}", describe(status)));
    }
    let mut n: c_int = 0;
    // SAFETY: writes one int into `n`.
    let status = unsafe { count(&mut n) };
    if status != 0 {
        return Err(format!("cuDeviceGetCount failed: {}", describe(status)));
    }
    let mut devices = Vec::new();
    for ordinal in 0..n {
        let mut device: c_int = 0;
        let mut name = [0 as c_char; 256];
        let mut memory: usize = 0;
        // SAFETY: `device`, `name` (with its true length) and `memory` are
        // valid for writes; `ordinal` is below the count the driver reported.
        let ok = unsafe {
            get(&mut device, ordinal) == 0
                && get_name(name.as_mut_ptr(), name.len() as c_int, device) == 0
                && total_mem(&mut memory, device) == 0
        };
        if ok {
            // SAFETY: cuDeviceGetName NUL-terminates within the length given.
            let name = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
            devices.push(CudaDevice { index: ordinal as u32, name, memory_bytes: memory as u64 });
        }
    }
    Ok(devices)
}

/// Kinds of FFmpeg hardware device contexts the pipeline uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwKind {
    Cuda,
    Vaapi,
    Qsv,
}

impl HwKind {
    fn ffmpeg_type(self) -> sys::AVHWDeviceType {
        match self {
            HwKind::Cuda => sys::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            HwKind::Vaapi => sys::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
            HwKind::Qsv => sys::AVHWDeviceType::AV_HWDEVICE_TYPE_QSV,
        }
    }

    /// The pixel format of frames that live on this device.
    pub fn pixel_format(self) -> ffmpeg::format::Pixel {
        match self {
            HwKind::Cuda => ffmpeg::format::Pixel::CUDA,
            HwKind::Vaapi => ffmpeg::format::Pixel::VAAPI,
            HwKind::Qsv => ffmpeg::format::Pixel::QSV,
        }
    }
}

/// An `AVBufferRef` holding a hardware device or frames context; one reference, released on drop.
#[derive(Debug)]
struct BufferRef(*mut sys::AVBufferRef);

// SAFETY: AVBufferRef reference counts are atomic, and the hwcontexts
// FFmpeg puts behind them are documented as usable from any thread once
// initialised (their mutation happens only inside init, before we share them).
unsafe impl Send for BufferRef {}
// SAFETY: as above; a shared `&BufferRef` only takes new references.
unsafe impl Sync for BufferRef {}

impl BufferRef {
    /// A new reference to the same buffer.
    fn new_ref(&self) -> *mut sys::AVBufferRef {
        // SAFETY: self.0 is a live reference (non-null by construction); the
        // returned reference is owned by the caller, who stores it in a struct
        // that unrefs it (an AVCodecContext, AVFilterContext or a BufferRef).
        unsafe { sys::av_buffer_ref(self.0) }
    }
}

impl Clone for BufferRef {
    fn clone(&self) -> Self {
        BufferRef(self.new_ref())
    }
}

impl Drop for BufferRef {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference; av_buffer_unref nulls our pointer.
        unsafe { sys::av_buffer_unref(&mut self.0) };
    }
}

/// An FFmpeg hardware device context (`av_hwdevice_ctx_create`).
#[derive(Debug, Clone)]
pub struct HwDevice {
    kind: HwKind,
    buffer: BufferRef,
}

impl HwDevice {
    /// Opens `device` (`0` for CUDA, a render node for VAAPI, None for the default) with options.
    pub fn create(kind: HwKind, device: Option<&str>, options: &[(&str, &str)]) -> Result<HwDevice, String> {
        init();
        let c_device = device.map(CString::new).transpose().map_err(|_| "device name contains NUL".to_string())?;
        let mut dict: *mut sys::AVDictionary = ptr::null_mut();
        for (k, v) in options {
            let (k, v) = (CString::new(*k).map_err(|e| e.to_string())?, CString::new(*v).map_err(|e| e.to_string())?);
            // SAFETY: av_dict_set copies key and value; `dict` starts null and
            // is freed below with av_dict_free.
            unsafe { sys::av_dict_set(&mut dict, k.as_ptr(), v.as_ptr(), 0) };
        }
        let mut buffer: *mut sys::AVBufferRef = ptr::null_mut();
        let (code, lines) = capture_log(|| {
            // SAFETY: `buffer` receives a new reference on success (left null
            // on failure); the device string and dictionary are valid for the
            // call and FFmpeg copies what it keeps.
            unsafe {
                sys::av_hwdevice_ctx_create(
                    &mut buffer,
                    kind.ffmpeg_type(),
                    c_device.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
                    dict,
                    0,
                )
            }
        });
        // SAFETY: frees the dictionary built above (null-safe); nothing else refers to it.
        unsafe { sys::av_dict_free(&mut dict) };
        if code < 0 || buffer.is_null() {
            return Err(with_log(ffmpeg::Error::from(code).to_string(), &lines));
        }
        Ok(HwDevice { kind, buffer: BufferRef(buffer) })
    }

    pub fn kind(&self) -> HwKind {
        self.kind
    }

    /// A frames context of `width`x`height` with `sw_format` on this device (for encoders fed uploaded frames).
    pub fn frames(&self, sw_format: ffmpeg::format::Pixel, width: u32, height: u32) -> Result<HwFrames, String> {
        // SAFETY: av_hwframe_ctx_alloc takes its own reference to the device
        // and returns a new frames buffer (or null).
        let frames = unsafe { sys::av_hwframe_ctx_alloc(self.buffer.0) };
        if frames.is_null() {
            return Err("av_hwframe_ctx_alloc failed".into());
        }
        let frames = BufferRef(frames);
        // SAFETY: `frames.0` points at an AVBufferRef whose data is the
        // AVHWFramesContext just allocated and not yet shared, so writing its
        // public fields before av_hwframe_ctx_init is what the API requires.
        let code = unsafe {
            let ctx = (*frames.0).data as *mut sys::AVHWFramesContext;
            (*ctx).format = self.kind.pixel_format().into();
            (*ctx).sw_format = sw_format.into();
            (*ctx).width = width as c_int;
            (*ctx).height = height as c_int;
            (*ctx).initial_pool_size = if self.kind == HwKind::Cuda { 0 } else { 16 };
            sys::av_hwframe_ctx_init(frames.0)
        };
        if code < 0 {
            return Err(format!("av_hwframe_ctx_init: {}", ffmpeg::Error::from(code)));
        }
        Ok(HwFrames(frames))
    }
}

/// An FFmpeg hardware frames context (a pool of frames on a device).
#[derive(Debug, Clone)]
pub struct HwFrames(BufferRef);

fn with_log(error: String, lines: &[String]) -> String {
    let detail: Vec<&str> = lines.iter().map(String::as_str).filter(|l| !l.is_empty()).collect();
    if detail.is_empty() { error } else { format!("{error}: {}", detail.join(" / ")) }
}

/// Copies `data` into the codec context's extradata (decoders: the avcC/hvcC record).
pub fn set_extradata(ctx: &mut ffmpeg::codec::Context, data: &[u8]) {
    let padding = sys::AV_INPUT_BUFFER_PADDING_SIZE as usize;
    // SAFETY: the context is not open yet (callers set extradata before
    // avcodec_open2) and exclusively borrowed. We free any previous
    // extradata with av_freep and install a buffer from av_mallocz (zeroed
    // padding included), which avcodec_free_context frees in turn.
    unsafe {
        let ctx = ctx.as_mut_ptr();
        sys::av_freep(&mut (*ctx).extradata as *mut *mut u8 as *mut c_void);
        (*ctx).extradata_size = 0;
        let buffer = sys::av_mallocz(data.len() + padding) as *mut u8;
        if buffer.is_null() {
            return;
        }
        ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len());
        (*ctx).extradata = buffer;
        (*ctx).extradata_size = data.len() as c_int;
    }
}

/// Tells a (not yet opened) audio decoder the stream's sample rate and
/// channel count: PCM decoders (G.711) cannot open without them, the others
/// take them as a hint until the bitstream says otherwise.
pub fn set_audio_format(ctx: &mut ffmpeg::codec::Context, sample_rate: u32, channels: u8) {
    // SAFETY: the context is not open yet and exclusively borrowed. We write
    // one int and replace its channel layout: av_channel_layout_uninit frees
    // whatever the old layout owned (nothing for the native order a fresh
    // context has) and av_channel_layout_default fills it in place with a
    // native-order layout that owns no memory.
    unsafe {
        let ctx = ctx.as_mut_ptr();
        (*ctx).sample_rate = sample_rate.min(i32::MAX as u32) as c_int;
        sys::av_channel_layout_uninit(&mut (*ctx).ch_layout);
        sys::av_channel_layout_default(&mut (*ctx).ch_layout, c_int::from(channels.max(1)));
    }
}

/// The codec context's extradata (encoders with the global-header flag: the parameter sets).
pub fn extradata(ctx: &ffmpeg::codec::Context) -> Vec<u8> {
    // SAFETY: extradata/extradata_size are owned by the context, which the
    // shared borrow keeps alive and unmodified while we copy them.
    unsafe {
        let ctx = ctx.as_ptr();
        if (*ctx).extradata.is_null() || (*ctx).extradata_size <= 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts((*ctx).extradata, (*ctx).extradata_size as usize).to_vec()
    }
}

/// The get_format callback of hardware decoders: the device's pixel format
/// (kept in `opaque`) when the decoder offers it, else its first software one.
unsafe extern "C" fn get_hw_format(
    ctx: *mut sys::AVCodecContext,
    formats: *const sys::AVPixelFormat,
) -> sys::AVPixelFormat {
    // SAFETY: FFmpeg calls this with the context we configured (whose opaque
    // we set to the wanted format's integer value in `set_hw_device`) and a
    // list terminated by AV_PIX_FMT_NONE.
    unsafe {
        let wanted = (*ctx).opaque as isize as i32;
        let mut first_software = sys::AVPixelFormat::AV_PIX_FMT_NONE;
        let mut p = formats;
        while *p != sys::AVPixelFormat::AV_PIX_FMT_NONE {
            if *p as i32 == wanted {
                return *p;
            }
            let descriptor = sys::av_pix_fmt_desc_get(*p);
            let hardware = !descriptor.is_null() && (*descriptor).flags & sys::AV_PIX_FMT_FLAG_HWACCEL as u64 != 0;
            if !hardware && first_software == sys::AVPixelFormat::AV_PIX_FMT_NONE {
                first_software = *p;
            }
            p = p.add(1);
        }
        first_software
    }
}

/// Makes a (not yet opened) decoder decode on `device`, outputting frames that stay on it.
pub fn set_hw_device(ctx: &mut ffmpeg::codec::Context, device: &HwDevice) {
    let wanted: sys::AVPixelFormat = device.kind.pixel_format().into();
    // SAFETY: the context is unopened and exclusively borrowed. It takes
    // ownership of the new device reference (avcodec_free_context unrefs
    // hw_device_ctx). `opaque` is ours to use (ffmpeg-next does not touch it)
    // and carries only an integer read back by `get_hw_format`.
    unsafe {
        let ctx = ctx.as_mut_ptr();
        sys::av_buffer_unref(&mut (*ctx).hw_device_ctx);
        (*ctx).hw_device_ctx = device.buffer.new_ref();
        (*ctx).opaque = wanted as i32 as isize as *mut c_void;
        (*ctx).get_format = Some(get_hw_format);
    }
}

/// Gives a (not yet opened) encoder the frames context its input frames come from.
pub fn set_hw_frames(ctx: &mut ffmpeg::codec::Context, frames: &HwFrames) {
    // SAFETY: unopened, exclusively borrowed context; it takes ownership of
    // the new reference (avcodec_free_context unrefs hw_frames_ctx).
    unsafe {
        let ctx = ctx.as_mut_ptr();
        sys::av_buffer_unref(&mut (*ctx).hw_frames_ctx);
        (*ctx).hw_frames_ctx = frames.0.new_ref();
    }
}

/// The frames context a hardware frame belongs to.
pub fn frame_hw_frames(frame: &ffmpeg::frame::Frame) -> Option<HwFrames> {
    // SAFETY: the frame is borrowed for the call; we only take a new
    // reference to its hw_frames_ctx, which leaves the frame unchanged.
    unsafe {
        let ctx = (*frame.as_ptr()).hw_frames_ctx;
        (!ctx.is_null()).then(|| HwFrames(BufferRef(sys::av_buffer_ref(ctx))))
    }
}

/// Tells a buffer source that its frames live in `frames` (before the graph is configured).
pub fn set_buffersrc_hw_frames(source: &mut ffmpeg::filter::Context, frames: &HwFrames) -> Result<(), String> {
    // SAFETY: the parameters struct is allocated by FFmpeg and freed with
    // av_free below; av_buffersrc_parameters_set takes its own reference to
    // hw_frames_ctx, so the pointer we lend it stays owned by `frames`.
    unsafe {
        let params = sys::av_buffersrc_parameters_alloc();
        if params.is_null() {
            return Err("av_buffersrc_parameters_alloc failed".into());
        }
        (*params).format = -1; // keep the format given in the filter arguments
        (*params).hw_frames_ctx = frames.0.0;
        let code = sys::av_buffersrc_parameters_set(source.as_mut_ptr(), params);
        sys::av_free(params as *mut c_void);
        if code < 0 { Err(ffmpeg::Error::from(code).to_string()) } else { Ok(()) }
    }
}

/// Gives every filter of a graph the device (hwupload and the vaapi/qsv filters need it).
pub fn set_graph_device(graph: &mut ffmpeg::filter::Graph, device: &HwDevice) {
    // SAFETY: the graph is exclusively borrowed and not yet configured;
    // `filters` holds `nb_filters` valid filter contexts, each of which takes
    // ownership of one new device reference (avfilter_free unrefs it).
    unsafe {
        let graph = graph.as_mut_ptr();
        for i in 0..(*graph).nb_filters as usize {
            let filter = *(*graph).filters.add(i);
            if !filter.is_null() && (*filter).hw_device_ctx.is_null() {
                (*filter).hw_device_ctx = device.buffer.new_ref();
            }
        }
    }
}

/// Whether `name` is an encoder built into the linked libavcodec.
pub fn has_encoder(name: &str) -> bool {
    init();
    ffmpeg::encoder::find_by_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_libraries_report_dlerror() {
        let err = DynamicLibrary::open("libdefinitely-not-here.so.9").unwrap_err();
        assert!(err.contains("libdefinitely-not-here.so.9"), "{err}");
        assert!(DynamicLibrary::open("libc.so.6").is_ok());
    }

    #[test]
    fn encoder_open_failures_carry_ffmpeg_log_text() {
        init();
        let (result, lines) = capture_log(|| {
            let codec = ffmpeg::encoder::find_by_name("libx264").unwrap();
            let mut encoder = ffmpeg::codec::Context::new_with_codec(codec).encoder().video().unwrap();
            encoder.set_width(0); // invalid on purpose
            encoder.set_height(0);
            encoder.set_format(ffmpeg::format::Pixel::YUV420P);
            encoder.set_time_base((1, 25));
            encoder.open()
        });
        assert!(result.is_err());
        assert!(!lines.is_empty(), "FFmpeg explained the failure");
        // Capturing ends with the closure.
        let (_, after) = capture_log(|| ());
        assert!(after.is_empty());
    }

    #[test]
    fn audio_format_opens_a_pcm_decoder() {
        init();
        let codec = ffmpeg::decoder::find(ffmpeg::codec::Id::PCM_ALAW).unwrap();
        let mut ctx = ffmpeg::codec::Context::new_with_codec(codec);
        set_audio_format(&mut ctx, 8_000, 1);
        let decoder = ctx.decoder().audio().expect("G.711 opens once it knows rate and channels");
        assert_eq!((decoder.rate(), decoder.channels()), (8_000, 1));
        let mut bare = ffmpeg::codec::Context::new_with_codec(codec);
        set_audio_format(&mut bare, 8_000, 2);
        assert_eq!(bare.decoder().audio().unwrap().channels(), 2);
    }

    #[test]
    fn extradata_round_trips() {
        init();
        let mut ctx = ffmpeg::codec::Context::new();
        set_extradata(&mut ctx, &[1, 2, 3]);
        assert_eq!(extradata(&ctx), [1, 2, 3]);
        set_extradata(&mut ctx, &[]);
        assert!(extradata(&ctx).is_empty());
    }
}
