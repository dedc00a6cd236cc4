//! A channel's processing end to end: the real `ffmpeg` program publishes a
//! still SMPTE pattern (or a moving, interlaced one) over RTMP, the appliance
//! transcodes it with the channel's picture controls, and the effect is
//! measured on our output: rotate/flip/mirror against the `ffmpeg` program's
//! own `transpose`/`vflip`/`hflip` of the same pattern (PSNR), fit/fill/
//! stretch/crop by size, bars by `cropdetect` and content by PSNR,
//! deinterlacing by `idet`; conditional rungs by the live figures; the API's
//! processing section by its answers, and `?restart=now` by a discontinuity
//! (and no ENDLIST) in the running stream.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::measure::{cropdetect, frame_after, idet, reference_frame};
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg, psnr};

/// A still pattern with no symmetry: flips and turns of it differ.
const PATTERN: &str = "smptehdbars=size=320x180:rate=30";

fn still_publish(seconds: f64) -> Publish {
    Publish { seconds, pattern: Some(PATTERN.into()), audio: false, ..Publish::default() }
}

/// Creates an active, software ladder channel of `rungs` with `processing` through the API; its stream key.
async fn channel(app: &TestAppliance, name: &str, rungs: Value, processing: Value) -> String {
    let body = json!({
        "name": name,
        "output": {"kind": "ladder", "ladder": {"rungs": rungs}},
        "encoder_policy": "software",
        "processing": processing,
        "start": true,
    });
    let created = app.create_channel(body).await;
    assert_eq!(created["processing"], app.get_json(&format!("/api/v1/channels/{name}")).await["processing"]);
    created["stream_key"].as_str().expect("a write token sees the key").to_string()
}

/// Creates a channel of `rung` per (name, processing) and publishes 4 s of
/// the still pattern to all of them at once, until every publisher is done.
async fn publish_still_to<'a>(app: &TestAppliance, rung: &Value, channels: impl Iterator<Item = (&'a str, &'a Value)>) {
    let mut publishers = Vec::new();
    for (name, processing) in channels {
        let key = channel(app, name, rung.clone(), processing.clone()).await;
        publishers.push(still_publish(4.0).start(&app.rtmp_url(&key)));
    }
    for publisher in publishers {
        let (ok, stderr) = finish(publisher).await;
        assert!(ok, "publisher failed: {stderr}");
    }
}

/// The first rendition of `channel`'s session, once ended, as one file (init + segments).
pub(crate) async fn ended_rendition(app: &TestAppliance, channel: &str, dir: &Path) -> PathBuf {
    let path = app.media_playlist_path(channel, None).await;
    let ended = app.playlist_until(&path, |p| p.ended).await;
    let file = dir.join(format!("{channel}.mp4"));
    app.download_rendition(&path, &ended, &file).await;
    file
}

fn size_of(file: &Path) -> (u32, u32) {
    let probe = support::probe(file);
    (probe.width, probe.height)
}

