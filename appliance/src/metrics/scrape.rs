//! One scrape of `/metrics`: `gather` reads what the appliance already keeps
//! (the live registry's meters, the origin's streams and counters, the
//! viewers, the outbox, the recordings' disk, the encoder slots, `/proc` and
//! the tokio runtime) and `render` writes it in the text format. Nothing here
//! runs on a hot path: the live path and the origin pay only the atomics they
//! already had (and `origin_requests`' adds).
//!
//! Labels stay bounded: `channel` (operator-made), `rendition` (the
//! channel's ladder), `device`/`backend` (the probe's), `kind` and
//! `status_class` (fixed sets); never a session id, a viewer or an address.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use accel::slots::DeviceUsage;
use packager::{LiveStream, OriginStore};

use super::exposition::{Buckets, Exposition, Kind};
use super::origin_requests::{OriginCount, OriginRequests};
use super::process::ProcessFigures;
use crate::live::figures::SessionFigures;
use crate::live::supervisor::Supervisor;
use crate::live::viewers::Viewers;
use crate::recordings::Recordings;
use crate::recordings::retention::{DiskSpace, disk_space};
use crate::state::Store;
use crate::webhooks::worker::DELIVERY_FAILURES;

/// Where a scrape reads from.
#[derive(Debug, Clone)]
pub struct MetricsSources {
    pub live: Supervisor,
    pub viewers: Arc<Viewers>,
    pub origin: Arc<OriginStore>,
    pub requests: Arc<OriginRequests>,
    pub store: Store,
    pub recordings: Option<Recordings>,
    pub data_dir: PathBuf,
    pub alerts: Arc<crate::alerts::AlertCounters>,
    pub listeners: super::Listeners,
}

/// The tokio runtime's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeFigures {
    pub workers: usize,
    pub alive_tasks: usize,
    pub global_queue_depth: usize,
}

/// Everything one scrape shows, read at one moment.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Each session in progress with its channel's viewers.
    pub sessions: Vec<(Arc<SessionFigures>, u32)>,
    /// Each channel's newest stream at the origin (its renditions and latency).
    pub streams: Vec<Arc<LiveStream>>,
    pub origin: Vec<OriginCount>,
    pub held_reloads: u64,
    /// Deliveries waiting in the outbox (absent when the state file cannot be read).
    pub outbox_pending: Option<u64>,
    /// Failed attempts to be retried, and deliveries given up.
    pub delivery_failures: (u64, u64),
    pub recordings_bytes: Option<u64>,
    pub data_disk: Option<DiskSpace>,
    /// Encoder devices and their slots (empty until the probe has run).
    pub encoders: Vec<DeviceUsage>,
    pub process: ProcessFigures,
    pub runtime: Option<RuntimeFigures>,
    /// Per alert rule: raised so far, cleared so far, active now.
    pub alerts: Vec<(crate::state::AlertRule, u64, u64, u64)>,
    pub listeners: Vec<super::listeners::ListenerFigures>,
}

impl MetricsSources {
    /// Reads every figure (blocking: the state file, the disk, `/proc`; run it off the runtime's workers).
    pub fn gather(&self, runtime: Option<tokio::runtime::Handle>) -> Gathered {
        let now = Instant::now();
        let viewers = self.viewers.counts(now);
        let sessions = self
            .live
            .registry()
            .all()
            .into_iter()
            .map(|entry| (entry.figures.clone(), viewers.get(&entry.channel).copied().unwrap_or(0)))
            .collect();
        let recordings_bytes = self.recordings.as_ref().and_then(|r| r.catalog().total_bytes().ok());
        Gathered {
            sessions,
            streams: self.origin.current_streams(),
            origin: self.requests.counts(),
            held_reloads: self.requests.held_reloads(),
            outbox_pending: self.store.pending_count().ok(),
            delivery_failures: (
                DELIVERY_FAILURES.retried.load(Ordering::Relaxed),
                DELIVERY_FAILURES.gave_up.load(Ordering::Relaxed),
            ),
            recordings_bytes,
            data_disk: disk_space(&self.data_dir).ok(),
            encoders: self.live.transcoder().slot_usage().unwrap_or_default(),
            process: ProcessFigures::read(),
            alerts: self.alerts.read(),
            listeners: self.listeners.read(),
            runtime: runtime.map(|h| {
                let m = h.metrics();
                RuntimeFigures {
                    workers: m.num_workers(),
                    alive_tasks: m.num_alive_tasks(),
                    global_queue_depth: m.global_queue_depth(),
                }
            }),
        }
    }
}

