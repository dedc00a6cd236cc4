//! The channel's picture processing as filter-graph text: the chain applied
//! once to the decoded source before the split (deinterlace, deblock,
//! denoise, crop, rotate, flip, mirror, sharpen) and each rung's scaling to
//! the output aspect (fit with bars, fill by cropping, stretch). Each step
//! names the filter of the backend's device where FFmpeg 5.1 has one
//! (`yadif_cuda`, `deinterlace_vaapi`, `transpose_vaapi`, `denoise_vaapi`,
//! `vpp_qsv`, ...) and the CPU filter otherwise, with the `hwdownload` /
//! `hwupload` around CPU steps that frames on a device need; `cpu_steps`
//! says which steps cost CPU time on a hardware backend.

use ffmpeg_next as ffmpeg;
use media::{Deinterlace, Denoise, PictureProcessing, Rotation, ScalingMode};

use super::rung_size::rung_size;
use crate::device::Backend;

/// What the chain depends on in the decoded source; a change rebuilds the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SourceFacts {
    pub width: u32,
    pub height: u32,
    /// Sample (pixel) aspect ratio; 1:1 when the source does not say.
    pub sar: (u32, u32),
    /// The frames are flagged interlaced (for `Deinterlace::Auto`).
    pub interlaced: bool,
    /// Clockwise quarter turns the source's display matrix asks for (0 to 3).
    pub display_turns: u8,
}

impl SourceFacts {
    /// The facts of `frame`; `display_turns` is the last display-matrix rotation seen
    /// (a matrix need not come with every frame).
    pub(super) fn of(frame: &ffmpeg::frame::Video, display_turns: u8) -> SourceFacts {
        let sar = frame.aspect_ratio();
        let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
            (sar.numerator() as u32, sar.denominator() as u32)
        } else {
            (1, 1)
        };
        SourceFacts {
            width: frame.width(),
            height: frame.height(),
            sar,
            interlaced: frame.is_interlaced(),
            display_turns,
        }
    }
}

/// Clockwise quarter turns a frame's display matrix asks for, if it carries one.
pub(super) fn display_matrix_turns(frame: &ffmpeg::frame::Video) -> Option<u8> {
    let side = frame.side_data(ffmpeg::frame::side_data::Type::DisplayMatrix)?;
    let bytes = side.data();
    if bytes.len() < 36 {
        return None;
    }
    let m: Vec<f64> =
        bytes.chunks_exact(4).take(9).map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
    Some(turns_of_matrix(&m))
}

/// libavutil's `av_display_rotation_get` (the counter-clockwise angle the
/// matrix rotates by), as the clockwise quarter turns that undo it, which is
/// what the `ffmpeg` program's autorotate applies.
fn turns_of_matrix(m: &[f64]) -> u8 {
    let scale0 = m[0].hypot(m[3]);
    let scale1 = m[1].hypot(m[4]);
    if scale0 == 0.0 || scale1 == 0.0 {
        return 0;
    }
    let counter_clockwise = -(m[1] / scale1).atan2(m[0] / scale0).to_degrees();
    let clockwise = (-counter_clockwise).rem_euclid(360.0);
    ((clockwise / 90.0).round() as u32 % 4) as u8
}

/// A step of a chain: on the backend's device, or on the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Device(String),
    Cpu(String),
}

/// Clockwise quarter turns the picture gets.
pub(super) fn quarter_turns(picture: &PictureProcessing, facts: &SourceFacts) -> u8 {
    match picture.rotate {
        Rotation::None => 0,
        Rotation::Clockwise90 => 1,
        Rotation::Half => 2,
        Rotation::Clockwise270 => 3,
        Rotation::FollowSource => facts.display_turns % 4,
    }
}

/// The picture's size and sample aspect after the crop and the rotation.
pub(super) fn picture_geometry(picture: &PictureProcessing, facts: &SourceFacts) -> ((u32, u32), (u32, u32)) {
    let c = picture.crop;
    let width = even_at_least_2(facts.width.saturating_sub(c.left + c.right));
    let height = even_at_least_2(facts.height.saturating_sub(c.top + c.bottom));
    if quarter_turns(picture, facts) % 2 == 1 {
        ((height, width), (facts.sar.1, facts.sar.0))
    } else {
        ((width, height), facts.sar)
    }
}

