//! The split + scale filter graph of one source format: one `split` and a
//! scaler per running rung (`scale` on the CPU, `scale_cuda`, `scale_vaapi`
//! or `vpp_qsv` so frames stay on the device), and `rung_size`, the picture
//! size of a rung for a source.

use ffmpeg_next as ffmpeg;

use crate::cadence::TICKS_PER_SECOND;
use crate::device::Backend;
use crate::error::AccelError;
use crate::ffi::{self, HwDevice};

/// A rung's picture size for a source: the rung's height (even) and the
/// source's aspect ratio (even width).
pub fn rung_size(source_width: u32, source_height: u32, height: u32) -> (u32, u32) {
    let height = (height.min(source_height) / 2 * 2).max(2);
    let width = ((source_width as f64 * height as f64 / source_height as f64 / 2.0).round() as u32 * 2).max(2);
    (width, height)
}

/// The split + scale graph for one source format.
pub(super) struct Scaler {
    graph: ffmpeg::filter::Graph,
    source: (u32, u32, ffmpeg::format::Pixel),
    /// (rung index, sink name) for each running rung.
    sinks: Vec<(usize, String)>,
}

impl Scaler {
    /// A graph for frames like `frame`, scaling to each of `rungs` ((rung
    /// index, rung height) of the running rungs) on `backend`.
    pub(super) fn build(
        frame: &ffmpeg::frame::Video,
        backend: Backend,
        hw: Option<&HwDevice>,
        rungs: &[(usize, u32)],
    ) -> Result<Scaler, AccelError> {
        let fail = |e: ffmpeg::Error| AccelError::Filter(e.to_string());
        let (width, height, format) = (frame.width(), frame.height(), frame.format());
        let format_name = format
            .descriptor()
            .map(|d| d.name())
            .ok_or_else(|| AccelError::Filter(format!("{format:?} has no name")))?;
        let sar = frame.aspect_ratio();
        let (sar_n, sar_d) =
            if sar.numerator() > 0 && sar.denominator() > 0 { (sar.numerator(), sar.denominator()) } else { (1, 1) };
        let mut graph = ffmpeg::filter::Graph::new();
        let args = format!(
            "video_size={width}x{height}:pix_fmt={format_name}:time_base=1/{TICKS_PER_SECOND}:pixel_aspect={sar_n}/{sar_d}"
        );
        graph.add(&ffmpeg::filter::find("buffer").expect("libavfilter has buffer"), "in", &args).map_err(fail)?;
        let on_device = ffi::frame_hw_frames(frame);
        if let Some(frames) = &on_device {
            let mut source = graph.get("in").expect("just added");
            ffi::set_buffersrc_hw_frames(&mut source, frames).map_err(AccelError::Filter)?;
        }
        let rungs: Vec<(usize, u32, u32)> = rungs
            .iter()
            .map(|&(i, rung_height)| {
                let (w, h) = rung_size(width, height, rung_height);
                (i, w, h)
            })
            .collect();
        let mut sinks = Vec::new();
        for (i, _, _) in &rungs {
            let name = format!("out{i}");
            graph
                .add(&ffmpeg::filter::find("buffersink").expect("libavfilter has buffersink"), &name, "")
                .map_err(fail)?;
            sinks.push((*i, name));
        }
        let upload = match (backend, &on_device) {
            (Backend::Software, _) | (_, Some(_)) => "",
            _ => "format=nv12,hwupload,",
        };
        let labels: String = rungs.iter().map(|(i, _, _)| format!("[s{i}]")).collect();
        let mut spec = format!("[in]{upload}split={}{labels}", rungs.len());
        for (i, w, h) in &rungs {
            let scale = match backend {
                Backend::Software => format!("scale=w={w}:h={h}:flags=bicubic,format=yuv420p"),
                Backend::Nvenc => format!("scale_cuda=w={w}:h={h}"),
                Backend::Vaapi => format!("scale_vaapi=w={w}:h={h}:format=nv12"),
                Backend::Qsv => format!("vpp_qsv=w={w}:h={h}"),
            };
            spec.push_str(&format!(";[s{i}]{scale}[out{i}]"));
        }
        let mut parser = graph.output("in", 0).map_err(fail)?;
        for (_, name) in &sinks {
            parser = parser.input(name, 0).map_err(fail)?;
        }
        parser.parse(&spec).map_err(|e| AccelError::Filter(format!("{spec}: {e}")))?;
        if let Some(hw) = hw {
            ffi::set_graph_device(&mut graph, hw);
        }
        let (validated, log) = ffi::capture_log(|| graph.validate());
        validated.map_err(|e| AccelError::Filter(format!("{spec}: {e}: {}", log.join(" / "))))?;
        Ok(Scaler { graph, source: (width, height, format), sinks })
    }

    /// Whether this graph was built for frames of `frame`'s size and format.
    pub(super) fn fits(&self, frame: &ffmpeg::frame::Video) -> bool {
        self.source == (frame.width(), frame.height(), frame.format())
    }

    /// Splits and scales one frame: the scaled frames that came out, by rung index.
    pub(super) fn scale(
        &mut self,
        frame: &ffmpeg::frame::Video,
    ) -> Result<Vec<(usize, ffmpeg::frame::Video)>, AccelError> {
        let mut source = self.graph.get("in").expect("the graph has its source");
        source.source().add(frame).map_err(|e| AccelError::Filter(e.to_string()))?;
        let mut outputs = Vec::with_capacity(self.sinks.len());
        for (rung, sink_name) in &self.sinks {
            let mut sink = self.graph.get(sink_name).expect("the graph has its sinks");
            loop {
                let mut scaled = ffmpeg::frame::Video::empty();
                match sink.sink().frame(&mut scaled) {
                    Ok(()) => outputs.push((*rung, scaled)),
                    Err(ffmpeg::Error::Other { errno: libc::EAGAIN }) | Err(ffmpeg::Error::Eof) => break,
                    Err(e) => return Err(AccelError::Filter(e.to_string())),
                }
            }
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rung_sizes_keep_the_aspect_ratio_even_and_never_upscale() {
        for (source, height, want) in [
            ((1920, 1080), 720, (1280, 720)),
            ((640, 360), 240, (426, 240)),
            ((640, 360), 144, (256, 144)),
            ((640, 360), 720, (640, 360)),
            ((1080, 1920), 360, (202, 360)),
            ((3, 3), 1, (2, 2)),
        ] {
            assert_eq!(rung_size(source.0, source.1, height), want, "{source:?} to {height}p");
        }
    }
}