impl Gathered {
    /// The scrape's text (classic Prometheus format).
    pub fn render(&self, now: Instant) -> String {
        let mut out = Exposition::default();
        self.write_sessions(&mut out, now);
        self.write_streams(&mut out);
        self.write_origin(&mut out);
        self.write_services(&mut out);
        self.write_alerts(&mut out);
        self.write_listeners(&mut out);
        self.write_process(&mut out);
        out.finish()
    }

    fn write_sessions(&self, out: &mut Exposition, now: Instant) {
        let figures: Vec<_> =
            self.sessions.iter().map(|(f, viewers)| (f.channel.as_str(), f.figures(*viewers, now))).collect();
        gauge(out, "appliance_live_sessions", "Sessions in progress.", [(vec![], self.sessions.len() as f64)]);
        let per_channel = |value: &dyn Fn(&crate::live::figures::LiveFigures) -> Option<f64>| {
            figures.iter().filter_map(|(channel, f)| Some((vec![("channel", *channel)], value(f)?))).collect::<Vec<_>>()
        };
        gauge(
            out,
            "appliance_input_media_bytes_per_second",
            "Media payload (video and audio) per second of the input on air, over the last complete seconds \
             (the API's bitrate_bps / 8: Prometheus wants base units).",
            per_channel(&|f| f.input.bitrate_bps.map(|b| b as f64 / 8.0)),
        );
        gauge(
            out,
            "appliance_input_frames_per_second",
            "Video frames per second of the input on air, over the last complete seconds.",
            per_channel(&|f| f.input.video.as_ref()?.fps),
        );
        gauge(
            out,
            "appliance_input_declared_frames_per_second",
            "The frame rate the publisher declared.",
            per_channel(&|f| f.input.video.as_ref()?.declared_fps),
        );
        counter(
            out,
            "appliance_input_units_total",
            "Media units (frames) received in the channel's session in progress.",
            per_channel(&|f| Some(f.input.units as f64)),
        );
        counter(
            out,
            "appliance_input_bytes_total",
            "Media payload bytes received in the channel's session in progress.",
            per_channel(&|f| Some(f.input.bytes as f64)),
        );
        counter(
            out,
            "appliance_dropped_units_total",
            "Units dropped on the session's path because a stage fell behind (each a skip to the next keyframe).",
            per_channel(&|f| Some(f.input.dropped_units as f64)),
        );
        gauge(
            out,
            "appliance_viewers",
            "Distinct players (address and User-Agent) that fetched the channel's media in the last 30 s.",
            per_channel(&|f| Some(f.viewers as f64)),
        );
        gauge(
            out,
            "appliance_encoder_moves",
            "Moves of the channel's ladder to another encoder slot after failures, in the session in progress.",
            per_channel(&|f| f.encoder.as_ref().map(|e| e.moves as f64)),
        );
    }

    fn write_streams(&self, out: &mut Exposition) {
        let live: Vec<&Arc<LiveStream>> = self.streams.iter().filter(|s| s.ended_at().is_none()).collect();
        let mut rates = Vec::new();
        for stream in &live {
            for rendition in &stream.renditions {
                if let Some(summary) = rendition.summary() {
                    let labels = vec![("channel", stream.channel.as_str()), ("rendition", rendition.name.as_str())];
                    rates.push((labels, summary.average_bps as f64 / 8.0));
                }
            }
        }
        gauge(
            out,
            "appliance_rendition_media_bytes_per_second",
            "Average media payload per second of each rendition as packaged, over the session in progress.",
            rates,
        );
        out.family(
            "appliance_ingest_to_part_latency_seconds",
            "Wall time from ingest of a part's first frame to the part being listed in its playlist.",
            Kind::Histogram,
        );
        for stream in &live {
            let (counts, count, sum) = stream.latency.cumulative();
            let bounds = packager::latency::BUCKET_BOUNDS_SECONDS;
            let buckets = Buckets { cumulative: bounds.iter().copied().zip(counts).collect(), count, sum };
            out.histogram("appliance_ingest_to_part_latency_seconds", &[("channel", &stream.channel)], &buckets);
        }
    }

