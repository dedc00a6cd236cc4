//! RFC 8216bis rules an LL-HLS conformance checker looks at, with the real
//! `ffmpeg` program publishing and a real HTTP client acting as a player that
//! follows the preload hints (as Shaka Player and Safari do); hinted parts
//! are answered while they are made, and are then the parts as published.

use std::time::Duration;

use media::LatencyMode;
use support::{MediaPlaylist, Publish, TestAppliance, base, finish, have_ffmpeg};

/// `partM.N.m4s` as (M, N).
fn part_numbers(uri: &str) -> (u64, u32) {
    let (msn, index) = uri.trim_start_matches("part").trim_end_matches(".m4s").split_once('.').expect("partM.N.m4s");
    (msn.parse().unwrap(), index.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hinted_part_is_served_and_far_directives_are_refused() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("hints", LatencyMode::UltraLow);
    let publisher = Publish { seconds: 12.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("hints", None).await;
    let mut playlist = app.playlist_until(&path, |p| p.preload_hint.is_some()).await;

    // Follow the hints like a player: request the hinted part and the playlist
    // that will list it at once; both are held until the part exists.
    let (mut served, mut first_of_segment, mut streamed_parts) = (0, 0, 0);
    while served < 30 {
        let hint = playlist.preload_hint.clone().expect("a live playlist has a preload hint");
        let (msn, index) = part_numbers(&hint);
        let part_url = format!("{}{hint}", base(&path));
        let blocking = format!("{path}?_HLS_msn={msn}&_HLS_part={index}");
        let (part, (status, text)) = tokio::join!(app.get(&part_url), app.get_text(&blocking));
        assert_eq!(part.status(), 200, "the hinted {hint} was not served");
        // Answered before it was made (chunked transfer, no length), it is the part as published.
        let streamed = part.headers().get("content-length").is_none();
        let bytes = part.bytes().await.expect("the hinted part's body");
        let published = app.get(&part_url).await;
        assert!(published.headers().get("content-length").is_some(), "{hint} is whole by now");
        assert_eq!(bytes, published.bytes().await.unwrap(), "{hint} as streamed and as published");
        streamed_parts += usize::from(streamed);
        assert_eq!(status, 200, "{blocking}: {text}");
        playlist = MediaPlaylist::parse(&text);
        playlist.assert_ll_hls_rules();
        let listed = playlist.segments.iter().find(|s| s.msn == msn).and_then(|s| s.parts.get(index as usize));
        assert!(listed.is_some_and(|p| p.uri == hint), "the playlist lists the hinted {hint} where it said:\n{text}");
        served += 1;
        first_of_segment += usize::from(index == 0);
    }
    assert!(first_of_segment >= 3, "hints crossed {first_of_segment} segment boundaries");
    // Program date-times step exactly with the durations (players that place segments by them see no gaps).
    let complete: Vec<_> = playlist.segments.iter().filter(|s| s.duration.is_some()).collect();
    assert!(complete.len() >= 3);
    for pair in complete.windows(2) {
        let millis =
            |s: &support::Segment| pdt_millis(s.program_date_time.as_deref().expect("EXT-X-PROGRAM-DATE-TIME"));
        let step = (millis(pair[1]) - millis(pair[0])) as f64 / 1000.0;
        let duration = pair[0].duration.unwrap();
        assert!(
            (step - duration).abs() <= 0.0015,
            "segment {}: EXTINF {duration} but the next PDT is {step} s later",
            pair[0].msn
        );
    }
    assert!(streamed_parts > 0, "hinted parts are answered while they are made");

    // Directives far past the live edge are refused at once, not held.
    let last = playlist.segments.iter().rev().find(|s| s.uri.is_some()).expect("a complete segment").msn;
    let (live_msn, live_part) = playlist.last_part().unwrap();
    for query in [format!("_HLS_msn={}", last + 5), format!("_HLS_msn={live_msn}&_HLS_part={}", live_part + 25)] {
        let url = app.url(&format!("{path}?{query}"));
        let response = tokio::time::timeout(Duration::from_secs(2), app.http.get(&url).send())
            .await
            .unwrap_or_else(|_| panic!("{query} was held instead of refused"))
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    assert!(finish(publisher).await.0, "the publisher failed");
    app.appliance.shutdown().await;
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` as milliseconds of the day (enough for steps within a test).
fn pdt_millis(pdt: &str) -> i64 {
    let time = &pdt[11..23];
    let (h, m, s) = (&time[0..2], &time[3..5], &time[6..12]);
    h.parse::<i64>().unwrap() * 3_600_000
        + m.parse::<i64>().unwrap() * 60_000
        + (s.parse::<f64>().unwrap() * 1000.0).round() as i64
}
