//! The session's input port (`appliance::live::input::port`) on the per-unit
//! path: a channel with its primary on air and its backup read and dropped,
//! against the reference of one input read straight from its unit channel
//! and metered (what a session did per unit before it had a port). Prints
//! nanoseconds per unit read and the ratio (reference / ours: above 1 is faster).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance::live::figures::InputMeter;
use appliance::live::input::failover::FailoverTimes;
use appliance::live::input::meters::InputMeters;
use appliance::live::input::port::{InputPort, PortEvent};
use appliance::state::InputRole;
use bytes::Bytes;
use media::{
    AacConfig, Arrival, AvcConfig, CodecConfig, EncodedUnit, StreamEvent, Timebase, TrackInfo, TrackKind, unit_channel,
};

/// Units per batch and input (about 4 s of 30 fps video with AAC).
const BATCH: usize = 256;
const BATCHES: usize = 400;

fn tracks() -> Arc<[TrackInfo]> {
    let avc = AvcConfig::from_record(Bytes::from_static(&media::test_vectors::AVCC_640X360));
    let video = TrackInfo {
        kind: TrackKind::Video,
        timebase: Timebase::VIDEO,
        codec: CodecConfig::Avc(avc.expect("an avcC record")),
        frame_rate: Some((30, 1)),
        bitrate: None,
    };
    let aac =
        AacConfig::from_asc(Bytes::from_static(&media::test_vectors::ASC_48K_STEREO)).expect("an AudioSpecificConfig");
    let audio = TrackInfo {
        kind: TrackKind::Audio,
        timebase: Timebase(48_000),
        codec: CodecConfig::Aac(aac),
        frame_rate: None,
        bitrate: None,
    };
    Arc::from(vec![video, audio])
}

/// Unit `n` of an interleaved 30 fps video / AAC stream (a keyframe a second).
fn unit(n: usize) -> EncodedUnit {
    let (kind, track, dts, keyframe) = if n % 8 < 3 {
        let frame = (n / 8 * 3 + n % 8) as i64;
        (TrackKind::Video, 0, frame * 3000, frame % 30 == 0)
    } else {
        let frame = (n / 8 * 5 + n % 8 - 3) as i64;
        (TrackKind::Audio, 1, frame * 1024, true)
    };
    EncodedUnit { track, kind, pts: dts, dts, keyframe, data: Bytes::from_static(&[0; 64]), arrival: Arrival::now() }
}

async fn ours() -> Duration {
    let peer: SocketAddr = "127.0.0.1:1935".parse().expect("an address");
    let mut port = InputPort::new("bench", FailoverTimes::default(), Arc::new(InputMeters::default()));
    let (mut primary, primary_rx) = unit_channel(BATCH * 2);
    let (mut backup, backup_rx) = unit_channel(BATCH * 2);
    port.attach(InputRole::Primary, primary_rx, peer);
    port.attach(InputRole::Backup, backup_rx, peer);
    primary.announce(tracks()).expect("announced");
    backup.announce(tracks()).expect("announced");
    let mut elapsed = Duration::ZERO;
    let mut n = 0;
    for _ in 0..BATCHES {
        for i in n..n + BATCH {
            primary.send_unit(unit(i)).expect("sent");
            backup.send_unit(unit(i)).expect("sent");
        }
        n += BATCH;
        let started = Instant::now();
        let mut units = 0;
        // Every unit of the primary comes out (the first batch: from its first keyframe); the backup's are read and dropped.
        while units < BATCH - usize::from(n == BATCH) {
            match port.next().await {
                PortEvent::Media(StreamEvent::Unit(unit)) => {
                    black_box(&unit);
                    units += 1;
                }
                PortEvent::Media(StreamEvent::Tracks(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        elapsed += started.elapsed();
    }
    elapsed / (BATCHES * BATCH * 2) as u32
}

async fn reference() -> Duration {
    let (mut tx, mut rx) = unit_channel(BATCH * 2);
    let meter = InputMeter::new(Instant::now());
    tx.announce(tracks()).expect("announced");
    let _ = rx.recv().await;
    let mut elapsed = Duration::ZERO;
    let mut n = 0;
    for _ in 0..BATCHES {
        for i in n..n + BATCH {
            tx.send_unit(unit(i)).expect("sent");
        }
        n += BATCH;
        let started = Instant::now();
        for _ in 0..BATCH {
            if let Some(StreamEvent::Unit(unit)) = rx.recv().await {
                meter.record(unit.kind, unit.data.len(), unit.arrival.instant);
                black_box(&unit);
            }
        }
        elapsed += started.elapsed();
    }
    elapsed / (BATCHES * BATCH) as u32
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let mut rows = Vec::new();
    for round in 0..3 {
        let (ours, reference) = runtime.block_on(async { (ours().await, reference().await) });
        rows.push((round, ours, reference));
    }
    println!("{:<6} {:>22} {:>22} {:>7}", "round", "port (2 inputs)", "one input, no port", "ratio");
    for (round, ours, reference) in &rows {
        println!(
            "{round:<6} {:>16}ns/unit {:>16}ns/unit {:>6.2}x",
            ours.as_nanos(),
            reference.as_nanos(),
            reference.as_secs_f64() / ours.as_secs_f64()
        );
    }
    let (_, ours, reference) = rows.last().expect("three rounds");
    println!(
        "{{\"bench\":\"input_port\",\"port_ns_per_unit\":{},\"reference_ns_per_unit\":{}}}",
        ours.as_nanos(),
        reference.as_nanos()
    );
}