    fn write_origin(&self, out: &mut Exposition) {
        let labels = |c: &OriginCount| vec![("kind", c.kind.as_str()), ("status_class", c.class)];
        counter(
            out,
            "appliance_origin_requests_total",
            "Origin requests by kind and status class.",
            self.origin.iter().map(|c| (labels(c), c.requests as f64)),
        );
        counter(
            out,
            "appliance_origin_response_bytes_total",
            "Origin response body bytes sent, by kind and status class.",
            self.origin.iter().map(|c| (labels(c), c.bytes as f64)),
        );
        gauge(
            out,
            "appliance_origin_held_blocking_reloads",
            "Blocking playlist reloads waiting for their part or segment now.",
            [(vec![], self.held_reloads as f64)],
        );
    }

    fn write_services(&self, out: &mut Exposition) {
        gauge(
            out,
            "appliance_webhook_outbox_pending_deliveries",
            "Webhook deliveries waiting in the outbox.",
            self.outbox_pending.map(|n| (vec![], n as f64)),
        );
        let (retried, gave_up) = self.delivery_failures;
        counter(
            out,
            "appliance_webhook_delivery_failures_total",
            "Failed webhook delivery attempts: retried later, or the delivery given up.",
            [(vec![("outcome", "retried")], retried as f64), (vec![("outcome", "gave_up")], gave_up as f64)],
        );
        gauge(
            out,
            "appliance_recordings_bytes",
            "Bytes of every recording on the data partition.",
            self.recordings_bytes.map(|b| (vec![], b as f64)),
        );
        gauge(
            out,
            "appliance_data_disk_total_bytes",
            "Size of the data directory's file system.",
            self.data_disk.map(|d| (vec![], d.total as f64)),
        );
        gauge(
            out,
            "appliance_data_disk_available_bytes",
            "Room left on the data directory's file system.",
            self.data_disk.map(|d| (vec![], d.available as f64)),
        );
        let devices: Vec<(String, String, &DeviceUsage)> =
            self.encoders.iter().map(|d| (d.id.to_string(), d.backend.to_string(), d)).collect();
        let per_device = |value: &dyn Fn(&DeviceUsage) -> f64| {
            devices
                .iter()
                .map(|(id, backend, d)| (vec![("device", id.as_str()), ("backend", backend.as_str())], value(d)))
                .collect::<Vec<_>>()
        };
        gauge(
            out,
            "appliance_encoder_sessions_used",
            "Encoder sessions leased on each device.",
            per_device(&|d| d.used.sessions as f64),
        );
        gauge(
            out,
            "appliance_encoder_sessions_capacity",
            "Encoder sessions each device takes.",
            per_device(&|d| d.capacity.sessions as f64),
        );
        gauge(
            out,
            "appliance_encoder_pixel_rate_used_megapixels_per_second",
            "Pixel rate leased on each device.",
            per_device(&|d| d.used.mpix_per_sec),
        );
        gauge(
            out,
            "appliance_encoder_pixel_rate_capacity_megapixels_per_second",
            "Pixel rate each device encodes (measured by `appliance bench`, or the backend's default).",
            per_device(&|d| d.capacity.mpix_per_sec),
        );
        gauge(
            out,
            "appliance_encoder_device_healthy",
            "1 while the device takes sessions, 0 after a failure took it out of service.",
            per_device(&|d| if d.healthy { 1.0 } else { 0.0 }),
        );
    }

    fn write_alerts(&self, out: &mut Exposition) {
        let rule = |r: &crate::state::AlertRule| vec![("rule", r.as_str())];
        counter(
            out,
            "appliance_alerts_raised_total",
            "Alerts raised, by rule.",
            self.alerts.iter().map(|(r, raised, _, _)| (rule(r), *raised as f64)),
        );
        counter(
            out,
            "appliance_alerts_cleared_total",
            "Alerts cleared, by rule.",
            self.alerts.iter().map(|(r, _, cleared, _)| (rule(r), *cleared as f64)),
        );
        gauge(
            out,
            "appliance_alerts_active",
            "Alerts raised and not cleared now, by rule.",
            self.alerts.iter().map(|(r, _, _, active)| (rule(r), *active as f64)),
        );
    }