fn even_at_least_2(v: u32) -> u32 {
    (v / 2 * 2).max(2)
}

fn even_round(v: f64) -> u32 {
    ((v / 2.0).round() as u32 * 2).max(2)
}

/// The steps before the split, in order.
fn source_steps(picture: &PictureProcessing, backend: Backend, facts: &SourceFacts) -> Vec<Step> {
    use Backend::*;
    let mut steps = Vec::new();
    let deinterlace = match picture.deinterlace {
        Deinterlace::Off => false,
        Deinterlace::Auto => facts.interlaced,
        Deinterlace::On => true,
    };
    if deinterlace {
        steps.push(match backend {
            Software => Step::Cpu("bwdif=mode=send_frame:parity=auto:deint=all".into()),
            // FFmpeg 5.1 has yadif_cuda; bwdif_cuda came later.
            Nvenc => Step::Device("yadif_cuda=mode=send_frame:parity=auto:deint=all".into()),
            Vaapi => Step::Device("deinterlace_vaapi=mode=motion_adaptive:rate=frame".into()),
            Qsv => Step::Device("vpp_qsv=deinterlace=advanced".into()),
        });
    }
    if picture.deblock {
        steps.push(Step::Cpu("deblock=filter=strong:block=8".into()));
    }
    let strength = match picture.denoise {
        Denoise::Off => None,
        Denoise::Light => Some(("2:1.5:3:2.25", 16, 25)),
        Denoise::Medium => Some(("4:3:6:4.5", 32, 50)),
        Denoise::Strong => Some(("8:6:12:9", 64, 100)),
    };
    if let Some((hqdn3d, vaapi, qsv)) = strength {
        steps.push(match backend {
            Vaapi => Step::Device(format!("denoise_vaapi=denoise={vaapi}")),
            Qsv => Step::Device(format!("vpp_qsv=denoise={qsv}")),
            Software | Nvenc => Step::Cpu(format!("hqdn3d={hqdn3d}")),
        });
    }
    let c = picture.crop;
    if !c.is_none() {
        let ((w, h), _) = picture_geometry(&PictureProcessing { rotate: Rotation::None, ..picture.clone() }, facts);
        steps.push(Step::Cpu(format!("crop=w={w}:h={h}:x={}:y={}", c.left, c.top)));
    }
    // Rotation, then flip and mirror, each as a `transpose` direction where the device has one.
    let mut orientation: Vec<(&str, &str)> = match quarter_turns(picture, facts) {
        1 => vec![("transpose=clock", "clock")],
        2 => vec![("hflip,vflip", "reversal")],
        3 => vec![("transpose=cclock", "cclock")],
        _ => vec![],
    };
    if picture.flip {
        orientation.push(("vflip", "vflip"));
    }
    if picture.mirror {
        orientation.push(("hflip", "hflip"));
    }
    for (cpu, direction) in orientation {
        steps.push(match backend {
            Vaapi => Step::Device(format!("transpose_vaapi=dir={direction}")),
            Qsv => Step::Device(format!("vpp_qsv=transpose={direction}")),
            // Debian's FFmpeg has no transpose_npp (no libnpp).
            Software | Nvenc => Step::Cpu(cpu.into()),
        });
    }
    if picture.sharpen_percent > 0 {
        let amount = picture.sharpen_percent.min(500) as f64 / 100.0;
        steps.push(match backend {
            Vaapi => Step::Device(format!("sharpness_vaapi=sharpness={}", (amount * 16.0).round().min(64.0))),
            Qsv => Step::Device(format!("vpp_qsv=detail={}", (amount * 20.0).round().min(100.0))),
            Software | Nvenc => Step::Cpu(format!("unsharp=5:5:{amount:.2}:5:5:0")),
        });
    }
    steps
}

