//! Never off air: a channel with a backup stream key, two real `ffmpeg`
//! publishers on its two keys, and hls.js in Chromium watching. Killing the
//! primary puts the backup on air (at its next keyframe, after the failover
//! time); a restarted primary goes back on air once it has delivered
//! steadily for the return time; with both killed the slate keeps the output
//! going for the grace time, then the session ends with ENDLIST. Every
//! switch is a `session.input_switched` event. Ladder and passthrough
//! channels (a passthrough backup of another picture size: a discontinuity
//! with a new init, which ffprobe decodes on both sides).
//!
//! Reported (stderr): the output's gap at each switch (the longest time
//! between two new parts in the playlist around it) and the stalls hls.js saw.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::live::events::{LiveEvent, SessionEvent};
use appliance::state::{EventType, NewChannel, OnAir, SwitchReason};
use media::{ChannelOutput, Ladder, LatencyMode, RenditionSpec, VideoCodec};
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, eventually, have_ffmpeg};
use tokio::sync::broadcast;

/// Short failover times, so the test runs in well under a minute per channel.
const SWITCH_AFTER_MS: u64 = 1000;
const RETURN_AFTER_MS: u64 = 4000;
const SLATE_SECONDS: u64 = 4;
/// The publishers' GOP (one keyframe a second: `Publish` sets `-g` to the frame rate).
const GOP: Duration = Duration::from_secs(1);
/// Slack for this noisy, shared machine on top of the failover time and a GOP.
const SLACK: Duration = Duration::from_secs(6);
/// Seconds hls.js watches (through both switches).
const WATCH_SECONDS: u64 = 22;

async fn start_appliance() -> TestAppliance {
    if std::env::var("FAILOVER_LOG").is_ok() {
        appliance::logging::init();
    }
    TestAppliance::start_with(|config| {
        config.failover.switch_after_ms = SWITCH_AFTER_MS;
        config.failover.return_after_ms = RETURN_AFTER_MS;
        config.failover.slate_seconds = SLATE_SECONDS;
    })
    .await
}

