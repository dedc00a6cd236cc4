//! Long player runs, as commands rather than suite tests (each takes
//! minutes): `soak` plays one ultra-low-latency channel with hls.js and
//! Shaka Player side by side; `latency-modes` plays one channel per latency
//! mode on the watch page. Both start the appliance in this process and
//! publish with the real `ffmpeg` program, through the suite's own support
//! library, and print what the players measured.
//!
//!     cargo run -p tests --bin players -- soak --minutes 10
//!     cargo run -p tests --bin players -- latency-modes --minutes 10

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Long runs of real players against the appliance")]
struct Args {
    #[command(subcommand)]
    run: Run,
}

#[derive(Subcommand)]
enum Run {
    /// hls.js and Shaka Player on one ultra-low-latency channel: HTTP and
    /// player errors, stalls, latency p50/p95 per player.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// The watch page on one channel per latency mode at once: stalls (and
    /// per minute), latency behind the live edge and ingest to display, p50/p95.
    LatencyModes {
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let report = match Args::parse().run {
        Run::Soak { minutes } => support::players::play_hls_js_and_shaka(minutes * 60).await.map(|r| soak(&r, minutes)),
        Run::LatencyModes { minutes } => {
            support::players::watch_every_latency_mode(minutes).await.map(|r| latency_modes(&r, minutes))
        }
    };
    match report {
        Some(()) => ExitCode::SUCCESS,
        None => {
            eprintln!("players: a tool the run needs is missing (see above)");
            ExitCode::FAILURE
        }
    }
}

fn players(report: &Value) -> &[Value] {
    report["players"].as_array().map_or(&[], Vec::as_slice)
}

fn count(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

fn seconds(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn soak(report: &Value, minutes: u64) {
    for p in players(report) {
        println!(
            "soak {}: {minutes} min, http errors {}, player errors {}, stalls {}, latency p50 {:.2} s p95 {:.2} s",
            p["player"],
            count(&p["http_errors"]),
            count(&p["player_errors"]),
            p["stalls"],
            seconds(&p["latency_p50"]),
            seconds(&p["latency_p95"]),
        );
    }
}

fn latency_modes(report: &Value, minutes: f64) {
    for p in players(report) {
        let stalls = seconds(&p["stalls"]);
        println!(
            "mode {}: {minutes} min, target {:.2} s, stalls {stalls} ({:.2}/min), behind the live edge p50 {:.2} s p95 {:.2} s, \
             ingest to display p50 {:.2} s p95 {:.2} s, http/player errors {}",
            p["page"]["mode"],
            seconds(&p["page"]["target"]),
            stalls / minutes,
            seconds(&p["latency_p50"]),
            seconds(&p["latency_p95"]),
            seconds(&p["ingest_to_display_p50"]),
            seconds(&p["ingest_to_display_p95"]),
            count(&p["fatal_errors"]),
        );
    }
}
