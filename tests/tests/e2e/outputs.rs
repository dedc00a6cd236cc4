//! A live session's output ports: outputs plugged in next to the LL-HLS
//! packager while the real `ffmpeg` program publishes. One that keeps up
//! receives every unit from the keyframe it starts at; one that stalls drops
//! (counted, reported) while the packager keeps its part cadence and hls.js
//! in Chromium keeps playing without a stall.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use appliance::live::events::SessionEvent;
use appliance::live::figures::OutputState;
use appliance::live::ports::{Feed, Output, OutputRun, Reporter, Subscription};
use media::{LatencyMode, StreamEvent, TrackKind};
use support::{Publish, STEP_TIMEOUT, TestAppliance, eventually, finish, have_ffmpeg};
use tokio::sync::oneshot;

/// Seconds the player watches while the stalled output drops.
const WATCH_SECONDS: u32 = 12;

/// What the counting output saw of one track.
#[derive(Debug, Default, Clone)]
struct TrackSeen {
    units: u64,
    /// Decode times in the track's timebase, in arrival order.
    dts: Vec<i64>,
    timebase: u32,
}

/// Counts every unit of every rendition it is fed, by track kind.
struct Counting {
    seen: Arc<Mutex<Vec<(TrackKind, TrackSeen)>>>,
}

impl Output for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn subscription(&self) -> Subscription {
        Subscription::everything()
    }

    fn start(self: Box<Self>, feeds: Vec<Feed>, _: Reporter) -> OutputRun {
        Box::pin(async move {
            for mut feed in feeds {
                let mut kinds = Vec::new();
                while let Some(event) = feed.events.recv().await {
                    let mut seen = self.seen.lock().unwrap();
                    match event {
                        StreamEvent::Tracks(tracks) => {
                            kinds = tracks.iter().map(|t| (t.kind, t.timebase.0)).collect();
                            for (kind, timebase) in &kinds {
                                if !seen.iter().any(|(k, _)| k == kind) {
                                    seen.push((*kind, TrackSeen { timebase: *timebase, ..TrackSeen::default() }));
                                }
                            }
                        }
                        StreamEvent::Unit(unit) => {
                            let kind = kinds[unit.track].0;
                            let (_, track) = seen.iter_mut().find(|(k, _)| *k == kind).unwrap();
                            track.units += 1;
                            track.dts.push(unit.dts);
                        }
                    }
                }
            }
            Ok(())
        })
    }
}

/// Takes its feeds and reads nothing until released.
struct Stalled {
    release: oneshot::Receiver<()>,
}

impl Output for Stalled {
    fn name(&self) -> &str {
        "stalled"
    }

    fn subscription(&self) -> Subscription {
        Subscription::everything()
    }

    fn start(self: Box<Self>, mut feeds: Vec<Feed>, _: Reporter) -> OutputRun {
        Box::pin(async move {
            let _ = self.release.await;
            for feed in &mut feeds {
                while feed.events.recv().await.is_some() {}
            }
            Ok(())
        })
    }
}