/// Our output's frame 2 s in against `expected` (the `ffmpeg` program's
/// filters on the pattern, scaled to our size) and against the untransformed
/// pattern at that size: (PSNR to the expected frame, PSNR to the plain one).
fn compare(output: &Path, expected_filters: &str, dir: &Path, label: &str) -> (f64, f64) {
    let (w, h) = size_of(output);
    let ours = dir.join(format!("{label}-ours.png"));
    frame_after(output, 2.0, &ours);
    let expected = dir.join(format!("{label}-expected.png"));
    reference_frame(PATTERN, &format!("{expected_filters}scale={w}:{h}:flags=bicubic"), &expected);
    let plain = dir.join(format!("{label}-plain.png"));
    reference_frame(PATTERN, &format!("scale={w}:{h}:flags=bicubic"), &plain);
    (psnr(&ours, &expected), psnr(&ours, &plain))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_flip_and_mirror_match_the_ffmpeg_programs_transpose_vflip_and_hflip() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let rung = json!([{"height": 180, "bitrate_kbps": 800}]);
    // (channel, processing, the ffmpeg program's filters, our size)
    let cases = [
        ("rot90", json!({"picture": {"rotate": "90"}}), "transpose=clock,", (102, 180)),
        ("rot270", json!({"picture": {"rotate": "270"}}), "transpose=cclock,", (102, 180)),
        ("rot180", json!({"picture": {"rotate": "180"}}), "hflip,vflip,", (320, 180)),
        ("flip", json!({"picture": {"flip": true}}), "vflip,", (320, 180)),
        ("mirror", json!({"picture": {"mirror": true}}), "hflip,", (320, 180)),
    ];
    publish_still_to(&app, &rung, cases.iter().map(|(name, processing, _, _)| (*name, processing))).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, _, filters, size) in &cases {
        let output = ended_rendition(&app, name, dir.path()).await;
        assert_eq!(size_of(&output), *size, "{name}");
        let (matched, plain) = compare(&output, filters, dir.path(), name);
        println!("{name}: PSNR {matched:.2} dB against ffmpeg's {filters} ({plain:.2} dB against the plain pattern)");
        assert!(matched > 35.0, "{name}: PSNR {matched:.2} dB against the ffmpeg program's {filters}");
        assert!(matched > plain + 10.0, "{name}: {matched:.2} dB, {plain:.2} dB untransformed: not told apart");
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fit_fill_stretch_and_crop_give_the_sizes_bars_and_content_expected() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let rung = json!([{"height": 180, "bitrate_kbps": 800}]);
    let four_three = |scaling: &str| json!({"picture": {"aspect": "4:3", "scaling": scaling}});
    // (channel, processing, the ffmpeg program's filters for the content, cropdetect's box)
    let cases = [
        ("fit", four_three("fit"), "scale=240:136,pad=240:180:0:22,", (240, 136, 0, 22)),
        ("fill", four_three("fill"), "crop=240:180,", (240, 180, 0, 0)),
        ("stretch", four_three("stretch"), "", (240, 180, 0, 0)),
        ("crop", json!({"picture": {"crop": {"left": 40, "right": 40}}}), "crop=240:180:40:0,", (240, 180, 0, 0)),
    ];
    publish_still_to(&app, &rung, cases.iter().map(|(name, processing, _, _)| (*name, processing))).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, _, filters, bars) in &cases {
        let output = ended_rendition(&app, name, dir.path()).await;
        assert_eq!(size_of(&output), (240, 180), "{name}: a 4:3 frame of 180 lines");
        let found = cropdetect(&output);
        let near = |a: u32, b: u32| a.abs_diff(b) <= 2;
        assert!(
            near(found.0, bars.0) && near(found.1, bars.1) && near(found.2, bars.2) && near(found.3, bars.3),
            "{name}: cropdetect found {found:?}, expected {bars:?}"
        );
        let (matched, stretched) = compare(&output, filters, dir.path(), name);
        println!(
            "{name}: cropdetect {found:?}, PSNR {matched:.2} dB against ffmpeg's {filters} ({stretched:.2} dB against a plain stretch)"
        );
        assert!(matched > 35.0, "{name}: PSNR {matched:.2} dB against the ffmpeg program's {filters}");
        if !filters.is_empty() {
            assert!(matched > stretched + 10.0, "{name}: {matched:.2} dB, {stretched:.2} dB stretched: not told apart");
        }
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interlaced_source_comes_out_progressive_and_a_progressive_one_untouched() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let rung = json!([{"height": 180, "bitrate_kbps": 1200}]);
    // Fields of a 60 fps pattern woven into 30 fps interlaced frames, coded as such by x264.
    let interlaced = Publish {
        seconds: 4.0,
        audio: false,
        pattern: Some("testsrc2=size=320x180:rate=60".into()),
        video_args: ["-vf", "interlace", "-flags", "+ilme+ildct", "-r", "30"].map(String::from).to_vec(),
        ..Publish::default()
    };
    // (A moving testsrc2 fools idet at this size even when progressive: the progressive source is the still pattern.)
    let progressive = still_publish(4.0);
    let cases = [
        ("deint-auto", "auto", &interlaced),
        ("deint-off", "off", &interlaced),
        ("progressive-auto", "auto", &progressive),
    ];
    let mut publishers = Vec::new();
    for (name, mode, publish) in cases {
        let key = channel(&app, name, rung.clone(), json!({"picture": {"deinterlace": mode}})).await;
        publishers.push(publish.start(&app.rtmp_url(&key)));
    }
    // While live: the graph each ladder runs, in its figures.
    let mut graphs = Vec::new();
    for (name, _, _) in cases {
        let graph = eventually(STEP_TIMEOUT, || async {
            let channel = app.get_json(&format!("/api/v1/channels/{name}")).await;
            channel["live"]["encoder"]["filter_graph"].as_str().map(str::to_string)
        })
        .await
        .unwrap_or_else(|| panic!("{name}: no filter graph in the live figures"));
        graphs.push(graph);
    }
    for publisher in publishers {
        let (ok, stderr) = finish(publisher).await;
        assert!(ok, "publisher failed: {stderr}");
    }
    assert!(graphs[0].contains("bwdif="), "auto on an interlaced source deinterlaces: {}", graphs[0]);
    assert!(!graphs[1].contains("bwdif="), "off: {}", graphs[1]);
    assert!(!graphs[2].contains("bwdif="), "auto on a progressive source adds nothing: {}", graphs[2]);
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    let mut outputs = Vec::new();
    for (name, _, _) in cases {
        let output = ended_rendition(&app, name, dir.path()).await;
        counts.push(idet(&output));
        outputs.push(output);
    }
    let (untouched, _) = compare(&outputs[2], "", dir.path(), "progressive");
    assert!(untouched > 35.0, "the progressive source comes out as it went in: PSNR {untouched:.2} dB");
    println!("idet (interlaced, progressive): auto {:?}, off {:?}, progressive {:?}", counts[0], counts[1], counts[2]);
    let share = |(i, p): (u64, u64)| i as f64 / (i + p).max(1) as f64;
    assert!(share(counts[1]) > 0.5, "without deinterlacing the output is combed: {:?}", counts[1]);
    assert!(share(counts[0]) < 0.1, "deinterlaced output is progressive: {:?}", counts[0]);
    assert!(share(counts[2]) < 0.1, "a progressive source stays progressive: {:?}", counts[2]);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rung_with_a_minimum_source_height_runs_only_for_sources_that_tall() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    // "The 180p rung only for sources of at least 360 lines" (a 1080p-only rung, small).
    let rungs = json!([
        {"height": 180, "bitrate_kbps": 400, "when": {"min_height": 360}},
        {"height": 120, "bitrate_kbps": 200},
    ]);
    let small = channel(&app, "small-source", rungs.clone(), json!({})).await;
    let large = channel(&app, "large-source", rungs, json!({})).await;
    let publishers = [
        Publish { seconds: 5.0, size: "320x180", audio: false, ..Publish::default() }.start(&app.rtmp_url(&small)),
        Publish { seconds: 5.0, size: "640x360", audio: false, ..Publish::default() }.start(&app.rtmp_url(&large)),
    ];
    let placement = |name: &'static str| {
        let app = &app;
        async move {
            eventually(STEP_TIMEOUT, || async {
                let channel = app.get_json(&format!("/api/v1/channels/{name}")).await;
                let encoder = channel["live"]["encoder"].clone();
                encoder["kept"].as_array().is_some_and(|k| !k.is_empty()).then_some(encoder)
            })
            .await
            .unwrap_or_else(|| panic!("{name}: the ladder never reported its rungs"))
        }
    };
    let on_small = placement("small-source").await;
    assert_eq!(on_small["kept"], json!(["120p"]), "{on_small}");
    assert_eq!(on_small["dropped"], json!(["180p"]), "{on_small}");
    assert_eq!(
        on_small["dropped_why"],
        json!([{"rendition": "180p", "reason": "source height 180 is below the minimum 360"}]),
        "{on_small}"
    );
    let on_large = placement("large-source").await;
    assert_eq!(on_large["kept"], json!(["180p", "120p"]), "{on_large}");
    assert_eq!(on_large["dropped"], json!([]), "{on_large}");
    for publisher in publishers {
        let (ok, stderr) = finish(publisher).await;
        assert!(ok, "publisher failed: {stderr}");
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processing_section_is_validated_and_a_live_change_needs_restart_now() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let ladder = json!({"kind": "ladder", "ladder": {"rungs": [{"height": 180, "bitrate_kbps": 600}]}});
    // Refusals name the field.
    for (body, field) in [
        (
            json!({"name": "bad", "output": ladder, "processing": {"picture": {"aspect": "wide"}}}),
            "processing.picture.aspect",
        ),
        (
            json!({"name": "bad", "output": ladder, "processing": {"picture": {"crop": {"top": 9999}}}}),
            "processing.picture.crop.top",
        ),
        (json!({"name": "bad", "processing": {"picture": {"flip": true}}}), "processing.picture"),
        (json!({"name": "bad", "processing": {"sound": {"gain_db": 31}}}), "processing.sound.gain_db"),
        (
            json!({"name": "bad", "processing": {"sound": {"equalizer": [{"type": "peak", "frequency_hz": 5, "gain_db": 1}]}}}),
            "processing.sound.equalizer[0].frequency_hz",
        ),
        (
            json!({"name": "bad", "processing": {"sound": {"loudness": {"target_lufs": 0}}}}),
            "processing.sound.loudness.target_lufs",
        ),
        (
            json!({"name": "bad", "output": {"kind": "ladder", "ladder": {"rungs": [{"height": 180, "bitrate_kbps": 600, "when": {"min_height": 720, "max_height": 480}}]}}}),
            "output.ladder.rungs[0].when.min_height",
        ),
    ] {
        let reply = app.write("POST", "/api/v1/channels", Some(body.clone())).await;
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["field"], field, "{body}: {:?}", reply.body);
    }
    let unknown = app
        .write("POST", "/api/v1/channels", Some(json!({"name": "bad", "processing": {"picture": {"rotation": "90"}}})))
        .await;
    assert_eq!(unknown.status, 400, "{:?}", unknown.body);

    let key = channel(&app, "live-change", ladder["ladder"]["rungs"].clone(), json!({})).await;
    let publisher = Publish { seconds: 10.0, size: "320x180", ..Publish::default() }.start(&app.rtmp_url(&key));
    let path = app.media_playlist_path("live-change", None).await;
    app.playlist_until(&path, |p| p.segments.len() >= 2).await;
    let turned = json!({"processing": {"picture": {"rotate": "90"}}});
    let refused = app.write("PATCH", "/api/v1/channels/live-change", Some(turned.clone())).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["field"], "processing");
    assert!(refused.body["detail"].as_str().unwrap().contains("?restart=now"), "{:?}", refused.body);
    let unchanged = app.get_json("/api/v1/channels/live-change").await;
    assert_eq!(unchanged["processing"]["picture"]["rotate"], "none", "a refused change changes nothing");
    // Other settings still change while live (from the next session).
    let other = app.write("PATCH", "/api/v1/channels/live-change", Some(json!({"max_session_seconds": 3600}))).await;
    assert_eq!(other.status, 200, "{:?}", other.body);

    let restarted = app.write("PATCH", "/api/v1/channels/live-change?restart=now", Some(turned)).await;
    assert_eq!(restarted.status, 200, "{:?}", restarted.body);
    assert_eq!(restarted.body["processing"]["picture"]["rotate"], "90");
    // The running stream goes on after a discontinuity, with a new init of the turned picture.
    let after = app.playlist_until(&path, |p| p.segments.iter().any(|s| s.discontinuity) && !p.ended).await;
    assert!(!after.ended, "no ENDLIST for a restart");
    let graph = app.get_json("/api/v1/channels/live-change").await["live"]["encoder"]["filter_graph"].clone();
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let ended = app.playlist_until(&path, |p| p.ended).await;
    let dir = tempfile::tempdir().unwrap();
    let last = last_segment_with_its_init(&app, &path, &ended, dir.path()).await;
    assert_eq!(size_of(&last), (102, 180), "the restarted ladder turns the picture (graph {graph})");
    app.appliance.shutdown().await;
}

