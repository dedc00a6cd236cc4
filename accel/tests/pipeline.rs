//! The software pipeline end to end in-process: a generated H.264/AAC source
//! through decode, split + scale and libx264/libx265 to per-rung streams.

use std::collections::BTreeSet;
use std::time::Duration;

use accel::pipeline::{Fault, Outputs, Pipeline, PipelineConfig, PipelineEvent, Rendition};
use accel::{Backend, DeviceId, source};
use media::{CodecConfig, RenditionSpec, StreamEvent, TrackKind, UnitReceiver, VideoCodec, unit_channel};

fn rung(height: u32, bitrate_kbps: u32, codec: VideoCodec, max_fps: Option<u32>) -> RenditionSpec {
    RenditionSpec { height, bitrate_kbps, codec, max_fps, when: Default::default() }
}

fn config(rungs: Vec<RenditionSpec>) -> PipelineConfig {
    PipelineConfig {
        label: "test".into(),
        backend: Backend::Software,
        device: DeviceId::cpu(),
        rungs,
        picture: Default::default(),
        keyframe_interval: Duration::from_secs(1),
        preset: Some("ultrafast".into()),
        fail_after_frames: None,
        faults: Default::default(),
    }
}

/// Everything one rung's consumer received.
#[derive(Debug, Default)]
struct Received {
    tracks: Vec<Vec<media::TrackInfo>>,
    video_pts: Vec<i64>,
    keyframe_pts: Vec<i64>,
    audio_units: usize,
}

/// One consumer thread per rendition, in the ladder's order (each checked to carry its rung's name).
fn consume(config: &PipelineConfig, renditions: Vec<Rendition>) -> Vec<std::thread::JoinHandle<Received>> {
    let names: Vec<String> = config.rungs.iter().map(RenditionSpec::name).collect();
    assert_eq!(renditions.iter().map(|r| r.name.clone()).collect::<Vec<_>>(), names);
    renditions.into_iter().map(|r| std::thread::spawn(move || drain(r.stream))).collect()
}

fn drain(mut rx: UnitReceiver) -> Received {
    let mut r = Received::default();
    while let Some(event) = rx.blocking_recv() {
        match event {
            StreamEvent::Tracks(t) => r.tracks.push(t.to_vec()),
            StreamEvent::Unit(u) if u.kind == TrackKind::Video => {
                r.video_pts.push(u.pts);
                if u.keyframe {
                    r.keyframe_pts.push(u.pts);
                }
                assert_eq!(u.track, 0);
                assert_eq!(u.dts, u.pts, "no B-frames: dts = pts");
                let len = u32::from_be_bytes(u.data[..4].try_into().unwrap()) as usize;
                assert!(len + 4 <= u.data.len(), "length-prefixed NAL units");
            }
            StreamEvent::Unit(u) => {
                assert_eq!(u.track, 1);
                r.audio_units += 1;
            }
        }
    }
    r
}

fn run(
    config: PipelineConfig,
    source: &source::Source,
) -> (Vec<Received>, Vec<PipelineEvent>, accel::pipeline::PipelineStats) {
    let (mut input_tx, input_rx) = unit_channel(8192);
    let (outputs, renditions) = Outputs::for_rungs(&config.rungs, 8192).unwrap();
    let consumers = consume(&config, renditions);
    let mut pipeline = Pipeline::start(config, input_rx, outputs).unwrap();
    for event in &source.events {
        match event {
            StreamEvent::Tracks(t) => input_tx.blocking_send_tracks(t.clone()).unwrap(),
            StreamEvent::Unit(u) => assert!(input_tx.send_unit(u.clone()).unwrap(), "input never full here"),
        }
    }
    drop(input_tx);
    let mut events = Vec::new();
    while let Some(event) = pipeline.blocking_next_event() {
        let done = matches!(event, PipelineEvent::Finished | PipelineEvent::Failed { .. });
        events.push(event);
        if done {
            break;
        }
    }
    let stats = pipeline.stats();
    pipeline.join();
    (consumers.into_iter().map(|c| c.join().unwrap()).collect(), events, stats)
}

