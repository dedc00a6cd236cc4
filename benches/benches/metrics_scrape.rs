//! One `/metrics` scrape with 100 live channels, against the REST API's JSON
//! of the same channels' live figures (what `GET /channels` serialises),
//! measured in the same run.
//!
//! Each channel is a session whose input meter was fed 8 s of a real 720p
//! publish (the recording's FLV tags, demuxed, with their arrival times
//! spread as they were published), with three renditions packaged from the
//! same recording (one packaged rendition shared, as reading it costs the
//! same) and 1,000 part latencies in its histogram. The scrape renders the
//! text format from them (`Gathered::render`: meters summed, histograms
//! read, labels escaped); the reference serialises each session's
//! `LiveFigures` to JSON. The budget is a scrape under 50 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance::live::figures::SessionFigures;
use appliance::metrics::Gathered;
use benches::{packaged, read_flv, recording, skip_without_ffmpeg, target_dir};
use media::{Arrival, StreamEvent};
use packager::LiveStream;

const CHANNELS: usize = 100;
const RUNS: usize = 30;
const FED_MS: u32 = 8_000;

fn main() {
    if skip_without_ffmpeg() {
        return;
    }
    let tags = read_flv(&recording(&target_dir()));
    let started = Instant::now() - Duration::from_millis(FED_MS as u64 + 1_000);
    // Demux once; every channel's meter is fed the same units.
    let mut demuxer = ingest::Demuxer::default();
    let mut events = Vec::new();
    for tag in tags.iter().filter(|t| t.timestamp < FED_MS) {
        let arrival = Arrival { instant: started + Duration::from_millis(tag.timestamp as u64), ..Arrival::now() };
        match tag.kind {
            9 => demuxer.push_video(tag.timestamp, &tag.data, arrival, &mut events),
            8 => demuxer.push_audio(tag.timestamp, &tag.data, arrival, &mut events),
            _ => {}
        }
    }
    let rendition = packaged(&tags, "720p");
    let mut gathered = Gathered::default();
    for n in 0..CHANNELS {
        let channel = format!("channel-{n:03}");
        let figures = Arc::new(SessionFigures::new(&channel, &format!("session-{n}"), true, started));
        for event in &events {
            match event {
                StreamEvent::Tracks(tracks) => figures.announce(tracks),
                StreamEvent::Unit(unit) => figures.record(unit),
            }
        }
        gathered.sessions.push((figures, 3));
        let renditions = ["1080p", "720p", "480p"].map(|_| rendition.clone()).to_vec();
        let stream = Arc::new(LiveStream::new(channel, format!("session-{n}"), renditions));
        for i in 0..1_000u64 {
            stream.latency.record(Duration::from_micros(20_000 + i * 300));
        }
        gathered.streams.push(stream);
    }

    let (mut scrapes, mut references) = (Vec::new(), Vec::new());
    let (mut scrape_bytes, mut reference_bytes) = (0, 0);
    for _ in 0..RUNS {
        let t = Instant::now();
        let text = gathered.render(Instant::now());
        scrapes.push(t.elapsed());
        scrape_bytes = text.len();
        let t = Instant::now();
        let now = Instant::now();
        let json: Vec<String> = gathered
            .sessions
            .iter()
            .map(|(f, viewers)| serde_json::to_string(&f.figures(*viewers, now)).unwrap())
            .collect();
        references.push(t.elapsed());
        reference_bytes = json.iter().map(String::len).sum();
    }
    let scrape = benches::median(scrapes);
    let reference = benches::median(references);
    let text = gathered.render(Instant::now());
    assert!(text.contains("appliance_input_media_bytes_per_second{channel=\"channel-099\"}"), "a fed channel");
    let ratio = scrape.as_secs_f64() / reference.as_secs_f64();
    println!(
        "metrics scrape: {CHANNELS} channels x 3 renditions, median of {RUNS}: {:.2} ms ({} bytes, {} lines); \
         reference (the API's live figures as JSON): {:.2} ms ({reference_bytes} bytes); ratio {ratio:.2}x",
        scrape.as_secs_f64() * 1e3,
        scrape_bytes,
        text.lines().count(),
        reference.as_secs_f64() * 1e3,
    );
    println!(
        "{}",
        serde_json::json!({"bench": "metrics_scrape", "channels": CHANNELS, "scrape_ms": scrape.as_secs_f64() * 1e3,
            "reference_ms": reference.as_secs_f64() * 1e3, "ratio": ratio, "scrape_bytes": scrape_bytes})
    );
}
