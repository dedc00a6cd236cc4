//! The reference nginx edge (`packager/edge/nginx.conf`) in front of the
//! appliance's origin: LL-HLS rules hold through the cache, hls.js plays
//! through it, and the origin answers each resource once however many
//! players ask (request collapsing), counted on the origin side.

use std::time::Duration;

use media::LatencyMode;
use support::edge::{CountingOrigin, Edge};
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, base, have_ffmpeg, have_tool};

/// Players watching through the edge at once.
const PLAYERS: usize = 3;
/// Seconds they watch.
const WATCH_SECONDS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_hls_through_the_reference_nginx_edge() {
    if !have_ffmpeg() || !have_tool("nginx", "-v", "apt install nginx; scripts/deps.sh installs it") {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = app.add_channel("edge", LatencyMode::UltraLow);
    let origin = CountingOrigin::start(&app).await;
    let edge = Edge::start(origin.addr).await;
    let publisher = Publish { seconds: (WATCH_SECONDS + 40) as f64, ..Publish::default() }
        .start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("edge", None).await;
    let at_edge = |p: &str| edge.url(p);

    // The hinted part and the playlist that lists it, through the cache, held until ready.
    let mut playlist = app.playlist_until(&path, |p| p.preload_hint.is_some()).await;
    for _ in 0..10 {
        let hint = playlist.preload_hint.clone().expect("a live playlist has a preload hint");
        let (msn, index) = hint.trim_start_matches("part").trim_end_matches(".m4s").split_once('.').unwrap();
        let (part_url, blocking_url) =
            (at_edge(&format!("{}{hint}", base(&path))), at_edge(&format!("{path}?_HLS_msn={msn}&_HLS_part={index}")));
        let (part, blocking) = tokio::join!(app.get(&part_url), app.get(&blocking_url));
        assert_eq!(part.status(), 200, "hinted {hint} through the edge");
        assert_eq!(part.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(blocking.status(), 200);
        assert_eq!(blocking.headers()["cache-control"], "public, max-age=6");
        assert_eq!(blocking.headers()["access-control-allow-origin"], "*");
        playlist = MediaPlaylist::parse(&blocking.text().await.unwrap());
        playlist.assert_ll_hls_rules();
        assert!(playlist.segments.iter().flat_map(|s| &s.parts).any(|p| p.uri == hint), "{hint} listed");
    }
    // A part asked for before it exists (not the hinted one) is 404, and that 404 is not
    // cached: the same URL through the edge gets the part once it is made.
    // The next segment's second part: two parts or more ahead, and made whatever
    // the keyframe cadence (a part two ahead in this segment may never be).
    let (msn, _) = playlist.last_part().unwrap();
    let early = format!("{}part{}.1.m4s", base(&path), msn + 1);
    assert_eq!(app.get(&at_edge(&early)).await.status(), 404);
    app.playlist_until(&path, |p| p.last_part().is_some_and(|l| l >= (msn + 1, 1))).await;
    let later = app.get(&at_edge(&early)).await;
    assert_eq!(later.status(), 200, "a cached 404 hid a part that exists");
    // Directives far ahead: 400 at once, every time (not cached either).
    let far = at_edge(&format!("{path}?_HLS_msn={}", msn + 5));
    for _ in 0..2 {
        let response = tokio::time::timeout(Duration::from_secs(2), app.http.get(&far).send())
            .await
            .expect("refused at once through the edge")
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_ne!(response.headers()["x-cache-status"], "HIT");
    }
    let far_answered = origin.answered().iter().filter(|(uri, _)| far.ends_with(uri.as_str())).count();
    assert_eq!(far_answered, 2, "each 400 came from the origin");

    // Several hls.js players through the edge.
    let (origin_before, edge_before) = (origin.answered().len(), edge.access_log().lines().count());
    let url = at_edge("/?channel=edge");
    let seconds = WATCH_SECONDS.to_string();
    let args: Vec<&str> = std::iter::once(seconds.as_str()).chain(std::iter::repeat_n(url.as_str(), PLAYERS)).collect();
    let limit = STEP_TIMEOUT + Duration::from_secs(WATCH_SECONDS);
    let report = support::run_browser_script(&player.join("players.mjs"), &args, limit).await;
    // The edge's access log stays for a look after the run (cache status and timings per request).
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("edge-access.log"), edge.access_log()).unwrap();
    let players = report["players"].as_array().expect("players");
    assert_eq!(players.len(), PLAYERS);
    for p in players {
        assert_eq!(p["fatal_errors"], serde_json::json!([]), "{p}");
        assert_eq!(p["http_errors"], serde_json::json!([]), "{p}");
        assert_eq!(p["console_errors"], serde_json::json!([]), "{p}");
        let played = p["played_seconds"].as_f64().unwrap();
        let wall = p["wall_seconds"].as_f64().unwrap();
        // Half the wall time at least: three decoders share a small, busy test machine.
        assert!(played >= 0.5 * wall, "playback advanced {played:.1} s in {wall:.1} s: {p}");
    }

    // Request collapsing, counted at the origin: each part, segment, init and
    // blocking playlist was answered once however many players fetched it.
    let counts = origin.counts(200);
    let collapsible = |uri: &str| uri.ends_with(".m4s") || uri.ends_with(".mp4") || uri.contains("_HLS_msn=");
    let repeated: Vec<_> = counts.iter().filter(|(uri, n)| collapsible(uri) && **n > 1).collect();
    let log = edge.access_log();
    let log_of = |uri: &str| log.lines().filter(|l| l.contains(uri)).collect::<Vec<_>>().join("\n");
    assert!(
        repeated.is_empty(),
        "the origin answered these more than once: {repeated:?}\nat the edge:\n{}",
        repeated.iter().map(|(uri, _)| log_of(uri)).collect::<Vec<_>>().join("\n")
    );
    let origin_requests = origin.answered()[origin_before..].iter().filter(|(uri, _)| collapsible(uri)).count();
    let edge_requests = edge
        .access_log()
        .lines()
        .skip(edge_before)
        .filter(|l| l.contains("/hls/") && (l.contains(".m4s ") || l.contains(".mp4 ") || l.contains("_HLS_msn=")))
        .count();
    assert!(edge_requests > origin_requests, "players made {edge_requests} requests, the origin saw {origin_requests}");
    let latencies: Vec<String> =
        players.iter().map(|p| format!("{:.2}", p["latency_p50"].as_f64().unwrap_or(0.0))).collect();
    eprintln!(
        "edge: {PLAYERS} players, media and blocking-playlist requests at the edge {edge_requests}, at the origin \
         {origin_requests}; player latency p50 {latencies:?} s; stalls {:?}",
        players.iter().map(|p| p["stalls"].as_u64().unwrap_or(0)).collect::<Vec<_>>()
    );
    drop(publisher);
    app.appliance.shutdown().await;
}
