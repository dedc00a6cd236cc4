//! The filter graph of one source format: the channel's picture processing
//! (`picture`), one `split` and a scaler per running rung (`scale` on the
//! CPU, `scale_cuda`, `scale_vaapi` or `vpp_qsv` so frames stay on the device).

use ffmpeg_next as ffmpeg;

use media::{PictureProcessing, ScalingMode};

use super::picture::{self, SourceFacts};
use crate::cadence::TICKS_PER_SECOND;
use crate::device::Backend;
use crate::error::AccelError;
use crate::ffi::{self, HwDevice};

/// The split + scale graph for one source format.
pub(super) struct Scaler {
    graph: ffmpeg::filter::Graph,
    source: (ffmpeg::format::Pixel, SourceFacts),
    /// (rung index, sink name) for each running rung.
    sinks: Vec<(usize, String)>,
    /// The graph's text, and the steps on the CPU of a hardware backend.
    spec: String,
    cpu_steps: Vec<String>,
}

impl Scaler {
    /// A graph for frames like `frame` (described by `facts`): the channel's
    /// `picture` processing once, then a split and each of `rungs` ((rung
    /// index, rung height, scaling mode) of the running rungs) scaled on `backend`.
    pub(super) fn build(
        frame: &ffmpeg::frame::Video,
        facts: SourceFacts,
        picture: &PictureProcessing,
        backend: Backend,
        hw: Option<&HwDevice>,
        rungs: &[(usize, u32, ScalingMode)],
    ) -> Result<Scaler, AccelError> {
        let fail = |e: ffmpeg::Error| AccelError::Filter(e.to_string());
        let (width, height, format) = (frame.width(), frame.height(), frame.format());
        let format_name = format
            .descriptor()
            .map(|d| d.name())
            .ok_or_else(|| AccelError::Filter(format!("{format:?} has no name")))?;
        let (sar_n, sar_d) = facts.sar;
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
        let mut sinks = Vec::new();
        for (i, _, _) in rungs {
            let name = format!("out{i}");
            graph
                .add(&ffmpeg::filter::find("buffersink").expect("libavfilter has buffersink"), &name, "")
                .map_err(fail)?;
            sinks.push((*i, name));
        }
        let shapes: Vec<(u32, ScalingMode)> = rungs.iter().map(|(_, h, scaling)| (*h, *scaling)).collect();
        let text = picture::chain_text(picture, backend, &facts, on_device.is_some(), &shapes);
        if !text.cpu_steps.is_empty() {
            tracing::info!(%backend, cpu_steps = ?text.cpu_steps, "picture processing: these steps run on the CPU (no device filter)");
        }
        let labels: String = rungs.iter().map(|(i, _, _)| format!("[s{i}]")).collect();
        let source = if text.source.is_empty() { String::new() } else { format!("{},", text.source) };
        let mut spec = format!("[in]{source}split={}{labels}", rungs.len());
        for ((i, _, _), rung) in rungs.iter().zip(&text.rungs) {
            spec.push_str(&format!(";[s{i}]{rung}[out{i}]"));
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
        tracing::debug!(%spec, "filter graph built");
        Ok(Scaler { graph, source: (format, facts), sinks, spec, cpu_steps: text.cpu_steps })
    }

    /// The graph in FFmpeg's syntax.
    pub(super) fn spec(&self) -> &str {
        &self.spec
    }

    /// The processing steps that run on the CPU on a hardware backend.
    pub(super) fn cpu_steps(&self) -> &[String] {
        &self.cpu_steps
    }

    /// Whether this graph was built for frames of `frame`'s format and `facts`.
    pub(super) fn fits(&self, frame: &ffmpeg::frame::Video, facts: &SourceFacts) -> bool {
        self.source == (frame.format(), *facts)
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
