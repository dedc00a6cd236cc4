//! A libavformat output opened on a URL (`rtmp://`, `rtmps://`, `srt://`,
//! a file) whose blocking I/O can be interrupted: ffmpeg-next opens outputs
//! without an interrupt callback, so a destination that stops answering
//! would hold the writing thread in connect or write for as long as the
//! kernel lets it. Here the callback is installed before the connection is
//! made, and the output's streams get their codec parameters from the
//! track's configuration record.

use std::ffi::{CString, c_int};
use std::ptr;

use ffmpeg::ffi as sys;
use ffmpeg::util::interrupt::{self, InterruptGuard};
use ffmpeg_next as ffmpeg;

/// An output context and the interrupt callback it polls. Fields drop in
/// order: the context (which closes the connection, polling the callback)
/// before the callback's closure.
pub struct InterruptibleOutput {
    output: ffmpeg::format::context::Output,
    _interrupt: InterruptGuard,
}

impl InterruptibleOutput {
    /// Opens `url` for writing `format` (`flv`, `mpegts`, ...), with
    /// `options` for the protocol (AVOptions of the URL context). Every
    /// blocking operation on it, from the connect on, gives up with an
    /// `Exit` error as soon as `interrupted` returns true.
    pub fn open(
        url: &str,
        format: &str,
        options: &[(&str, &str)],
        interrupted: impl FnMut() -> bool + Send + 'static,
    ) -> Result<InterruptibleOutput, ffmpeg::Error> {
        super::init();
        let url = CString::new(url).map_err(|_| ffmpeg::Error::InvalidData)?;
        let format = CString::new(format).map_err(|_| ffmpeg::Error::InvalidData)?;
        let mut dictionary = ffmpeg::Dictionary::new();
        for (key, value) in options {
            dictionary.set(key, value);
        }
        let callback = interrupt::new(Box::new(interrupted));
        let mut context: *mut sys::AVFormatContext = ptr::null_mut();
        // SAFETY: both strings are NUL-terminated and outlive the call; on
        // success `context` is a fresh context that we own and hand to
        // `Output::wrap` at once, so every later path frees it exactly once
        // (its destructor closes `pb`, null or not, and frees the context).
        let allocated = unsafe {
            sys::avformat_alloc_output_context2(&mut context, ptr::null_mut(), format.as_ptr(), url.as_ptr())
        };
        if allocated < 0 || context.is_null() {
            return Err(ffmpeg::Error::from(allocated.min(-1)));
        }
        // SAFETY: see above; the context is ours alone from here.
        let mut output = unsafe { ffmpeg::format::context::Output::wrap(context) };
        // SAFETY: the dictionary is ours; `Dictionary::own` below takes back what avio_open2 leaves.
        let mut raw_options = unsafe { dictionary.disown() };
        // SAFETY: the context is valid and exclusively ours. The callback's
        // opaque pointer is the boxed closure that `callback.guard` frees;
        // the guard is stored next to the context and dropped after it, so
        // every call FFmpeg makes through it (here, in writes, at close)
        // finds the closure alive. avio_open2 takes the callback by pointer
        // and copies it; it consumes the options it recognises from
        // `raw_options` and leaves the rest, which `Dictionary::own` frees.
        let opened = unsafe {
            let ctx = output.as_mut_ptr();
            (*ctx).interrupt_callback = callback.interrupt;
            let opened = sys::avio_open2(
                &mut (*ctx).pb,
                url.as_ptr(),
                sys::AVIO_FLAG_WRITE as c_int,
                &(*ctx).interrupt_callback,
                &mut raw_options,
            );
            drop(ffmpeg::Dictionary::own(raw_options));
            opened
        };
        let output = InterruptibleOutput { output, _interrupt: callback.guard };
        if opened < 0 {
            return Err(ffmpeg::Error::from(opened));
        }
        Ok(output)
    }

    pub fn output(&mut self) -> &mut ffmpeg::format::context::Output {
        &mut self.output
    }

    /// Adds a stream described by its codec and configuration record
    /// (avcC/hvcC for video, AudioSpecificConfig for AAC); returns its index.
    pub fn add_stream(&mut self, stream: &StreamParameters) -> Result<usize, ffmpeg::Error> {
        let added = self.output.add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))?;
        let index = added.index();
        let padding = sys::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        // SAFETY: the stream was just added to a context we own exclusively,
        // and the header is not written yet, so no muxer reads its
        // parameters while we fill them. `codecpar` of a new stream is a
        // fresh, zeroed parameter set: its extradata is null, and the buffer
        // we put there comes from av_mallocz with the padding FFmpeg's
        // readers may run into; avcodec_parameters_free frees it with the
        // context. When that allocation fails the stream has no extradata and
        // the header write refuses it with an error.
        unsafe {
            let ctx = self.output.as_mut_ptr();
            let av_stream = *(*ctx).streams.add(index);
            let par = (*av_stream).codecpar;
            (*par).codec_id = stream.codec.into();
            match stream.kind {
                StreamKind::Video { width, height } => {
                    (*par).codec_type = sys::AVMediaType::AVMEDIA_TYPE_VIDEO;
                    (*par).width = width.min(i32::MAX as u32) as c_int;
                    (*par).height = height.min(i32::MAX as u32) as c_int;
                }
                StreamKind::Audio { sample_rate, channels } => {
                    (*par).codec_type = sys::AVMediaType::AVMEDIA_TYPE_AUDIO;
                    (*par).sample_rate = sample_rate.min(i32::MAX as u32) as c_int;
                    sys::av_channel_layout_uninit(&mut (*par).ch_layout);
                    sys::av_channel_layout_default(&mut (*par).ch_layout, c_int::from(channels.max(1)));
                }
            }
            (*av_stream).time_base = sys::AVRational { num: 1, den: stream.timebase.min(i32::MAX as u32) as c_int };
            let buffer = sys::av_mallocz(stream.extradata.len() + padding) as *mut u8;
            if !buffer.is_null() {
                ptr::copy_nonoverlapping(stream.extradata.as_ptr(), buffer, stream.extradata.len());
                (*par).extradata = buffer;
                (*par).extradata_size = stream.extradata.len() as c_int;
            }
        }
        Ok(index)
    }
}

/// What a stream of an output carries.
#[derive(Debug, Clone)]
pub struct StreamParameters {
    pub codec: ffmpeg::codec::Id,
    pub kind: StreamKind,
    /// The codec's configuration record.
    pub extradata: Vec<u8>,
    /// Ticks per second of the timestamps written to it (a hint: the muxer may choose its own).
    pub timebase: u32,
}

#[derive(Debug, Clone, Copy)]
pub enum StreamKind {
    Video { width: u32, height: u32 },
    Audio { sample_rate: u32, channels: u8 },
}