/// A rung's steps after the split: scaling to its size in the output aspect.
fn rung_steps(
    picture: &PictureProcessing,
    backend: Backend,
    facts: &SourceFacts,
    (rung_height, scaling): (u32, ScalingMode),
) -> Vec<Step> {
    let ((pw, ph), sar) = picture_geometry(picture, facts);
    let scale = |w: u32, h: u32| match backend {
        Backend::Software => Step::Cpu(format!("scale=w={w}:h={h}:flags=bicubic")),
        Backend::Nvenc => Step::Device(format!("scale_cuda=w={w}:h={h}")),
        Backend::Vaapi => Step::Device(format!("scale_vaapi=w={w}:h={h}:format=nv12")),
        Backend::Qsv => Step::Device(format!("vpp_qsv=w={w}:h={h}")),
    };
    let finish = |mut steps: Vec<Step>| {
        if backend == Backend::Software {
            steps.push(Step::Cpu("format=yuv420p".into()));
        }
        steps
    };
    let Some((an, ad)) = picture.aspect.as_deref().and_then(media::processing::parse_aspect) else {
        let (w, h) = rung_size(pw, ph, rung_height);
        return finish(vec![scale(w, h)]);
    };
    let target = an as f64 / ad as f64;
    let h = even_at_least_2(rung_height.min(ph));
    let w = even_round(h as f64 * target);
    // The picture's display aspect.
    let shown = pw as f64 * sar.0 as f64 / (ph as f64 * sar.1 as f64);
    let mut steps = match scaling {
        ScalingMode::Stretch => vec![scale(w, h)],
        ScalingMode::Fill => {
            // Crop the picture to the target aspect (in its own pixels), then scale.
            let (kw, kh) = if shown > target {
                (even_round(ph as f64 * target * sar.1 as f64 / sar.0 as f64).min(pw), ph)
            } else {
                (pw, even_round(pw as f64 * sar.0 as f64 / (sar.1 as f64 * target)).min(ph))
            };
            vec![Step::Cpu(format!("crop=w={kw}:h={kh}")), scale(w, h)]
        }
        ScalingMode::Fit => {
            let (cw, ch) = if shown > target {
                (w, even_round(w as f64 / shown).min(h))
            } else {
                (even_round(h as f64 * shown).min(w), h)
            };
            let (x, y) = ((w - cw) / 4 * 2, (h - ch) / 4 * 2);
            let color = picture.bar_color.to_ffmpeg().unwrap_or_else(|| "0x000000".into());
            vec![scale(cw, ch), Step::Cpu(format!("pad=w={w}:h={h}:x={x}:y={y}:color={color}"))]
        }
    };
    steps.push(Step::Cpu("setsar=1".into()));
    finish(steps)
}

/// Renders steps as graph text, moving frames between the device and the
/// CPU where a step needs it; `on_device` says where frames are on entry,
/// and the chain leaves them on the device when `end_on_device`.
fn render(steps: &[Step], mut on_device: bool, end_on_device: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    for step in steps {
        match step {
            Step::Cpu(f) => {
                if on_device {
                    parts.push("hwdownload,format=nv12".into());
                    on_device = false;
                }
                parts.push(f.clone());
            }
            Step::Device(f) => {
                if !on_device {
                    parts.push("format=nv12,hwupload".into());
                    on_device = true;
                }
                parts.push(f.clone());
            }
        }
    }
    if end_on_device && !on_device {
        parts.push("format=nv12,hwupload".into());
    }
    parts.join(",")
}

/// The graph text of a source chain and its rungs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainText {
    /// Before the split (may be empty); frames leave it where the rungs want them.
    pub source: String,
    /// Per rung height asked, after the split.
    pub rungs: Vec<String>,
    /// The steps that run on the CPU although the backend has a device (the cost to report).
    pub cpu_steps: Vec<String>,
}

