//! Every `unsafe` block of the appliance (here and in `ffi/`): the parts of FFmpeg that
//! `ffmpeg-next` does not wrap (hardware device and frame contexts, codec
//! extradata, buffer-source parameters, the log callback) and the run-time
//! loading of NVIDIA's driver libraries. Each raw pointer is owned by an RAII
//! type here; the rest of the crate sees only safe functions, and a safe
//! function here is sound for every input its types allow: where FFmpeg's
//! rules depend on state (a codec context not opened yet, a filter that is a
//! buffer source), a type proves the state (`NotOpenedCodec`) or the
//! function checks it.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::ptr;
use std::sync::{Mutex, Once};

use ffmpeg::ffi as sys;
use ffmpeg_next as ffmpeg;

pub mod output;

/// FFmpeg log levels (libavutil/log.h).
const AV_LOG_ERROR: c_int = 16;
const AV_LOG_WARNING: c_int = 24;
const AV_LOG_VERBOSE: c_int = 40;

thread_local! {
    /// Log lines captured on this thread while `capture_log` runs.
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

static INIT: Once = Once::new();

/// The `capture_log` calls running on any thread, and the log level to put
/// back when the last one ends (see `LevelRaise`).
static CAPTURES: Mutex<(usize, c_int)> = Mutex::new((0, 0));

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
    let raise = LevelRaise::new();
    let value = f();
    drop(raise);
    let lines = CAPTURE.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous)).unwrap_or_default();
    (value, lines)
}

/// FFmpeg's global log level raised to verbose while any `capture_log` runs
/// (on any thread), and put back when the last one ends, even by a panic.
/// Our callback receives every line whatever the level (av_vlog does not
/// check it); the level matters to FFmpeg code that asks `av_log_get_level`
/// before it explains a failure. Counting the captures under a lock means
/// encoders opened at once on several rung threads never put back the level
/// under each other's feet.
struct LevelRaise;

impl LevelRaise {
    fn new() -> LevelRaise {
        let mut captures = CAPTURES.lock().unwrap_or_else(|e| e.into_inner());
        if captures.0 == 0 {
            // SAFETY: av_log_get_level and av_log_set_level read and write one
            // plain static int in libavutil and have no other effect. We
            // touch it only under CAPTURES' lock, so our own reads and writes
            // never interleave; FFmpeg's threads read it without a lock, and
            // an aligned int on the targets we build for is never seen torn,
            // so they see the old level or the new one, which only decides
            // whether a verbose line is logged.
            let level = unsafe { sys::av_log_get_level() };
            if level < AV_LOG_VERBOSE {
                // SAFETY: as above.
                unsafe { sys::av_log_set_level(AV_LOG_VERBOSE) };
            }
            captures.1 = level;
        }
        captures.0 += 1;
        LevelRaise
    }
}

impl Drop for LevelRaise {
    fn drop(&mut self) {
        let mut captures = CAPTURES.lock().unwrap_or_else(|e| e.into_inner());
        captures.0 -= 1;
        if captures.0 == 0 && captures.1 < AV_LOG_VERBOSE {
            // SAFETY: as in `LevelRaise::new`; puts back the level found by the first capture.
            unsafe { sys::av_log_set_level(captures.1) };
        }
    }
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

/// An `AVBufferRef` holding a hardware device or frames context; one
/// reference, never null (`adopt` refuses null), released on drop.
#[derive(Debug)]
struct BufferRef(*mut sys::AVBufferRef);

// SAFETY: AVBufferRef reference counts are atomic, and the hwcontexts
// FFmpeg puts behind them are documented as usable from any thread once
// initialised (their mutation happens only inside init, before we share them).
unsafe impl Send for BufferRef {}
// SAFETY: as above; a shared `&BufferRef` only takes new references.
unsafe impl Sync for BufferRef {}

impl BufferRef {
    /// Takes ownership of one reference; None for the null that FFmpeg returns when out of memory.
    fn adopt(buffer: *mut sys::AVBufferRef) -> Option<BufferRef> {
        (!buffer.is_null()).then_some(BufferRef(buffer))
    }