    fn write_listeners(&self, out: &mut Exposition) {
        let each = |value: &dyn Fn(&super::listeners::ListenerFigures) -> Option<u64>| {
            self.listeners
                .iter()
                .filter_map(|l| Some((vec![("listener", l.listener)], value(l)? as f64)))
                .collect::<Vec<_>>()
        };
        gauge(out, "appliance_connections", "Connections open now, by listener.", each(&|l| Some(l.open)));
        counter(
            out,
            "appliance_connections_shed_total",
            "Connections closed to make room under the caps: idle HTTP connections, RTMP connections that had \
             not published with a valid key.",
            each(&|l| Some(l.shed)),
        );
        counter(
            out,
            "appliance_connections_refused_total",
            "Newcomers turned away under the caps because nothing in their way could be shed.",
            each(&|l| Some(l.refused)),
        );
        counter(
            out,
            "appliance_http_accept_failures_total",
            "Failures of the HTTP listeners' accept (out of file descriptors or memory).",
            each(&|l| l.accept_failures),
        );
        gauge(
            out,
            "appliance_rtmp_unauthenticated_connections",
            "RTMP connections that have not published with a valid key yet.",
            each(&|l| l.unauthenticated),
        );
        gauge(
            out,
            "appliance_rtmp_unauthenticated_buffered_bytes",
            "Bytes of unfinished messages held for RTMP connections that have not published yet.",
            each(&|l| l.unauthenticated_buffered_bytes),
        );
    }

    fn write_process(&self, out: &mut Exposition) {
        let p = &self.process;
        let one = |v: Option<f64>| v.map(|v| (vec![], v));
        counter(out, "process_cpu_seconds_total", "User and system CPU time spent, in seconds.", one(p.cpu_seconds));
        gauge(out, "process_resident_memory_bytes", "Resident memory size.", one(p.resident_bytes.map(|v| v as f64)));
        gauge(out, "process_virtual_memory_bytes", "Virtual memory size.", one(p.virtual_bytes.map(|v| v as f64)));
        gauge(out, "process_open_fds", "Open file descriptors.", one(p.open_fds.map(|v| v as f64)));
        gauge(out, "process_max_fds", "The open file descriptor limit.", one(p.max_fds.map(|v| v as f64)));
        gauge(out, "process_threads", "OS threads of the process.", one(p.threads.map(|v| v as f64)));
        gauge(
            out,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            one(p.start_time_seconds),
        );
        let rt = self.runtime;
        gauge(out, "tokio_workers", "Worker threads of the async runtime.", rt.map(|r| (vec![], r.workers as f64)));
        gauge(
            out,
            "tokio_alive_tasks",
            "Tasks alive on the async runtime.",
            rt.map(|r| (vec![], r.alive_tasks as f64)),
        );
        gauge(
            out,
            "tokio_global_queue_depth",
            "Tasks waiting in the runtime's global queue.",
            rt.map(|r| (vec![], r.global_queue_depth as f64)),
        );
        gauge(
            out,
            "appliance_build_info",
            "The appliance's version (value 1).",
            [(vec![("version", env!("CARGO_PKG_VERSION"))], 1.0)],
        );
    }
}

type Samples<'a> = Vec<(&'a str, &'a str)>;

fn gauge<'a>(out: &mut Exposition, name: &str, help: &str, samples: impl IntoIterator<Item = (Samples<'a>, f64)>) {
    family(out, name, help, Kind::Gauge, samples);
}

fn counter<'a>(out: &mut Exposition, name: &str, help: &str, samples: impl IntoIterator<Item = (Samples<'a>, f64)>) {
    family(out, name, help, Kind::Counter, samples);
}

fn family<'a>(
    out: &mut Exposition,
    name: &str,
    help: &str,
    kind: Kind,
    samples: impl IntoIterator<Item = (Samples<'a>, f64)>,
) {
    out.family(name, help, kind);
    for (labels, value) in samples {
        out.sample(name, &labels, value);
    }
}