/// The whole graph's text for `rungs` ((height, scaling mode) each) on `backend`, frames entering on the device or not.
pub(super) fn chain_text(
    picture: &PictureProcessing,
    backend: Backend,
    facts: &SourceFacts,
    frames_on_device: bool,
    rungs: &[(u32, ScalingMode)],
) -> ChainText {
    let hardware = backend != Backend::Software;
    let source_steps = source_steps(picture, backend, facts);
    let rung_steps: Vec<Vec<Step>> = rungs.iter().map(|&rung| rung_steps(picture, backend, facts, rung)).collect();
    // The rungs start on the device on a hardware backend when their first step is there.
    let rungs_start_on_device = hardware && rung_steps.iter().all(|s| matches!(s.first(), Some(Step::Device(_))));
    let source = render(&source_steps, frames_on_device, rungs_start_on_device);
    let rungs = rung_steps.iter().map(|s| render(s, rungs_start_on_device, hardware)).collect();
    let cpu_steps = if hardware {
        source_steps
            .iter()
            .chain(rung_steps.iter().flatten())
            .filter_map(|s| match s {
                Step::Cpu(f) if f != "setsar=1" => Some(f.clone()),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    ChainText { source, rungs, cpu_steps }
}

#[cfg(test)]
mod tests {
    use media::Crop;

    use super::*;

    fn facts(width: u32, height: u32) -> SourceFacts {
        SourceFacts { width, height, sar: (1, 1), interlaced: false, display_turns: 0 }
    }

    /// Rungs of these heights in the picture's own scaling mode.
    fn fitting(picture: &PictureProcessing, heights: &[u32]) -> Vec<(u32, ScalingMode)> {
        heights.iter().map(|&h| (h, picture.scaling)).collect()
    }

    fn picture(json: &str) -> PictureProcessing {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn no_processing_is_the_plain_scale_of_before() {
        let text = chain_text(
            &PictureProcessing::default(),
            Backend::Software,
            &facts(640, 360),
            false,
            &fitting(&PictureProcessing::default(), &[360, 240]),
        );
        assert_eq!(text.source, "");
        assert_eq!(
            text.rungs,
            ["scale=w=640:h=360:flags=bicubic,format=yuv420p", "scale=w=426:h=240:flags=bicubic,format=yuv420p"]
        );
        let cuda = chain_text(
            &PictureProcessing::default(),
            Backend::Nvenc,
            &facts(640, 360),
            true,
            &fitting(&PictureProcessing::default(), &[240]),
        );
        assert_eq!((cuda.source.as_str(), cuda.rungs[0].as_str()), ("", "scale_cuda=w=426:h=240"));
        let uploaded = chain_text(
            &PictureProcessing::default(),
            Backend::Vaapi,
            &facts(640, 360),
            false,
            &fitting(&PictureProcessing::default(), &[240]),
        );
        assert_eq!(uploaded.source, "format=nv12,hwupload");
    }

    #[test]
    fn source_chains_per_backend() {
        let all = picture(
            r#"{"deinterlace":"on","deblock":true,"denoise":"medium","crop":{"left":8,"right":8},"rotate":"90","mirror":true,"sharpen_percent":50}"#,
        );
        let f = facts(640, 360);
        for (backend, on_device, want, cpu) in [
            (
                Backend::Software,
                false,
                "bwdif=mode=send_frame:parity=auto:deint=all,deblock=filter=strong:block=8,hqdn3d=4:3:6:4.5,crop=w=624:h=360:x=8:y=0,transpose=clock,hflip,unsharp=5:5:0.50:5:5:0",
                0,
            ),
            (
                Backend::Nvenc,
                true,
                "yadif_cuda=mode=send_frame:parity=auto:deint=all,hwdownload,format=nv12,deblock=filter=strong:block=8,hqdn3d=4:3:6:4.5,crop=w=624:h=360:x=8:y=0,transpose=clock,hflip,unsharp=5:5:0.50:5:5:0,format=nv12,hwupload",
                6,
            ),
            (
                Backend::Vaapi,
                true,
                "deinterlace_vaapi=mode=motion_adaptive:rate=frame,hwdownload,format=nv12,deblock=filter=strong:block=8,format=nv12,hwupload,denoise_vaapi=denoise=32,hwdownload,format=nv12,crop=w=624:h=360:x=8:y=0,format=nv12,hwupload,transpose_vaapi=dir=clock,transpose_vaapi=dir=hflip,sharpness_vaapi=sharpness=8",
                2,
            ),
        ] {
            let text = chain_text(&all, backend, &f, on_device, &fitting(&all, &[240]));
            assert_eq!(text.source, want, "{backend}");
            assert_eq!(text.cpu_steps.len(), cpu, "{backend}: {:?}", text.cpu_steps);
        }
    }

    #[test]
    fn deinterlace_auto_follows_the_field_flags() {
        let auto = picture(r#"{"deinterlace":"auto"}"#);
        assert_eq!(chain_text(&auto, Backend::Software, &facts(320, 180), false, &fitting(&auto, &[180])).source, "");
        let interlaced = SourceFacts { interlaced: true, ..facts(320, 180) };
        assert!(
            chain_text(&auto, Backend::Software, &interlaced, false, &fitting(&auto, &[180]))
                .source
                .starts_with("bwdif=")
        );
    }

    #[test]
    fn geometry_after_crop_and_rotation() {
        let f = facts(640, 360);
        let cropped = PictureProcessing { crop: Crop { top: 20, bottom: 20, left: 0, right: 0 }, ..Default::default() };
        assert_eq!(picture_geometry(&cropped, &f), ((640, 320), (1, 1)));
        let turned = picture(r#"{"rotate":"270"}"#);
        assert_eq!(picture_geometry(&turned, &SourceFacts { sar: (4, 3), ..f }), ((360, 640), (3, 4)));
        let follow = picture(r#"{"rotate":"source"}"#);
        assert_eq!(picture_geometry(&follow, &SourceFacts { display_turns: 1, ..f }).0, (360, 640));
        assert_eq!(picture_geometry(&follow, &f).0, (640, 360));
    }

    #[test]
    fn rungs_fit_fill_or_stretch_to_the_output_aspect() {
        // A 4:3 source into 16:9 rungs of 180 lines (320x180).
        let f = facts(240, 180);
        for (scaling, want) in [
            ("fit", "scale=w=240:h=180:flags=bicubic,pad=w=320:h=180:x=40:y=0:color=0x102030,setsar=1,format=yuv420p"),
            ("fill", "crop=w=240:h=136,scale=w=320:h=180:flags=bicubic,setsar=1,format=yuv420p"),
            ("stretch", "scale=w=320:h=180:flags=bicubic,setsar=1,format=yuv420p"),
        ] {
            let p = picture(&format!(r##"{{"aspect":"16:9","scaling":"{scaling}","bar_color":"#102030"}}"##));
            assert_eq!(chain_text(&p, Backend::Software, &f, false, &fitting(&p, &[180])).rungs[0], want, "{scaling}");
        }
        // A 16:9 source letterboxed into 4:3.
        let p = picture(r#"{"aspect":"4:3"}"#);
        assert_eq!(
            chain_text(&p, Backend::Software, &facts(320, 180), false, &fitting(&p, &[180])).rungs[0],
            "scale=w=240:h=136:flags=bicubic,pad=w=240:h=180:x=0:y=22:color=0x000000,setsar=1,format=yuv420p"
        );
        // Anamorphic 720x576 at 16:11 pixels is 16:9 already: fit needs no bars.
        let pal = SourceFacts { sar: (64, 45), ..facts(720, 576) };
        assert_eq!(
            chain_text(
                &picture(r#"{"aspect":"16:9"}"#),
                Backend::Software,
                &pal,
                false,
                &fitting(&picture(r#"{"aspect":"16:9"}"#), &[360])
            )
            .rungs[0],
            "scale=w=640:h=360:flags=bicubic,pad=w=640:h=360:x=0:y=0:color=0x000000,setsar=1,format=yuv420p"
        );
    }

    #[test]
    fn each_rung_may_have_its_own_scaling_mode() {
        let p = picture(r#"{"aspect":"16:9","scaling":"fit"}"#);
        let text = chain_text(
            &p,
            Backend::Software,
            &facts(240, 180),
            false,
            &[(180, ScalingMode::Fit), (90, ScalingMode::Stretch)],
        );
        assert!(text.rungs[0].contains("pad="), "{}", text.rungs[0]);
        assert_eq!(text.rungs[1], "scale=w=160:h=90:flags=bicubic,setsar=1,format=yuv420p");
    }

    #[test]
    fn display_matrices_to_turns() {
        // av_display_rotation_set(m, -90): a picture to show turned 90 degrees clockwise.
        let one = 65536.0;
        assert_eq!(turns_of_matrix(&[0.0, one, 0.0, -one, 0.0, 0.0, 0.0, 0.0, 1073741824.0]), 1);
        assert_eq!(turns_of_matrix(&[0.0, -one, 0.0, one, 0.0, 0.0, 0.0, 0.0, 1073741824.0]), 3);
        assert_eq!(turns_of_matrix(&[-one, 0.0, 0.0, 0.0, -one, 0.0, 0.0, 0.0, 1073741824.0]), 2);
        assert_eq!(turns_of_matrix(&[one, 0.0, 0.0, 0.0, one, 0.0, 0.0, 0.0, 1073741824.0]), 0);
    }
}
