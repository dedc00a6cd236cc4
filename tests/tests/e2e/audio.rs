//! Audio that is not AAC end to end: the real `ffmpeg` program publishes
//! 640x360 H.264 with MP3 (or G.711 A-law) audio over RTMP; the appliance
//! decodes it once and encodes it once to AAC-LC in front of both passthrough
//! and the ladder. Every variant's segments must carry AAC-LC that decodes
//! without an error, lasts as long as the video and starts with it.

use std::collections::HashMap;
use std::path::Path;

use appliance::state::NewChannel;
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec};
use support::{Publish, PublishAudio, TestAppliance, attributes, finish, have_ffmpeg, probe};

/// Seconds each test publishes.
const SECONDS: f64 = 6.0;
/// Largest difference between the audio's and the video's duration in a variant.
const MAX_DURATION_GAP: f64 = 0.2;
/// Largest distance between the first audio and the first video timestamp.
const MAX_START_GAP: f64 = 0.1;

/// A ladder channel of two H.264 rungs on the CPU.
fn ladder_channel(app: &TestAppliance, name: &str) -> appliance::state::Channel {
    let rungs = [(360, 800), (240, 400)]
        .into_iter()
        .map(|(height, bitrate_kbps)| RenditionSpec::h264(height, bitrate_kbps))
        .collect();
    let new = NewChannel {
        name: name.to_string(),
        latency_mode: LatencyMode::UltraLow,
        output: ChannelOutput::Ladder { ladder: Ladder { rungs, include_source: false } },
        encoder_policy: EncoderPolicy::Software,
        ..NewChannel::default()
    };
    app.appliance.store.create_channel(new, true).expect("ladder channel created")
}

/// What ffprobe says about one stream of a file.
#[derive(Debug, Default)]
struct Stream {
    codec: String,
    profile: String,
    sample_rate: u32,
    channels: u32,
    /// First presentation time and the end of the last packet, in seconds.
    first: f64,
    end: f64,
}

impl Stream {
    fn duration(&self) -> f64 {
        self.end - self.first
    }
}

/// Streams by type ("audio", "video") with their packets' extent.
fn ffprobe_streams(file: &Path) -> HashMap<String, Stream> {
    let entries =
        "stream=index,codec_type,codec_name,profile,sample_rate,channels:packet=stream_index,pts_time,duration_time";
    let json = support::ffprobe_json(file, entries, &[]);
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let mut by_index = HashMap::new();
    for s in json["streams"].as_array().expect("streams") {
        let stream = Stream {
            codec: s["codec_name"].as_str().unwrap_or("?").to_string(),
            profile: s["profile"].as_str().unwrap_or("").to_string(),
            sample_rate: s["sample_rate"].as_str().and_then(|r| r.parse().ok()).unwrap_or(0),
            channels: s["channels"].as_u64().unwrap_or(0) as u32,
            first: f64::MAX,
            end: f64::MIN,
        };
        by_index.insert(s["index"].as_u64().unwrap(), (s["codec_type"].as_str().unwrap().to_string(), stream));
    }
    for p in json["packets"].as_array().expect("packets") {
        let (_, stream) = by_index.get_mut(&p["stream_index"].as_u64().unwrap()).unwrap();
        let (Some(pts), Some(duration)) = (number(&p["pts_time"]), number(&p["duration_time"])) else { continue };
        stream.first = stream.first.min(pts);
        stream.end = stream.end.max(pts + duration);
    }
    by_index.into_values().collect()
}

/// Publishes `audio` to `channel`, then checks every variant: AAC-LC at
/// `rate` Hz mono, decodable, as long as the video and starting with it.
async fn publish_and_check(app: &TestAppliance, channel: &appliance::state::Channel, audio: PublishAudio, rate: u32) {
    let name = &channel.name;
    let publisher = Publish { seconds: SECONDS, audio_codec: audio, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    app.media_playlist_path(name, None).await;
    let (_, master) = app.get_text(&format!("/hls/{name}/index.m3u8")).await;
    let variants: Vec<(String, String)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter_map(|(inf, uri)| Some((inf.strip_prefix("#EXT-X-STREAM-INF:")?.to_string(), uri.to_string())))
        .collect();
    assert!(!variants.is_empty(), "{name}: no variants in\n{master}");
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    let dir = tempfile::tempdir().unwrap();
    for (inf, uri) in &variants {
        let codecs = &attributes(inf)["CODECS"];
        assert!(codecs.ends_with(",mp4a.40.2"), "{name} {uri}: CODECS {codecs}");
        let path = format!("/hls/{name}/{uri}");
        let ended = app.playlist_until(&path, |p| p.ended).await;
        let file = dir.path().join(format!("{}.mp4", uri.replace('/', "_")));
        app.download_rendition(&path, &ended, &file).await;
        let found = probe(&file);
        assert!(found.errors.is_empty(), "{name} {uri}: decode errors: {}", found.errors);
        assert_eq!(found.codecs, ["h264", "aac"], "{name} {uri}");
        let streams = ffprobe_streams(&file);
        let (video, audio) = (&streams["video"], &streams["audio"]);
        assert_eq!(
            (audio.codec.as_str(), audio.profile.as_str(), audio.sample_rate, audio.channels),
            ("aac", "LC", rate, 1),
            "{name} {uri}"
        );
        assert!(
            (audio.duration() - video.duration()).abs() <= MAX_DURATION_GAP,
            "{name} {uri}: {:.3} s of audio for {:.3} s of video",
            audio.duration(),
            video.duration()
        );
        assert!(
            (audio.first - video.first).abs() <= MAX_START_GAP,
            "{name} {uri}: audio starts at {:.3} s, video at {:.3} s",
            audio.first,
            video.first
        );
        assert!(video.duration() > SECONDS - 1.5, "{name} {uri}: only {:.3} s of video", video.duration());
        eprintln!(
            "{name} {uri}: audio {}..{} s, video {}..{} s, {} audio frames",
            audio.first, audio.end, video.first, video.end, found.audio_frames
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_is_transcoded_to_aac_for_passthrough() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("mp3-pass", LatencyMode::UltraLow);
    publish_and_check(&app, &channel, PublishAudio::Mp3, 44_100).await;
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp3_is_transcoded_once_for_every_rung_of_a_ladder() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = ladder_channel(&app, "mp3-ladder");
    publish_and_check(&app, &channel, PublishAudio::Mp3, 44_100).await;
    app.appliance.shutdown().await;
}

/// Debian 12's ffmpeg 5.1 sends G.711 A-law in FLV (sound format 7, 8 kHz mono).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_is_transcoded_to_aac_for_passthrough() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("alaw-pass", LatencyMode::UltraLow);
    publish_and_check(&app, &channel, PublishAudio::G711ALaw, 8_000).await;
    app.appliance.shutdown().await;
}