/// Whether consecutive decode times never skip a unit: every step is at
/// most 1.5 times the track's usual step (the median).
fn contiguous(dts: &[i64]) -> Result<(), String> {
    let mut steps: Vec<i64> = dts.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.is_empty() {
        return Err("fewer than two units".into());
    }
    if let Some(back) = steps.iter().find(|s| **s <= 0) {
        return Err(format!("decode time went back or repeated (step {back})"));
    }
    let mut sorted = steps.clone();
    sorted.sort_unstable();
    let usual = sorted[sorted.len() / 2];
    steps.retain(|s| *s * 2 > usual * 3);
    match steps.first() {
        Some(gap) => Err(format!("a gap of {gap} where a unit takes {usual}: a unit is missing")),
        None => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_output_drops_alone_while_the_packager_and_hls_js_go_on() {
    if !have_ffmpeg() {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = app.add_channel("fanout", LatencyMode::UltraLow);
    let publisher = Publish { seconds: (WATCH_SECONDS + 18) as f64, fps: 25, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    let playlist = app.media_playlist_path("fanout", None).await;
    // hls.js joins a running stream (three segments in), as viewers do.
    app.playlist_until(&playlist, |p| p.segments.iter().filter(|s| s.duration.is_some()).count() >= 3).await;

    let live = &app.appliance.live;
    let mut events = live.registry().subscribe();
    let seen = Arc::new(Mutex::new(Vec::new()));
    live.attach("fanout", Box::new(Counting { seen: seen.clone() })).await.expect("the counting output plugs in");
    let (release, released) = oneshot::channel();
    live.attach("fanout", Box::new(Stalled { release: released })).await.expect("the stalled output plugs in");
    assert!(live.attach("nothing-live", Box::new(Counting { seen: seen.clone() })).await.is_err());

    // hls.js plays while the stalled output's queue fills and drops.
    let url = app.url("/?channel=fanout");
    let args = [url.as_str(), &WATCH_SECONDS.to_string()];
    let limit = STEP_TIMEOUT + Duration::from_secs(WATCH_SECONDS as u64);
    let report = support::run_browser_script(&player.join("player.mjs"), &args, limit).await;
    eprintln!("player report: {report}");
    assert_eq!(report["fatal_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    // A stalled output that held the packager back would stall the player
    // every part; one stall is what a busy 2-core test machine can cause alone.
    assert!(report["stalls"].as_u64().unwrap() <= 1, "hls.js stalled while an output was stalled: {report}");
    let played = report["played_seconds"].as_f64().unwrap();
    let wall = report["wall_seconds"].as_f64().unwrap();
    assert!(played >= 0.75 * wall, "playback advanced {played:.1} s in {wall:.1} s: {report}");

    // The stalled output dropped (counted, reported); the packager and the counting output did not.
    let outputs = eventually(STEP_TIMEOUT, || async {
        let outputs = live.registry().get("fanout")?.outputs();
        outputs.iter().any(|o| o.name == "stalled" && o.dropped_units > 0).then_some(outputs)
    })
    .await
    .expect("the stalled output's drops are counted");
    eprintln!("outputs: {outputs:?}");
    for output in &outputs {
        assert_eq!(output.state, OutputState::Running, "{output:?}");
        if output.name != "stalled" {
            assert_eq!((output.dropped_units, output.drop_episodes), (0, 0), "{output:?}");
        }
    }
    let stalled = outputs.iter().find(|o| o.name == "stalled").unwrap();
    assert!(stalled.drop_episodes >= 1, "{stalled:?}");
    let reported = eventually(STEP_TIMEOUT, || {
        let found = std::iter::from_fn(|| events.try_recv().ok()).find(|e| {
            matches!(&e.event, SessionEvent::Dropped { queue, units, .. } if queue == "output stalled" && *units > 0)
        });
        async move { found }
    })
    .await;
    assert!(reported.is_some(), "a Dropped event names the stalled output");

    // The packager kept its part cadence: parts at the target, no discontinuity, no gap.
    let now = app.playlist_until(&playlist, |p| p.segments.len() >= 3).await;
    now.assert_ll_hls_rules();
    assert!(now.segments.iter().all(|s| !s.discontinuity), "no discontinuity in the packager's output");

    release.send(()).unwrap();
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    app.playlist_until(&playlist, |p| p.ended).await;

    // Every unit from the keyframe it started at, in order, none missing.
    let seen = eventually(STEP_TIMEOUT, || async {
        let seen = seen.lock().unwrap().clone();
        (seen.len() == 2).then_some(seen)
    })
    .await
    .expect("the counting output saw video and audio");
    for (kind, track) in &seen {
        assert!(track.units > 100, "{kind:?}: {} units", track.units);
        if let Err(e) = contiguous(&track.dts) {
            panic!("{kind:?} (timebase {}): {e}", track.timebase);
        }
    }
    app.appliance.shutdown().await;
}

#[test]
fn contiguity_is_judged_on_media_time() {
    assert!(contiguous(&[0, 40, 80, 120, 160]).is_ok());
    assert!(contiguous(&[0, 33, 67, 100, 133]).is_ok(), "30 fps in milliseconds");
    assert!(contiguous(&[0, 40, 120, 160]).unwrap_err().contains("missing"));
    assert!(contiguous(&[0, 40, 40, 80]).unwrap_err().contains("back or repeated"));
    assert!(contiguous(&[0]).is_err());
}
