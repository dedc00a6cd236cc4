//! A channel's sound controls end to end: the real `ffmpeg` program publishes
//! H.264 with AAC of a known mix (a centre-panned 440 Hz tone and a 1 kHz
//! tone hard left, or a 1 kHz tone of a known loudness) to passthrough
//! channels, and the effect is measured on our output with the `ffmpeg`
//! program's `volumedetect` (gain, karaoke, fade-in) and `ebur128`
//! (loudness), while the video must pass through byte for byte; the
//! fade-out before ENDLIST when the operator stops the channel; and a new
//! gain taken live by a ladder with `?restart=now`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use support::measure::{integrated_loudness, mean_volume, video_hash};
use support::{Publish, TestAppliance, finish, have_ffmpeg};

use super::processing::ended_rendition;

/// Left: a 440 Hz tone in the centre and a 1 kHz tone panned hard left; right: the centre tone.
const MIX: &str = "aevalsrc=exprs=0.2*sin(2*PI*440*t)+0.2*sin(2*PI*1000*t)|0.2*sin(2*PI*440*t):s=48000";

/// A stereo 1 kHz tone at `lufs` (a tone of amplitude A measures 20 log10(A) LUFS).
fn tone_at(lufs: f64) -> String {
    let a = 10f64.powf(lufs / 20.0);
    format!("aevalsrc=exprs={a:.5}*sin(2*PI*1000*t)|{a:.5}*sin(2*PI*1000*t):s=48000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_controls_on_a_passthrough_channel_transcode_only_the_audio() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let (quiet, loud) = (tone_at(-38.0), tone_at(-13.0));
    let cases: [(&str, Value, &str); 6] = [
        ("sound-plain", json!({}), MIX),
        ("sound-louder", json!({"sound": {"gain_db": 6}}), MIX),
        ("sound-karaoke", json!({"sound": {"karaoke": true}}), MIX),
        ("sound-fade", json!({"sound": {"fade_in_ms": 1000}}), MIX),
        // 15 LU below and 10 LU above EBU R128's -23 LUFS.
        ("sound-quiet", json!({"sound": {"loudness": {}}}), quiet.as_str()),
        ("sound-loud", json!({"sound": {"loudness": {"target_lufs": -23}}}), loud.as_str()),
    ];
    let mut publishers = Vec::new();
    for (name, processing, audio) in &cases {
        let body = json!({"name": name, "processing": processing, "start": true});
        let key =
            app.create_channel(body).await["stream_key"].as_str().expect("a write token sees the key").to_string();
        let publish =
            Publish { seconds: 8.0, size: "320x180", audio_pattern: Some(audio.to_string()), ..Publish::default() };
        publishers.push(publish.start(&app.rtmp_url(&key)));
    }
    for publisher in publishers {
        let (ok, stderr) = finish(publisher).await;
        assert!(ok, "publisher failed: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = HashMap::new();
    for (name, _, _) in &cases {
        let file = ended_rendition(&app, name, dir.path()).await;
        let found = support::probe(&file);
        assert!(found.errors.is_empty(), "{name}: decode errors: {}", found.errors);
        assert_eq!(found.codecs, ["h264", "aac"], "{name}");
        assert_eq!((found.width, found.height), (320, 180), "{name}: the video passes through");
        files.insert(*name, file);
    }
    // The channels stay passthrough: the video is the publisher's, byte for byte, as without sound processing.
    let channel = app.get_json("/api/v1/channels/sound-louder").await;
    assert_eq!(channel["output"]["kind"], "passthrough", "{channel}");
    let plain_video = video_hash(&files["sound-plain"]);
    for name in ["sound-louder", "sound-karaoke", "sound-fade"] {
        assert_eq!(video_hash(&files[name]), plain_video, "{name}: the video is not touched");
    }

    let centre = "pan=mono|c0=c1,"; // the right channel: the centre tone alone
    let left = "pan=mono|c0=c0,";
    let band = |f: u32| format!("bandpass=f={f}:width_type=q:w=20,");
    let gain = mean_volume(&files["sound-louder"], centre) - mean_volume(&files["sound-plain"], centre);
    println!("gain: {gain:+.2} dB for +6 dB");
    assert!((gain - 6.0).abs() < 0.5, "+6 dB asked, {gain:+.2} dB measured");

    let centre_drop = mean_volume(&files["sound-plain"], &format!("{left}{}", band(440)))
        - mean_volume(&files["sound-karaoke"], &format!("{left}{}", band(440)));
    let side_change = mean_volume(&files["sound-karaoke"], &format!("{left}{}", band(1000)))
        - mean_volume(&files["sound-plain"], &format!("{left}{}", band(1000)));
    println!("karaoke: the centre tone {centre_drop:.1} dB lower, the side tone {side_change:+.2} dB");
    assert!(centre_drop >= 20.0, "the centre tone is only {centre_drop:.1} dB lower");
    assert!(side_change.abs() <= 1.0, "the side tone changed {side_change:+.2} dB");

    // The fade-in over its first second, in quarters, against a later second.
    let window = |file: &Path, from: f64, to: f64| mean_volume(file, &format!("{centre}atrim={from}:{to},"));
    let steady = window(&files["sound-fade"], 2.0, 3.0);
    let quarters: Vec<f64> =
        (0..4).map(|q| window(&files["sound-fade"], q as f64 * 0.25, (q + 1) as f64 * 0.25) - steady).collect();
    let plain_start = window(&files["sound-plain"], 0.0, 0.25) - window(&files["sound-plain"], 2.0, 3.0);
    println!(
        "fade-in: quarters of the first second {quarters:.1?} dB against a later second ({plain_start:+.1} dB without)"
    );
    assert!(quarters.windows(2).all(|w| w[1] > w[0]), "the level rises through the fade: {quarters:?}");
    assert!(quarters[0] < -10.0, "the first 250 ms of a 1 s fade-in are only {:.1} dB quieter", quarters[0]);
    assert!(quarters[3] > -3.0, "the last 250 ms of the fade are near full level: {:.1} dB", quarters[3]);
    assert!(plain_start.abs() < 2.0, "without a fade the level is steady: {plain_start:+.1} dB");

    // Loudness: the leveler settles within the first second, then holds the target.
    for (name, source) in [("sound-quiet", -38.0), ("sound-loud", -13.0)] {
        let (settled, whole) = (integrated_loudness(&files[name], 1.0), integrated_loudness(&files[name], 0.0));
        println!("loudness: a {source} LUFS source measures {settled:.1} LUFS from 1 s on ({whole:.1} LUFS whole)");
        assert!((settled + 23.0).abs() <= 1.0, "{name}: {settled:.1} LUFS for a -23 LUFS target");
    }
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sound_fades_out_before_endlist_when_the_operator_stops_the_channel() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let body = json!({"name": "sound-stop", "processing": {"sound": {"fade_out_ms": 1000}}, "start": true});
    let key = app.create_channel(body).await["stream_key"].as_str().expect("a write token sees the key").to_string();
    let publish = Publish { seconds: 60.0, size: "320x180", audio_pattern: Some(MIX.into()), ..Publish::default() };
    let publisher = publish.start(&app.rtmp_url(&key));
    let path = app.media_playlist_path("sound-stop", None).await;
    app.playlist_until(&path, |p| p.segments.len() >= 3).await;
    let stopped = app.write("POST", "/api/v1/channels/sound-stop/stop", None).await;
    assert!(stopped.status < 300, "{}: {:?}", stopped.status, stopped.body);
    // The publisher is cut off when the session ends.
    let _ = finish(publisher).await;
    let dir = tempfile::tempdir().unwrap();
    let file = ended_rendition(&app, "sound-stop", dir.path()).await;
    assert!(support::probe(&file).errors.is_empty());
    // Windows counted back from the end of the audio: the centre tone alone.
    let from_end =
        |from: f64, to: f64| mean_volume(&file, &format!("pan=mono|c0=c1,areverse,asetpts=N/SR/TB,atrim={from}:{to},"));
    let (last, fading, before) = (from_end(0.0, 0.2), from_end(0.7, 0.9), from_end(2.0, 3.0));
    println!(
        "fade-out: the last 200 ms at {last:.1} dB, 0.7-0.9 s before the end {fading:.1} dB, 2-3 s before {before:.1} dB"
    );
    assert!(last < before - 20.0, "the stream ends faded out: {last:.1} dB against {before:.1} dB");
    assert!(fading < before - 1.0 && fading > last + 5.0, "the level falls through the fade: {fading:.1} dB");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_takes_new_sound_processing_live_with_restart_now() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let body = json!({
        "name": "sound-ladder",
        "output": {"kind": "ladder", "ladder": {"rungs": [{"height": 180, "bitrate_kbps": 400}]}},
        "encoder_policy": "software",
        "start": true,
    });
    let key = app.create_channel(body).await["stream_key"].as_str().expect("a write token sees the key").to_string();
    let publish = Publish { seconds: 12.0, size: "320x180", audio_pattern: Some(MIX.into()), ..Publish::default() };
    let publisher = publish.start(&app.rtmp_url(&key));
    let path = app.media_playlist_path("sound-ladder", None).await;
    app.playlist_until(&path, |p| p.segments.len() >= 2).await;
    let louder = json!({"processing": {"sound": {"gain_db": 10}}});
    let refused = app.write("PATCH", "/api/v1/channels/sound-ladder", Some(louder.clone())).await;
    assert_eq!(refused.status, 409, "a live change asks for ?restart=now: {:?}", refused.body);
    let applied = app.write("PATCH", "/api/v1/channels/sound-ladder?restart=now", Some(louder)).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    // The restart is a discontinuity with a new init: one file for each side of it.
    let ended = app.playlist_until(&path, |p| p.ended).await;
    let maps: Vec<String> = ended.segments.iter().filter_map(|s| s.map.clone()).collect();
    let (first_map, last_map) = (maps[0].clone(), maps[maps.len() - 1].clone());
    assert_ne!(first_map, last_map, "a new init after the restart");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, map) in [("before", &first_map), ("after", &last_map)] {
        let file = dir.path().join(format!("{name}.mp4"));
        let mut bytes = app.get_bytes(&format!("{}{map}", support::base(&path))).await;
        for segment in ended.segments.iter().filter(|s| s.map.as_ref() == Some(map)) {
            let uri = segment.uri.as_ref().expect("complete segments only");
            bytes.extend(app.get_bytes(&format!("{}{uri}", support::base(&path))).await);
        }
        std::fs::write(&file, bytes).unwrap();
        let found = support::probe(&file);
        assert!(found.errors.is_empty(), "{name}: decode errors: {}", found.errors);
        assert_eq!(found.codecs, ["h264", "aac"], "{name}");
        files.push(file);
    }
    // The centre tone early in the session against its last seconds (after the change).
    let early = mean_volume(&files[0], "pan=mono|c0=c1,atrim=0.5:1.5,");
    let late = mean_volume(&files[1], "pan=mono|c0=c1,areverse,asetpts=N/SR/TB,atrim=0.5:2.5,");
    println!("restart=now: the ladder's audio {early:.1} dB before the change, {late:.1} dB after (+10 dB asked)");
    assert!((late - early - 10.0).abs() < 1.0, "+10 dB asked live, {:+.1} dB measured", late - early);
    app.appliance.shutdown().await;
}
