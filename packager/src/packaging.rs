//! The packaging task of one rendition: receives stream events, runs the
//! segmenter, publishes parts to the rendition store and records latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use media::UnitReceiver;

use crate::latency::LatencyStats;
use crate::rendition::Rendition;
use crate::segmenter::{Output, Segmenter, SegmenterConfig};

/// How often the latency summary is logged while a stream runs.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(30);

/// Packages `events` into `rendition` until the producer goes away, then ends it.
pub async fn package(
    mut events: UnitReceiver,
    rendition: Arc<Rendition>,
    config: SegmenterConfig,
    latency: Arc<LatencyStats>,
) {
    let mut segmenter = Segmenter::new(config);
    let mut outputs = Vec::new();
    let mut next_summary = Instant::now() + SUMMARY_INTERVAL;
    let drops = events.stats();
    while let Some(event) = events.recv().await {
        segmenter.push(event, &mut outputs);
        publish(&rendition, &mut outputs, &latency);
        if Instant::now() >= next_summary {
            next_summary += SUMMARY_INTERVAL;
            tracing::info!(rendition = %rendition.name, latency = %latency.summary(), dropped_units = drops.dropped_units(), "ingest-to-playlist latency");
        }
    }
    segmenter.finish(&mut outputs);
    publish(&rendition, &mut outputs, &latency);
    tracing::info!(rendition = %rendition.name, latency = %latency.summary(), dropped_units = drops.dropped_units(), "stream ended; ingest-to-playlist latency");
}

fn publish(rendition: &Rendition, outputs: &mut Vec<Output>, latency: &LatencyStats) {
    if outputs.is_empty() {
        return;
    }
    rendition.apply(outputs);
    let now = Instant::now();
    for output in outputs.drain(..) {
        match output {
            Output::Part(part) => latency.record(now.saturating_duration_since(part.first_arrival)),
            Output::Refused { reason } => {
                tracing::error!(rendition = %rendition.name, %reason, "track set refused: its media is not packaged")
            }
            _ => {}
        }
    }
}