    /// A new reference to the same buffer (null only when out of memory).
    fn new_ref(&self) -> *mut sys::AVBufferRef {
        // SAFETY: self.0 is a live, non-null reference (`adopt` is the only
        // constructor and Drop the only place that releases it). The
        // returned reference is owned by the caller, who stores it in a
        // struct that unrefs it (an AVCodecContext, AVFilterContext or a
        // BufferRef); a null one is stored as "no context", which FFmpeg
        // accepts everywhere we store it.
        unsafe { sys::av_buffer_ref(self.0) }
    }
}

impl Clone for BufferRef {
    fn clone(&self) -> Self {
        // Out of memory here is what `Vec::clone` would abort on too.
        BufferRef::adopt(self.new_ref()).expect("av_buffer_ref: out of memory")
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
        match BufferRef::adopt(buffer) {
            Some(buffer) if code >= 0 => Ok(HwDevice { kind, buffer }),
            _ => Err(with_log(ffmpeg::Error::from(code).to_string(), &lines)),
        }
    }

    pub fn kind(&self) -> HwKind {
        self.kind
    }

    /// A frames context of `width`x`height` with `sw_format` on this device (for encoders fed uploaded frames).
    pub fn frames(&self, sw_format: ffmpeg::format::Pixel, width: u32, height: u32) -> Result<HwFrames, String> {
        // SAFETY: av_hwframe_ctx_alloc takes its own reference to the device
        // and returns a new frames buffer (or null).
        let frames = unsafe { sys::av_hwframe_ctx_alloc(self.buffer.0) };
        let frames = BufferRef::adopt(frames).ok_or("av_hwframe_ctx_alloc failed")?;
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

/// A codec context that has never been opened. `new` is the only way to
/// make one (a fresh `avcodec_alloc_context3`) and `into_context`, by value,
/// the only way to get the context out; it never lends `&mut Context`,
/// which `mem::swap` could trade for an opened one. So while it exists the
/// context is not open, and the settings that FFmpeg allows only before
/// `avcodec_open2` (FFmpeg reads them once at open and keeps pointers into
/// them) are its methods rather than functions on any context.
pub struct NotOpenedCodec(ffmpeg::codec::Context);

impl NotOpenedCodec {
    /// A fresh context for `codec`.
    pub fn new(codec: ffmpeg::Codec) -> NotOpenedCodec {
        let context = ffmpeg::codec::Context::new_with_codec(codec);
        // SAFETY: only reads the pointer ffmpeg-next holds.
        let allocated = !unsafe { context.as_ptr() }.is_null();
        // Out of memory here is what a Rust allocation would abort on too.
        assert!(allocated, "avcodec_alloc_context3: out of memory");
        NotOpenedCodec(context)
    }

    /// The context, to read (`extradata`).
    #[cfg(test)]
    pub fn context(&self) -> &ffmpeg::codec::Context {
        &self.0
    }

    /// The configured context, to open (`decoder()`, `encoder()`).
    pub fn into_context(self) -> ffmpeg::codec::Context {
        self.0
    }

    /// Copies `data` into the context's extradata (decoders: the avcC/hvcC
    /// record, the AudioSpecificConfig, the OpusHead).
    pub fn set_extradata(&mut self, data: &[u8]) {
        let padding = sys::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        // SAFETY: the pointer is non-null (checked in `new`) and ours alone
        // (`&mut self`), and the context is not open (the type), so no codec
        // holds a pointer into the old extradata. That is null in a fresh
        // context or a buffer this method got from av_mallocz, so av_freep
        // may free it; it also nulls the field;
        // the new buffer comes from av_mallocz with the zeroed padding
        // FFmpeg's readers may run into, and avcodec_free_context frees it
        // in turn. When that allocation fails the context is left with no
        // extradata, which decoders refuse at open with an error.
        unsafe {
            let ctx = self.0.as_mut_ptr();
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

    /// Tells an audio decoder the stream's sample rate and channel count:
    /// PCM decoders (G.711) cannot open without them, the others take them
    /// as a hint until the bitstream says otherwise.
    pub fn set_audio_format(&mut self, sample_rate: u32, channels: u8) {
        // SAFETY: non-null, exclusively ours and not open, as in
        // `set_extradata`, so no codec reads the layout while we replace it. We
        // write one int and replace the channel layout in place:
        // av_channel_layout_uninit frees whatever the old layout owned (a
        // custom order's map; nothing for the native order a fresh context
        // has) and av_channel_layout_default fills in a native-order layout
        // that owns no memory.
        unsafe {
            let ctx = self.0.as_mut_ptr();
            (*ctx).sample_rate = sample_rate.min(i32::MAX as u32) as c_int;
            sys::av_channel_layout_uninit(&mut (*ctx).ch_layout);
            sys::av_channel_layout_default(&mut (*ctx).ch_layout, c_int::from(channels.max(1)));
        }
    }

    /// Makes a decoder decode on `device`, outputting frames that stay on it.
    pub fn set_hw_device(&mut self, device: &HwDevice) {
        let wanted: sys::AVPixelFormat = device.kind.pixel_format().into();
        // SAFETY: non-null, exclusively ours and not open, as in
        // `set_extradata`: a decoder takes its own reference to the device
        // at open, so none holds the one we release. The context owns the
        // new reference (avcodec_free_context unrefs hw_device_ctx).
        // `opaque` is the caller's field (ffmpeg-next never uses it) and
        // carries only an integer, read back by `get_hw_format`, which is
        // installed here together with it.
        unsafe {
            let ctx = self.0.as_mut_ptr();
            sys::av_buffer_unref(&mut (*ctx).hw_device_ctx);
            (*ctx).hw_device_ctx = device.buffer.new_ref();
            (*ctx).opaque = wanted as i32 as isize as *mut c_void;
            (*ctx).get_format = Some(get_hw_format);
        }
    }

    /// Gives an encoder the frames context its input frames come from.
    pub fn set_hw_frames(&mut self, frames: &HwFrames) {
        // SAFETY: non-null, exclusively ours and not open, as in
        // `set_extradata`: an encoder reads hw_frames_ctx at open, so none
        // holds the reference we release. The context owns the new one
        // (avcodec_free_context unrefs hw_frames_ctx).
        unsafe {
            let ctx = self.0.as_mut_ptr();
            sys::av_buffer_unref(&mut (*ctx).hw_frames_ctx);
            (*ctx).hw_frames_ctx = frames.0.new_ref();
        }
    }
}

/// The codec context's extradata (encoders with the global-header flag: the parameter sets).
pub fn extradata(ctx: &ffmpeg::codec::Context) -> Vec<u8> {
    // SAFETY: the context (which ffmpeg-next may hold as null after a failed
    // allocation, checked first) owns extradata and extradata_size, and the
    // shared borrow keeps it alive and unmodified while we copy them: every
    // write to a context goes through `&mut`.
    unsafe {
        let ctx = ctx.as_ptr();
        if ctx.is_null() || (*ctx).extradata.is_null() || (*ctx).extradata_size <= 0 {
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
    // SAFETY: FFmpeg calls this with the context it is decoding with, the
    // one `set_hw_device` installed this callback on together with the
    // wanted format's integer value in `opaque`, and a list of formats that
    // ends with AV_PIX_FMT_NONE, which we stop at. av_pix_fmt_desc_get
    // returns null or a static descriptor.
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

/// The frames context a hardware frame belongs to.
pub fn frame_hw_frames(frame: &ffmpeg::frame::Frame) -> Option<HwFrames> {
    // SAFETY: the frame is borrowed for the call, so its AVFrame (null only
    // if ffmpeg-next's allocation failed, checked first) stays alive; we only
    // take a new reference to its hw_frames_ctx, which leaves the frame as it
    // was, and own that reference in the returned HwFrames.
    unsafe {
        let frame = frame.as_ptr();
        if frame.is_null() || (*frame).hw_frames_ctx.is_null() {
            return None;
        }
        BufferRef::adopt(sys::av_buffer_ref((*frame).hw_frames_ctx)).map(HwFrames)
    }
}

/// Tells a buffer source (the `buffer` filter) that its frames live in
/// `frames`; before the graph is configured, or it has no effect. Refuses
/// any other filter.
pub fn set_buffersrc_hw_frames(source: &mut ffmpeg::filter::Context, frames: &HwFrames) -> Result<(), String> {
    // SAFETY: the filter context belongs to a graph that `source` borrows,
    // so it is alive; its `filter` is the static AVFilter it was created
    // from, whose name is a static C string. av_buffersrc_parameters_set
    // treats the context's private data as a buffer source's, so we call it
    // only when the filter is "buffer". The parameters struct is FFmpeg's,
    // freed with av_free below; av_buffersrc_parameters_set takes its own
    // reference to hw_frames_ctx (releasing any it held), so the pointer we
    // lend it stays owned by `frames`. At any stage of the graph this only
    // swaps the buffer source's reference: the link keeps its own.
    unsafe {
        let ctx = source.as_mut_ptr();
        let filter = (*ctx).filter;
        if filter.is_null() || (*filter).name.is_null() || CStr::from_ptr((*filter).name) != c"buffer" {
            return Err("not a video buffer source".into());
        }
        let params = sys::av_buffersrc_parameters_alloc();
        if params.is_null() {
            return Err("av_buffersrc_parameters_alloc failed".into());
        }
        (*params).format = -1; // keep the format given in the filter arguments
        (*params).hw_frames_ctx = frames.0.0;
        let code = sys::av_buffersrc_parameters_set(ctx, params);
        sys::av_free(params as *mut c_void);
        if code < 0 { Err(ffmpeg::Error::from(code).to_string()) } else { Ok(()) }
    }
}

/// Gives every filter of a graph that has no device this one (hwupload and
/// the vaapi/qsv filters need it); before the graph is configured, or it
/// has no effect.
pub fn set_graph_device(graph: &mut ffmpeg::filter::Graph, device: &HwDevice) {
    // SAFETY: the graph is ours alone (`&mut`), and `filters` holds
    // `nb_filters` valid filter contexts that it owns. We write only a null
    // hw_device_ctx, so no reference is released and nothing that a filter
    // already read is freed; the filter context owns the new reference
    // (avfilter_free unrefs it). Filters read the field when the graph is
    // configured; written later it is only never read, which is not unsound.
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

/// Sends `command` with `arg` to the filter named `target` of a configured
/// graph (e.g. a new level for a `volume` filter); FFmpeg's error when the
/// filter does not exist or refuses the command.
pub fn send_graph_command(
    graph: &mut ffmpeg::filter::Graph,
    target: &str,
    command: &str,
    arg: &str,
) -> Result<(), String> {
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} has a NUL byte"));
    let (target, command, arg) = (cstr(target)?, cstr(command)?, cstr(arg)?);
    // SAFETY: the graph is ours alone (`&mut`) and alive for the call; the
    // three strings are NUL-terminated and outlive it. A null response
    // buffer with length 0 is what FFmpeg documents for "no response", and
    // flags 0 sends to the first matching filter only. The filter applies
    // the command synchronously on this thread, the one that also pushes
    // frames through the graph, so no frame is being filtered meanwhile.
    let code = unsafe {
        sys::avfilter_graph_send_command(
            graph.as_mut_ptr(),
            target.as_ptr(),
            command.as_ptr(),
            arg.as_ptr(),
            ptr::null_mut(),
            0,
            0,
        )
    };
    if code < 0 { Err(ffmpeg::Error::from(code).to_string()) } else { Ok(()) }
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
        let mut ctx = NotOpenedCodec::new(codec);
        ctx.set_audio_format(8_000, 1);
        let decoder = ctx.into_context().decoder().audio().expect("G.711 opens once it knows rate and channels");
        assert_eq!((decoder.rate(), decoder.channels()), (8_000, 1));
        let mut bare = NotOpenedCodec::new(codec);
        bare.set_audio_format(8_000, 2);
        assert_eq!(bare.into_context().decoder().audio().unwrap().channels(), 2);
    }

    #[test]
    fn extradata_round_trips() {
        init();
        let mut ctx = NotOpenedCodec::new(ffmpeg::decoder::find(ffmpeg::codec::Id::H264).unwrap());
        assert!(extradata(ctx.context()).is_empty(), "a fresh context has none");
        ctx.set_extradata(&[1, 2, 3]);
        assert_eq!(extradata(ctx.context()), [1, 2, 3]);
        ctx.set_extradata(&[4, 5]);
        assert_eq!(extradata(ctx.context()), [4, 5], "replaced, the old buffer freed");
        ctx.set_extradata(&[]);
        assert!(extradata(ctx.context()).is_empty());
    }

    #[test]
    fn a_software_frame_has_no_frames_context() {
        let frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, 16, 16);
        assert!(frame_hw_frames(&frame).is_none());
    }

    #[test]
    fn a_capture_that_ends_first_leaves_the_level_raised_for_one_still_running() {
        init();
        // SAFETY: reads one int (see `LevelRaise`).
        let level = || unsafe { sys::av_log_get_level() };
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let (leave_tx, leave_rx) = std::sync::mpsc::channel::<()>();
        let first = std::thread::spawn(move || {
            capture_log(|| {
                inside_tx.send(()).unwrap();
                leave_rx.recv().unwrap();
            })
        });
        inside_rx.recv().unwrap();
        // The second capture starts while the first runs, and outlives it.
        capture_log(|| {
            leave_tx.send(()).unwrap();
            first.join().unwrap();
            assert_eq!(level(), AV_LOG_VERBOSE, "the first capture's end kept the level for this one");
        });
        // Other tests capture in parallel: judge the level only when none runs.
        let captures = CAPTURES.lock().unwrap();
        if captures.0 == 0 {
            assert_eq!(level(), captures.1, "put back once the last capture ended");
            assert!(captures.1 < AV_LOG_VERBOSE);
        }
    }
}