#[test]
fn ladder_rungs_share_keyframe_timestamps_and_never_upscale() {
    let source = source::generated(640, 360, 30, 3, 30).unwrap();
    assert_eq!(source.video_frames(), 90);
    let rungs = vec![
        rung(720, 2800, VideoCodec::H264, None),
        rung(360, 800, VideoCodec::H264, None),
        rung(240, 400, VideoCodec::H264, None),
        rung(144, 200, VideoCodec::H264, Some(15)),
    ];
    let (received, events, stats) = run(config(rungs), &source);
    match &events[0] {
        PipelineEvent::Configured { source, kept, dropped } => {
            assert_eq!(*source, (640, 360));
            assert_eq!(kept, &["360p", "240p", "144p15"]);
            assert_eq!(dropped, &[("720p".to_string(), "above the source's 360 lines".to_string())]);
        }
        other => panic!("first event {other:?}"),
    }
    assert!(matches!(events.last(), Some(PipelineEvent::Finished)), "{events:?}");

    assert!(received[0].tracks.is_empty() && received[0].video_pts.is_empty(), "720p above the source: no media");
    let sizes: Vec<_> = received[1..].iter().map(|r| r.tracks[0][0].resolution().unwrap()).collect();
    assert_eq!(sizes, [(640, 360), (426, 240), (256, 144)]);
    for r in &received[1..] {
        assert_eq!(r.tracks.len(), 1, "one announcement");
        assert!(matches!(r.tracks[0][0].codec, CodecConfig::Avc(_)));
        assert_eq!(r.tracks[0][1].kind, TrackKind::Audio, "audio passed through");
        assert!(r.audio_units >= 130, "3 s of 48 kHz AAC: {}", r.audio_units);
    }
    assert_eq!(received[1].video_pts.len(), 90);
    assert_eq!(received[2].video_pts.len(), 90);
    assert!((44..=46).contains(&received[3].video_pts.len()), "15 fps cap: {}", received[3].video_pts.len());
    assert_eq!(received[3].tracks[0][0].frame_rate, Some((15, 1)));

    // Keyframes on the same timestamps in every rung: one a second.
    let keys: Vec<BTreeSet<i64>> = received[1..].iter().map(|r| r.keyframe_pts.iter().copied().collect()).collect();
    assert_eq!(keys[0], [0, 90_000, 180_000].into_iter().collect(), "{keys:?}");
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");

    assert_eq!(stats.decoded_frames, 90);
    assert_eq!(stats.rungs.len(), 3);
    for rung in &stats.rungs {
        assert!(rung.latency_ms_p50 > 0.0 && rung.latency_ms_max >= rung.latency_ms_p95, "{rung:?}");
    }
}

#[test]
fn hevc_rungs_carry_an_hvcc_record() {
    let source = source::generated(320, 180, 30, 1, 30).unwrap();
    let (received, events, _) = run(config(vec![rung(144, 200, VideoCodec::Hevc, None)]), &source);
    assert!(matches!(events.last(), Some(PipelineEvent::Finished)), "{events:?}");
    let CodecConfig::Hevc(hevc) = &received[0].tracks[0][0].codec else { panic!("{:?}", received[0].tracks) };
    assert_eq!((hevc.width, hevc.height), (256, 144));
    assert!(hevc.rfc6381().starts_with("hvc1.1.6.L"), "{}", hevc.rfc6381());
    assert_eq!(received[0].video_pts.len(), 30);
    assert_eq!(received[0].keyframe_pts, [0]);
}