/// The last complete segment of `playlist` after the init it names, as one file.
async fn last_segment_with_its_init(app: &TestAppliance, path: &str, playlist: &MediaPlaylist, dir: &Path) -> PathBuf {
    let base = support::base(path);
    let segment = playlist.segments.iter().rev().find(|s| s.uri.is_some()).expect("a complete segment");
    let map = segment.map.clone().expect("EXT-X-MAP");
    let mut bytes = app.get_bytes(&format!("{base}{map}")).await;
    bytes.extend(app.get_bytes(&format!("{base}{}", segment.uri.as_ref().unwrap())).await);
    let file = dir.join("last.mp4");
    std::fs::write(&file, bytes).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_edits_the_processing_section_and_asks_before_restarting_a_live_pipeline() {
    if !have_ffmpeg() {
        return;
    }
    let Some(console_dir) = support::browser_driver("console", &[]) else { return };
    const PASSWORD: &str = "console-processing-password";
    let app = TestAppliance::start_with_admin_password(PASSWORD).await;
    let key = channel(&app, "proc-console", json!([{"height": 180, "bitrate_kbps": 500}]), json!({})).await;
    let shots = support::artifacts_dir("console");
    let url = app.url("");
    let args = [url.as_ref(), PASSWORD.as_ref(), shots.as_os_str(), "proc-console".as_ref()];
    let mut script = support::BrowserScript::start(&console_dir.join("processing.mjs"), &args);
    let mut publisher = None;
    let walk = async {
        while let Some(message) = script.next_message().await {
            if message["publish"].is_string() {
                let publish = Publish { seconds: 60.0, size: "320x180", ..Publish::default() };
                publisher = Some(publish.start(&app.rtmp_url(&key)));
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), walk).await.expect("the walk-through finishes in time");
    let report = script.report().await;
    eprintln!("console processing report: {report:#}");
    assert_eq!(report["error"], Value::Null, "{report:#}");
    assert!(report["field_error"].as_str().unwrap().contains("is not W:H"), "{report}");
    assert_eq!(report["aspect_invalid"], "true");
    assert_eq!(
        report["reopened"],
        json!({"rotate": "90", "crop_left": "8", "aspect": "16:9", "deinterlace": "auto", "rung_scaling": "stretch", "gain_db": "3", "loudness": "-14", "fade_out_ms": "1500"})
    );
    assert!(report["live_refusal"].as_str().unwrap().contains("is live"), "{report}");
    // The refusals this walk provokes are logged by the browser as failed loads; nothing else may be.
    let errors = report["console_errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e.as_str().unwrap().starts_with("Failed to load resource")), "{report}");
    assert_eq!(report["csp_violations"], json!([]), "{report}");
    let saved = app.appliance.store.get("proc-console").unwrap().unwrap().processing.picture;
    assert!(saved.flip && saved.crop.left == 8 && saved.aspect.as_deref() == Some("16:9"), "{saved:?}");
    assert_eq!(saved.scaling_for("180p"), media::ScalingMode::Stretch, "{saved:?}");
    let sound = app.appliance.store.get("proc-console").unwrap().unwrap().processing.sound;
    assert_eq!(sound.gain_db, 3.0, "{sound:?}");
    assert_eq!(sound.loudness.map(|l| l.target_lufs), Some(-14.0), "the streaming preset: {sound:?}");
    assert_eq!(sound.fade_out_ms, 1500, "{sound:?}");
    // The restart reached the running ladder: its graph flips the picture.
    let graph = eventually(STEP_TIMEOUT, || async {
        let channel = app.get_json("/api/v1/channels/proc-console").await;
        let graph = channel["live"]["encoder"]["filter_graph"].as_str()?.to_string();
        graph.contains("vflip").then_some(graph)
    })
    .await;
    assert!(graph.is_some(), "the live ladder never ran the flipped graph");
    drop(publisher);
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_turned_as_its_display_matrix_says_and_denoised_when_asked() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let rung = json!([{"height": 180, "bitrate_kbps": 800}]);
    let video_args = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // A phone's way: the picture as shot, and an H.264 display-orientation SEI
    // asking to show it turned 90 degrees anticlockwise.
    let phone = Publish {
        video_args: video_args(&["-bsf:v", "h264_metadata=display_orientation=insert:rotate=90"]),
        ..still_publish(4.0)
    };
    // A noisy picture (temporal noise on the still pattern), with and without denoising.
    let noisy = Publish { video_args: video_args(&["-vf", "noise=alls=30:allf=t+u"]), ..still_publish(4.0) };
    // The noisy ones at a bitrate that keeps the noise (a starved encoder smooths it away itself).
    let generous = json!([{"height": 180, "bitrate_kbps": 4000}]);
    let cases = [
        ("phone", json!({"picture": {"rotate": "source"}}), &phone, &rung),
        ("phone-unturned", json!({}), &phone, &rung),
        ("noisy", json!({}), &noisy, &generous),
        ("denoised", json!({"picture": {"denoise": "strong"}}), &noisy, &generous),
    ];
    let mut publishers = Vec::new();
    for (name, processing, publish, rung) in &cases {
        let key = channel(&app, name, (*rung).clone(), processing.clone()).await;
        publishers.push(publish.start(&app.rtmp_url(&key)));
    }
    for publisher in publishers {
        let (ok, stderr) = finish(publisher).await;
        assert!(ok, "publisher failed: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    // The ffmpeg program's autorotate for a matrix of +90 (anticlockwise): transpose=cclock.
    let phone = ended_rendition(&app, "phone", dir.path()).await;
    assert_eq!(size_of(&phone), (102, 180), "turned upright");
    let (matched, plain) = compare(&phone, "transpose=cclock,", dir.path(), "phone");
    println!("display matrix: PSNR {matched:.2} dB against transpose=cclock ({plain:.2} dB unturned)");
    assert!(matched > 35.0 && matched > plain + 10.0, "{matched:.2} dB turned, {plain:.2} dB not");
    let unturned = ended_rendition(&app, "phone-unturned", dir.path()).await;
    assert_eq!(size_of(&unturned), (320, 180), "rotate none ignores the matrix");

    let mut clean = Vec::new();
    for name in ["noisy", "denoised"] {
        let output = ended_rendition(&app, name, dir.path()).await;
        clean.push(compare(&output, "", dir.path(), name).0);
    }
    println!("noise: PSNR against the clean pattern {:.2} dB as sent, {:.2} dB denoised (strong)", clean[0], clean[1]);
    assert!(clean[1] > clean[0] + 2.0, "denoising brings the picture closer to the clean pattern: {clean:?}");
    app.appliance.shutdown().await;
}