/// Records when the media playlist at `path` lists a new part, until dropped.
struct PartClock {
    seen: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PartClock {
    fn start(app: &TestAppliance, path: &str) -> PartClock {
        let (http, url) = (app.http.clone(), app.url(path));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut last = None;
            loop {
                if let Ok(response) = http.get(&url).send().await
                    && let Ok(text) = response.text().await
                    && text.starts_with("#EXTM3U")
                {
                    let part = MediaPlaylist::parse(&text).last_part();
                    if part != last {
                        last = part;
                        record.lock().unwrap().push(Instant::now());
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        PartClock { seen, task }
    }

    /// The longest time without a new part between `from` and `to`.
    fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        let seen = self.seen.lock().unwrap();
        let times: Vec<Instant> = std::iter::once(from)
            .chain(seen.iter().copied().filter(|t| *t > from && *t < to))
            .chain(seen.iter().copied().find(|t| *t >= to))
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    /// Whether a new part appeared after `at`.
    fn part_after(&self, at: Instant) -> bool {
        self.seen.lock().unwrap().iter().any(|t| *t > at)
    }
}

impl Drop for PartClock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits for the session's switch to `to`; returns its reason and when it was seen.
async fn switched_to(
    events: &mut broadcast::Receiver<LiveEvent>,
    to: OnAir,
    limit: Duration,
) -> (SwitchReason, Instant) {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(LiveEvent { event: SessionEvent::InputSwitched { to: seen, reason, .. }, .. }) if seen == to => {
                    return (reason, Instant::now());
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the events ended before a switch to {to}"),
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or_else(|_| panic!("no switch to {to} within {limit:?}"))
}

/// The init segment and the complete segments `group` of the playlist at `path`, concatenated and probed.
async fn probe_segments(app: &TestAppliance, path: &str, group: &[&support::Segment], file: &Path) -> support::Probe {
    use std::io::Write;
    let base = support::base(path);
    let mut out = std::fs::File::create(file).unwrap();
    let map = group[0].map.clone().expect("EXT-X-MAP");
    out.write_all(&app.get_bytes(&format!("{base}{map}")).await).unwrap();
    for segment in group {
        assert_eq!(segment.map.as_deref(), Some(map.as_str()), "one init per side of the discontinuity");
        out.write_all(&app.get_bytes(&format!("{base}{}", segment.uri.as_ref().unwrap())).await).unwrap();
    }
    drop(out);
    support::probe(file)
}

/// The whole drill on `channel` (created with a backup key); `backup_size` is the backup publisher's picture.
async fn drill(
    app: &TestAppliance,
    channel: &str,
    primary_size: &'static str,
    backup_size: &'static str,
    passthrough: bool,
) {
    let record = app.appliance.store.get(channel).unwrap().unwrap();
    let backup_key = record.backup_stream_key.clone().expect("a backup key");
    let mut events = app.appliance.live.registry().subscribe();
    let long = Publish { seconds: 300.0, size: primary_size, ..Publish::default() };
    let mut primary = long.start(&app.rtmp_url(&record.stream_key));
    let path = app.media_playlist_path(channel, None).await;
    // The backup joins the session the primary started (the first publisher's input goes on air).
    let backup_publish = Publish { size: backup_size, ..long.clone() };
    let mut backup = backup_publish.start(&app.rtmp_url(&backup_key));

    let clock = PartClock::start(app, &path);
    let both = eventually(STEP_TIMEOUT, || async {
        let entry = app.appliance.live.registry().get(channel)?;
        let (on_air, _, inputs) = entry.inputs.figures(Instant::now());
        (on_air == Some(OnAir::Primary) && inputs.len() == 2 && inputs.iter().all(|i| i.units > 0)).then_some(inputs)
    })
    .await
    .expect("the primary on air with the backup connected and read");
    assert!(both[0].on_air && !both[1].on_air, "{both:?}");

    // hls.js watches through both switches.
    let player = support::browser_driver("player", &[]).map(|dir| {
        let (origin, channel) = (app.url(""), channel.to_string());
        tokio::spawn(async move {
            let args = [origin.as_str(), channel.as_str(), &WATCH_SECONDS.to_string(), "hlsjs"];
            let limit = STEP_TIMEOUT * 2 + Duration::from_secs(WATCH_SECONDS);
            support::run_browser_script(&dir.join("play.mjs"), &args, limit).await
        })
    });
    tokio::time::sleep(Duration::from_secs(5)).await; // the player starts and buffers

    // The primary dies: the backup within the failover time and one GOP.
    let killed = Instant::now();
    primary.start_kill().unwrap();
    let _ = primary.wait().await;
    let limit = Duration::from_millis(SWITCH_AFTER_MS) + GOP + SLACK;
    let (reason, at) = switched_to(&mut events, OnAir::Backup, limit).await;
    assert_eq!(reason, SwitchReason::Disconnected);
    eventually(STEP_TIMEOUT, || async { clock.part_after(at + Duration::from_millis(500)).then_some(()) })
        .await
        .expect("the playlist goes on with the backup");
    let failover_gap = clock.longest_gap(killed, at + Duration::from_millis(500));
    eprintln!(
        "failover {channel}: switch {:.0} ms after the kill, output gap {:.0} ms",
        (at - killed).as_secs_f64() * 1000.0,
        failover_gap.as_secs_f64() * 1000.0
    );

    // The primary returns: back on air after delivering steadily for the return time.
    let restarted = Instant::now();
    primary = long.start(&app.rtmp_url(&record.stream_key));
    let limit = Duration::from_millis(RETURN_AFTER_MS) + GOP + SLACK + Duration::from_secs(5);
    let (reason, back) = switched_to(&mut events, OnAir::Primary, limit).await;
    assert_eq!(reason, SwitchReason::PrimaryReturned);
    assert!(back - restarted >= Duration::from_millis(RETURN_AFTER_MS), "not before the return time");
    eventually(STEP_TIMEOUT, || async { clock.part_after(back + Duration::from_millis(500)).then_some(()) })
        .await
        .expect("the playlist goes on with the primary");
    let return_gap = clock.longest_gap(back - Duration::from_millis(500), back + Duration::from_millis(500));
    eprintln!("failover {channel}: return output gap {:.0} ms", return_gap.as_secs_f64() * 1000.0);

    let playlist = app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.uri.is_some()).count() >= 2).await;
    assert!(!playlist.ended, "no ENDLIST through the switches");
    if passthrough {
        // The backup's picture differs: a discontinuity with its own init, each side decoding.
        let complete: Vec<&support::Segment> = playlist.segments.iter().filter(|s| s.uri.is_some()).collect();
        let cut = complete.iter().position(|s| s.discontinuity).expect("a discontinuity at the switch");
        assert!(cut > 0, "segments before the switch are listed");
        let dir = tempfile::tempdir().unwrap();
        let before = probe_segments(app, &path, &complete[..cut], &dir.path().join("before.mp4")).await;
        let after_end =
            complete[cut..].iter().skip(1).position(|s| s.discontinuity).map_or(complete.len(), |i| cut + 1 + i);
        let after = probe_segments(app, &path, &complete[cut..after_end], &dir.path().join("after.mp4")).await;
        let size = |s: &str| s.split_once('x').map(|(w, h)| (w.parse().unwrap(), h.parse().unwrap())).unwrap();
        assert_eq!((before.width, before.height), size(primary_size), "{before:?}");
        assert_eq!((after.width, after.height), size(backup_size), "{after:?}");
        assert!(before.errors.is_empty() && after.errors.is_empty(), "decodes: {before:?} {after:?}");
        assert!(after.video_frames > 0 && after.audio_frames > 0, "{after:?}");
    }

    if let Some(player) = player {
        let report = player.await.expect("the player task");
        let hls = &report["players"][0];
        eprintln!("failover {channel}: hls.js stalls through two switches: {} ({})", hls["stalls"], hls["stalls_at"]);
        assert_eq!(hls["player_errors"], serde_json::json!([]), "{hls}");
        assert_eq!(hls["http_errors"], serde_json::json!([]), "{hls}");
        let played = hls["played_seconds"].as_f64().unwrap();
        assert!(played >= 0.5 * hls["wall_seconds"].as_f64().unwrap(), "playback went on: {hls}");
    }

    // Both die: the slate keeps the output going for the grace time, then the end.
    let _ = backup.start_kill();
    let _ = primary.start_kill();
    let (_, slate) = switched_to(&mut events, OnAir::Slate, Duration::from_millis(SWITCH_AFTER_MS) + SLACK).await;
    eventually(STEP_TIMEOUT, || async { clock.part_after(slate + Duration::from_secs(2)).then_some(()) })
        .await
        .expect("the slate's parts go on the playlist");
    let ended = app.playlist_until(&path, |p| p.ended).await;
    assert!(slate.elapsed() >= Duration::from_secs(SLATE_SECONDS), "not before the grace time");
    assert!(!ended.segments.is_empty());

    // Every switch is in the outbox, for webhooks.
    let switches: Vec<_> = app
        .appliance
        .store
        .list_events(None, 500)
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.kind == EventType::SessionInputSwitched && e.channel == channel)
        .collect();
    // To the backup, back to the primary, to the slate. The two kills are not
    // one instant: when the primary's end is seen first, the backup (still
    // connected for a few milliseconds) goes on air before the slate does.
    let ons: Vec<(OnAir, OnAir)> = switches
        .iter()
        .map(|e| match &e.snapshot {
            appliance::state::Snapshot::InputSwitched(s) => (s.from, s.to),
            other => panic!("an input switch's snapshot: {other:?}"),
        })
        .collect();
    let expected = [(OnAir::Primary, OnAir::Backup), (OnAir::Backup, OnAir::Primary)];
    assert!(ons.len() == 3 || ons.len() == 4, "{switches:?}");
    assert_eq!(ons[..2], expected, "{switches:?}");
    assert_eq!(ons.last().map(|(_, to)| *to), Some(OnAir::Slate), "{switches:?}");
    if ons.len() == 4 {
        assert_eq!(ons[2], (OnAir::Primary, OnAir::Backup), "only the race between the two kills: {switches:?}");
    }
    drop(clock);
}

fn with_backup(new: NewChannel) -> NewChannel {
    NewChannel { backup: true, ..new }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_channel_fails_over_to_its_backup_and_back_without_a_discontinuity() {
    if !have_ffmpeg() {
        return;
    }
    let app = start_appliance().await;
    let rungs = vec![RenditionSpec {
        height: 144,
        bitrate_kbps: 300,
        codec: VideoCodec::H264,
        max_fps: None,
        when: Default::default(),
    }];
    let new = NewChannel {
        name: "ladder".into(),
        latency_mode: LatencyMode::UltraLow,
        output: ChannelOutput::Ladder { ladder: Ladder { rungs, include_source: false } },
        encoder_policy: media::EncoderPolicy::Software,
        ..NewChannel::default()
    };
    app.appliance.store.create_channel(with_backup(new), true).unwrap();
    drill(&app, "ladder", "320x180", "320x180", false).await;
    let path = app.media_playlist_path("ladder", None).await;
    let (_, text) = app.get_text(&path).await;
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "the ladder's timeline is continuous: {text}");
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_channel_fails_over_to_a_backup_of_another_size() {
    if !have_ffmpeg() {
        return;
    }
    let app = start_appliance().await;
    let new = NewChannel { name: "pass".into(), latency_mode: LatencyMode::UltraLow, ..NewChannel::default() };
    app.appliance.store.create_channel(with_backup(new), true).unwrap();
    drill(&app, "pass", "320x180", "256x144", true).await;
    app.appliance.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publish_on_the_same_key_is_refused_and_a_channel_without_backup_takes_one_publisher() {
    if !have_ffmpeg() {
        return;
    }
    let app = start_appliance().await;
    let plain = app.add_channel("plain", LatencyMode::UltraLow);
    let publish = Publish { seconds: 30.0, ..Publish::default() };
    let _first = publish.start(&app.rtmp_url(&plain.stream_key));
    app.media_playlist_path("plain", None).await;
    let second = publish.start(&app.rtmp_url(&plain.stream_key));
    let (ok, stderr) = support::finish(second).await;
    assert!(!ok, "the second publisher on a live channel is refused: {stderr}");
    let entry = app.appliance.live.registry().get("plain").expect("still live");
    assert_eq!(entry.inputs.figures(Instant::now()).2.len(), 1, "one input");
    app.appliance.shutdown().await;
}