#[test]
fn an_encoder_failure_hands_the_ladder_back_and_it_resumes() {
    let source = source::generated(320, 180, 30, 3, 30).unwrap();
    let mut failing = config(vec![rung(180, 300, VideoCodec::H264, None), rung(144, 200, VideoCodec::H264, None)]);
    failing.fail_after_frames = Some(20);
    let (mut input_tx, input_rx) = unit_channel(8192);
    let (outputs, renditions) = Outputs::for_rungs(&failing.rungs, 8192).unwrap();
    let consumers = consume(&failing, renditions);
    let mut pipeline = Pipeline::start(failing.clone(), input_rx, outputs).unwrap();
    let mut events = source.events.iter();
    // Feed until the failure is reported.
    let resume = loop {
        match events.next().expect("the failure comes before the source ends") {
            StreamEvent::Tracks(t) => input_tx.blocking_send_tracks(t.clone()).unwrap(),
            StreamEvent::Unit(u) => {
                input_tx.send_unit(u.clone()).unwrap();
            }
        }
        if let Ok(event) = pipeline_event(&mut pipeline) {
            match event {
                PipelineEvent::Failed { error, resume } => {
                    assert!(error.is_movable(), "{error}");
                    assert!(error.to_string().contains("injected"), "{error}");
                    break resume.expect("a movable failure hands the channels back");
                }
                PipelineEvent::Configured { .. } | PipelineEvent::Graph { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(resume.source_tracks.is_some());
    assert_eq!(resume.outputs.names().collect::<Vec<_>>(), ["144p", "180p"], "every rung's output handed back");
    let moved = Pipeline::resume(PipelineConfig { fail_after_frames: None, ..failing }, resume).unwrap();
    for event in events {
        if let StreamEvent::Unit(u) = event {
            input_tx.send_unit(u.clone()).unwrap();
        }
    }
    drop(input_tx);
    run_to_finish(moved);
    let received: Vec<Received> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    for r in &received {
        // Announced again by the new encoders: the packager starts a new init (a discontinuity).
        assert_eq!(r.tracks.len(), 2, "{:?}", r.tracks.len());
        assert!(r.video_pts.len() > 40 && r.video_pts.len() < 90, "{}", r.video_pts.len());
        assert!(r.video_pts.windows(2).all(|w| w[0] < w[1]), "timestamps keep increasing across the move");
    }
}

#[test]
fn a_tripped_fault_switch_fails_the_running_pipeline_once() {
    let source = source::generated(320, 180, 30, 2, 30).unwrap();
    let config = config(vec![rung(180, 300, VideoCodec::H264, None), rung(144, 200, VideoCodec::H264, None)]);
    let (mut input_tx, input_rx) = unit_channel(8192);
    let (outputs, renditions) = Outputs::for_rungs(&config.rungs, 8192).unwrap();
    let consumers = consume(&config, renditions);
    let mut pipeline = Pipeline::start(config.clone(), input_rx, outputs).unwrap();
    let mut events = source.events.iter();
    let (mut fed_video, mut tripped) = (0, false);
    let resume = loop {
        match events.next().expect("the failure comes before the source ends") {
            StreamEvent::Tracks(t) => input_tx.blocking_send_tracks(t.clone()).unwrap(),
            StreamEvent::Unit(u) => {
                fed_video += usize::from(u.kind == TrackKind::Video);
                input_tx.send_unit(u.clone()).unwrap();
            }
        }
        if fed_video == 10 && !tripped {
            // Trip once every rung has announced and encoded (a loaded machine may be slower
            // than the feed): the move must be seen as a second announcement by every consumer.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !all_rungs_encoding(&pipeline, config.rungs.len()) {
                assert!(std::time::Instant::now() < deadline, "the rungs never encoded a frame");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            config.faults.trip(Fault::DeviceLost);
            tripped = true;
        }
        if let Ok(event) = pipeline_event(&mut pipeline) {
            match event {
                PipelineEvent::Failed { error, resume } => {
                    assert!(error.is_device_lost() && error.is_movable(), "{error}");
                    assert!(error.to_string().contains("injected device loss (fault switch)"), "{error}");
                    break resume.expect("a device loss hands the channels back");
                }
                PipelineEvent::Configured { .. } | PipelineEvent::Graph { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(!config.faults.is_armed(), "one rung took the fault");
    // The same config (and switch) resumes and runs to the end: the fault fired once.
    let moved = Pipeline::resume(config, resume).unwrap();
    for event in events {
        if let StreamEvent::Unit(u) = event {
            input_tx.send_unit(u.clone()).unwrap();
        }
    }
    drop(input_tx);
    run_to_finish(moved);
    for r in consumers.into_iter().map(|c| c.join().unwrap()) {
        assert_eq!(r.tracks.len(), 2, "announced again after the move");
        assert!(r.video_pts.len() > 20 && r.video_pts.len() < 60, "{}", r.video_pts.len());
        assert!(r.video_pts.windows(2).all(|w| w[0] < w[1]), "timestamps keep increasing across the move");
    }
}

/// Whether each of `rungs` rungs has encoded a frame (and so announced its tracks).
fn all_rungs_encoding(pipeline: &Pipeline, rungs: usize) -> bool {
    let stats = pipeline.stats();
    stats.rungs.len() == rungs && stats.rungs.iter().all(|r| r.frames > 0)
}

/// Waits for a (resumed) pipeline to finish its input cleanly, then joins it.
fn run_to_finish(mut pipeline: Pipeline) {
    loop {
        match pipeline.blocking_next_event() {
            Some(PipelineEvent::Finished) => break,
            Some(PipelineEvent::Configured { .. } | PipelineEvent::Graph { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    pipeline.join();
}

/// `source`'s events with every timestamp moved `seconds` later (each track in its own timebase).
fn shifted(source: &source::Source, seconds: i64) -> Vec<StreamEvent> {
    let StreamEvent::Tracks(tracks) = &source.events[0] else { panic!("tracks come first") };
    let tracks = tracks.clone();
    source
        .events
        .iter()
        .map(|event| match event {
            StreamEvent::Unit(u) => {
                let offset = seconds * i64::from(tracks[u.track].timebase.0);
                StreamEvent::Unit(media::EncodedUnit { pts: u.pts + offset, dts: u.dts + offset, ..u.clone() })
            }
            tracks => tracks.clone(),
        })
        .collect()
}

#[test]
fn a_source_that_changes_size_mid_session_keeps_every_rendition_without_upscaling() {
    // 2 s at 640x360, then the publisher switches to 320x180 (a new announcement
    // with a new avcC, as ingest sends on a new sequence header).
    let large = source::generated(640, 360, 30, 2, 30).unwrap();
    let small = source::generated(320, 180, 30, 2, 30).unwrap();
    let both = source::Source { events: [large.events.clone(), shifted(&small, 2)].concat(), ..large };
    let rungs = vec![rung(360, 800, VideoCodec::H264, None), rung(144, 200, VideoCodec::H264, None)];
    let (received, events, stats) = run(config(rungs), &both);
    assert!(matches!(events.last(), Some(PipelineEvent::Finished)), "{events:?}");
    let configured = events.iter().filter(|e| matches!(e, PipelineEvent::Configured { .. })).count();
    assert_eq!(configured, 1, "the set of renditions is fixed for the session: {events:?}");
    assert_eq!(stats.decoded_frames, 120);
    let sizes = |r: &Received| r.tracks.iter().map(|t| t[0].resolution().unwrap()).collect::<Vec<_>>();
    // The 360p rung follows the source down to 320x180 (never scaled up);
    // the 144p rung keeps its size. Both run to the end with no gap.
    assert_eq!(sizes(&received[0]), [(640, 360), (320, 180)]);
    assert_eq!(sizes(&received[1]), [(256, 144)]);
    for r in &received {
        assert_eq!(r.video_pts.len(), 120, "every frame of both sizes");
        assert!(r.video_pts.windows(2).all(|w| w[0] < w[1]));
        assert!(r.keyframe_pts.contains(&180_000), "a keyframe where the new size starts: {:?}", r.keyframe_pts);
    }
}

/// The pipeline's next event if one is ready (the feeding thread must not block).
fn pipeline_event(pipeline: &mut Pipeline) -> Result<PipelineEvent, ()> {
    std::thread::sleep(Duration::from_millis(2));
    pipeline.try_next_event().ok_or(())
}

#[test]
fn a_2160p60_source_is_accepted_and_a_larger_one_is_refused() {
    let uhd = source::generated(3840, 2160, 60, 1, 60).unwrap();
    let rungs = vec![rung(720, 2000, VideoCodec::H264, None), rung(360, 600, VideoCodec::H264, Some(30))];
    let (received, events, stats) = run(config(rungs.clone()), &uhd);
    assert!(matches!(&events[0], PipelineEvent::Configured { source: (3840, 2160), .. }), "{events:?}");
    assert!(matches!(events.last(), Some(PipelineEvent::Finished)), "{events:?}");
    assert_eq!(stats.decoded_frames, 60);
    assert_eq!(received[0].video_pts.len(), 60, "720p at the source's 60 fps");
    assert_eq!(received[0].tracks[0][0].resolution(), Some((1280, 720)));
    assert!((29..=31).contains(&received[1].video_pts.len()), "360p capped at 30 fps");

    let too_large = source::generated(4352, 2448, 30, 1, 30).unwrap();
    let (received, events, _) = run(config(rungs), &too_large);
    match events.last() {
        Some(PipelineEvent::Failed { error, resume }) => {
            assert!(error.to_string().contains("4352x2448 is larger than the 3840x2160"), "{error}");
            assert!(resume.is_none(), "a source the box refuses is not moved to another slot");
        }
        other => panic!("{other:?}"),
    }
    assert!(received.iter().all(|r| r.video_pts.is_empty()));
}

/// Every hardware backend the probe finds runs a two-rung ladder end to end
/// (device decode where probed, the device scaler, the device encoder); one
/// that is unavailable says why and is skipped. On a box without a GPU this
/// test only reports; on a GPU or iGPU machine it is the hardware check.
#[test]
fn each_available_hardware_backend_runs_a_ladder() {
    let report = accel::probe::probe();
    let source = source::generated(640, 360, 30, 2, 30).unwrap();
    for backend in report.backends.iter().filter(|b| b.backend.is_hardware()) {
        let accel::probe::ProbeStatus::Available { encoders, .. } = &backend.status else {
            let accel::probe::ProbeStatus::Unavailable { reason } = &backend.status else { unreachable!() };
            eprintln!("skipped: {} {} unavailable: {reason}", backend.backend, backend.device);
            continue;
        };
        for codec in encoders {
            let mut config = config(vec![rung(360, 800, *codec, None), rung(180, 300, *codec, None)]);
            config.backend = backend.backend;
            config.device = backend.device.clone();
            config.preset = None;
            let (received, events, stats) = run(config, &source);
            let what = format!("{} {} {codec:?}", backend.backend, backend.device);
            assert!(matches!(events.last(), Some(PipelineEvent::Finished)), "{what}: {events:?}");
            assert_eq!(stats.decoded_frames, 60, "{what}");
            let keys: Vec<BTreeSet<i64>> = received.iter().map(|r| r.keyframe_pts.iter().copied().collect()).collect();
            for r in &received {
                assert_eq!(r.video_pts.len(), 60, "{what}: every frame encoded");
            }
            assert!(keys.iter().all(|k| *k == keys[0]) && keys[0].len() == 2, "{what}: aligned keyframes {keys:?}");
            eprintln!("{what}: ladder ran (decode {:?}, scale {:?})", backend.hw_decode, backend.hw_scale);
        }
    }
}

/// Every picture control goes through FFmpeg's real filters (the graph text
/// parses and runs): a cropped, rotated, flipped, mirrored, deinterlaced,
/// deblocked, denoised and sharpened source comes out at the rotated size,
/// and an output aspect letterboxes each rung to it; a rung whose condition
/// the source does not meet is dropped with the reason.
#[test]
fn picture_processing_runs_through_libavfilter_and_conditions_drop_rungs() {
    let source = source::generated(320, 180, 30, 1, 30).unwrap();
    let picture: media::PictureProcessing = serde_json::from_str(
        r#"{"deinterlace":"on","deblock":true,"denoise":"strong","crop":{"left":20,"right":20},"rotate":"90","flip":true,"mirror":true,"sharpen_percent":80}"#,
    )
    .unwrap();
    let mut big_only = rung(144, 200, VideoCodec::H264, Some(15));
    big_only.when = media::RungConditions { min_width: Some(1280), ..Default::default() };
    let rungs = vec![rung(180, 400, VideoCodec::H264, None), rung(120, 200, VideoCodec::H264, None), big_only];
    let (received, events, _) = run(PipelineConfig { picture, ..config(rungs) }, &source);
    match &events[0] {
        PipelineEvent::Configured { kept, dropped, .. } => {
            assert_eq!(kept, &["180p", "120p"]);
            assert_eq!(dropped, &[("144p15".to_string(), "source width 320 is below the minimum 1280".to_string())]);
        }
        other => panic!("first event {other:?}"),
    }
    assert!(matches!(events.last(), Some(PipelineEvent::Finished)), "{events:?}");
    // 320x180 cropped to 280x180, turned: 180x280; rungs of 180 and 120 lines.
    let sizes: Vec<_> = received[..2].iter().map(|r| r.tracks[0][0].resolution().unwrap()).collect();
    assert_eq!(sizes, [(116, 180), (78, 120)]);
    assert!(received[0].video_pts.len() >= 28, "frames out: {}", received[0].video_pts.len());

    let letterboxed: media::PictureProcessing = serde_json::from_str(r#"{"aspect":"4:3","scaling":"fit"}"#).unwrap();
    let rungs = vec![rung(180, 400, VideoCodec::H264, None)];
    let (received, _, _) = run(PipelineConfig { picture: letterboxed, ..config(rungs) }, &source);
    assert_eq!(received[0].tracks[0][0].resolution(), Some((240, 180)));
}

/// `Pipeline::restart` hands the channels back at the next input event, and
/// the ladder resumed with new processing goes on in the same renditions:
/// the encoders announce again (a discontinuity) at the rotated size.
#[test]
fn a_restart_hands_the_ladder_back_and_it_resumes_with_new_processing() {
    let source = source::generated(320, 180, 30, 2, 30).unwrap();
    let config = config(vec![rung(180, 300, VideoCodec::H264, None)]);
    let (mut input_tx, input_rx) = unit_channel(8192);
    let (outputs, renditions) = Outputs::for_rungs(&config.rungs, 8192).unwrap();
    let consumers = consume(&config, renditions);
    let pipeline = Pipeline::start(config.clone(), input_rx, outputs).unwrap();
    let mut events = source.events.iter();
    let mut fed_video = 0;
    // Half the source, then the restart (seen at the next input event).
    while fed_video < 30 {
        match events.next().expect("the source has 60 frames") {
            StreamEvent::Tracks(t) => input_tx.blocking_send_tracks(t.clone()).unwrap(),
            StreamEvent::Unit(u) => {
                fed_video += usize::from(u.kind == TrackKind::Video);
                input_tx.send_unit(u.clone()).unwrap();
            }
        }
    }
    // The first half goes through the first configuration before the restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pipeline.stats().decoded_frames < 25 {
        assert!(std::time::Instant::now() < deadline, "the first half was not decoded");
        std::thread::sleep(Duration::from_millis(5));
    }
    pipeline.restart();
    let mut pipeline = pipeline;
    let mut next = events.clone();
    let mut polls = 0;
    let resume = loop {
        if let Some(StreamEvent::Unit(u)) = next.next() {
            input_tx.send_unit(u.clone()).unwrap();
        }
        polls += 1;
        assert!(polls < 5000, "no Restartable event");
        match pipeline_event(&mut pipeline) {
            Ok(PipelineEvent::Restartable { resume }) => break resume,
            Ok(PipelineEvent::Configured { .. } | PipelineEvent::Graph { .. }) | Err(_) => {}
            Ok(other) => panic!("{other:?}"),
        }
    };
    assert_eq!(resume.outputs.names().collect::<Vec<_>>(), ["180p"], "the output handed back");
    let turned: media::PictureProcessing = serde_json::from_str(r#"{"rotate":"90"}"#).unwrap();
    let resumed = Pipeline::resume(PipelineConfig { picture: turned, ..config }, resume).unwrap();
    for event in next {
        if let StreamEvent::Unit(u) = event {
            input_tx.send_unit(u.clone()).unwrap();
        }
    }
    drop(input_tx);
    run_to_finish(resumed);
    let received: Vec<Received> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    let sizes: Vec<_> = received[0].tracks.iter().map(|t| t[0].resolution().unwrap()).collect();
    assert_eq!(sizes, [(320, 180), (102, 180)], "announced again, turned (180 lines of a 180x320 picture)");
    assert!(received[0].video_pts.windows(2).all(|w| w[0] < w[1]), "timestamps keep increasing across the restart");
}
