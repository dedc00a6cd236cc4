//! Metrics and health as a NOC meets them: a live scrape of `/metrics`
//! while the real `ffmpeg` program publishes, checked by Debian's `promtool`;
//! a real Prometheus server scraping the appliance and answering PromQL for
//! the channel's input bitrate; the shipped alert rules (`promtool check
//! rules`) and Grafana dashboard (every metric it draws is in a scrape);
//! the optional scrape token; `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::time::Duration;

use appliance::http::probes::Probes;
use media::LatencyMode;
use serde_json::Value;
use support::prometheus::{
    PrometheusServer, have_prometheus, promtool_check_metrics, promtool_check_rules, sample_value,
};
use support::{Publish, STEP_TIMEOUT, TestAppliance, base, eventually, have_ffmpeg};

/// Where the shipped Prometheus and Grafana files are.
fn shipped(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/prometheus").join(file)
}

/// The value of the sample `series` (name with its labels, as written) in `exposition`.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every metric name (`appliance_*`, `process_*`, `tokio_*`) that a PromQL text uses.
fn metric_names(promql: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = promql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let end = i + bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
        if starts && end > i {
            let word = &promql[i..end];
            if ["appliance_", "process_", "tokio_"].iter().any(|p| word.starts_with(p)) {
                names.push(word.to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// The scrape's sample names.
fn sample_names(exposition: &str) -> std::collections::HashSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect()
}

async fn scrape(app: &TestAppliance, token: Option<&str>) -> (u16, String, String) {
    let mut request = app.http.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    (status, content_type.unwrap_or_default(), response.text().await.expect("scrape body"))
}

/// The API's live input bitrate of `channel` now.
async fn api_bitrate(app: &TestAppliance, channel: &str) -> Option<u64> {
    app.get_json(&format!("/api/v1/channels/{channel}")).await["live"]["input"]["bitrate_bps"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_scrape_passes_promtool_and_shows_the_channel_and_the_origin() {
    if !have_ffmpeg() || !have_prometheus() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("cam", LatencyMode::UltraLow);
    let publisher =
        Publish { seconds: 20.0, size: "320x180", ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("cam", None).await;
    let playlist = app.playlist_until(&path, |p| p.segments.iter().filter(|s| s.uri.is_some()).count() >= 2).await;
    let base = base(&path);
    // One of each kind: init, segment, part, and a blocking reload for the next part.
    let map = playlist.segments[0].map.clone().expect("EXT-X-MAP");
    let init = app.get_bytes(&format!("{base}{map}")).await;
    let segment = playlist.segments.iter().find_map(|s| s.uri.clone()).unwrap();
    app.get_bytes(&format!("{base}{segment}")).await;
    let last = playlist.segments.last().unwrap();
    let part = last.parts.first().map(|p| p.uri.clone()).unwrap_or_else(|| format!("part{}.0.m4s", last.msn));
    app.get_bytes(&format!("{base}{part}")).await;
    let reload = format!("{path}?_HLS_msn={}&_HLS_part={}", last.msn, last.parts.len());
    assert_eq!(app.get(&reload).await.status(), 200, "{reload}");
    assert_eq!(app.get("/hls/cam/s/720p/nonsense").await.status(), 404);
    eventually(STEP_TIMEOUT, || api_bitrate(&app, "cam")).await.expect("the API measures the input");

    // A blocking reload two segments ahead is held while we scrape.
    let held_url = app.url(&format!("{path}?_HLS_msn={}", last.msn + 2));
    let held_client = app.http.clone();
    let held = tokio::spawn(async move { held_client.get(held_url).send().await.map(|r| r.status().as_u16()) });
    let text = eventually(STEP_TIMEOUT, || async {
        let (status, content_type, text) = scrape(&app, None).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        (sample(&text, "appliance_origin_held_blocking_reloads").unwrap_or(0.0) >= 1.0).then_some(text)
    })
    .await
    .expect("the held reload shows in a scrape");
    let _ = held.await;

    let (ok, lint) = promtool_check_metrics(&text).await;
    assert!(ok && lint.trim().is_empty(), "promtool check metrics: {lint}\n{text}");
    let rate = sample(&text, "appliance_input_media_bytes_per_second{channel=\"cam\"}").expect("input rate");
    assert!(rate > 1_000.0, "{rate}\n{text}");
    let fps = sample(&text, "appliance_input_frames_per_second{channel=\"cam\"}").expect("frame rate");
    assert!((20.0..=40.0).contains(&fps), "{fps}");
    assert_eq!(sample(&text, "appliance_live_sessions"), Some(1.0));
    assert!(sample(&text, "appliance_input_units_total{channel=\"cam\"}").unwrap() > 30.0);
    assert!(
        sample(&text, "appliance_rendition_media_bytes_per_second{channel=\"cam\",rendition=\"source\"}").unwrap()
            > 0.0,
        "{text}"
    );
    assert!(sample(&text, "appliance_viewers{channel=\"cam\"}").unwrap() >= 1.0, "our client counts as a viewer");
    let parts_listed = sample(&text, "appliance_ingest_to_part_latency_seconds_count{channel=\"cam\"}").unwrap();
    assert!(parts_listed >= 5.0, "{parts_listed}");
    let under_30s =
        sample(&text, "appliance_ingest_to_part_latency_seconds_bucket{channel=\"cam\",le=\"30\"}").unwrap();
    assert_eq!(under_30s, parts_listed, "every part listed within 30 s");
    let requests = |kind: &str, class: &str| {
        sample(&text, &format!("appliance_origin_requests_total{{kind=\"{kind}\",status_class=\"{class}\"}}"))
            .unwrap_or(0.0)
    };
    for kind in ["multivariant", "playlist", "blocking_reload", "part", "segment", "init"] {
        assert!(requests(kind, "2xx") >= 1.0, "{kind}\n{text}");
    }
    assert!(requests("other", "4xx") >= 1.0, "the bad name");
    let init_bytes =
        sample(&text, "appliance_origin_response_bytes_total{kind=\"init\",status_class=\"2xx\"}").unwrap();
    assert!(init_bytes >= init.len() as f64, "{init_bytes} vs {}", init.len());
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(sample(&text, "process_open_fds").unwrap() > 3.0);
    assert!(sample(&text, "tokio_workers").unwrap() >= 1.0);
    assert!(sample(&text, "appliance_data_disk_total_bytes").unwrap() > 0.0);
    assert!(sample(&text, "appliance_webhook_outbox_pending_deliveries").is_some());
    // No session ids, addresses or user agents in any label.
    let session = app.newest_session("cam").await.expect("a session")["id"].as_str().unwrap().to_string();
    assert!(!text.contains(&session) && !text.contains("127.0.0.1"), "unbounded label values in\n{text}");

    // The shipped rules and dashboard: valid, and naming only metrics a scrape has.
    let names = sample_names(&text);
    let rules = shipped("alerts.yml");
    let (ok, report) = promtool_check_rules(&rules).await;
    assert!(ok, "promtool check rules: {report}");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(shipped("grafana-dashboard.json")).unwrap())
        .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("a target's expr").to_string())
        .collect();
    assert!(exprs.len() >= 10, "{} panel queries", exprs.len());
    exprs.push(std::fs::read_to_string(&rules).unwrap());
    for expr in &exprs {
        let used = metric_names(expr);
        for name in used {
            assert!(names.contains(&name), "{name} (in {expr}) is not in the scrape");
        }
    }
    let _ = support::finish(publisher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_server_scrapes_the_live_input_bitrate() {
    if !have_ffmpeg() || !have_prometheus() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.add_channel("studio", LatencyMode::UltraLow);
    let publisher =
        Publish { seconds: 30.0, size: "320x180", ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let mut prometheus = PrometheusServer::start(&app.appliance.http_addr.to_string(), None).await;
    // The input's bitrate settles once its window is whole (5 s): compare after that.
    eventually(STEP_TIMEOUT, || async {
        let live = app.get_json("/api/v1/channels/studio").await;
        (live["live"]["input"]["window_seconds"].as_u64()? >= 5).then_some(())
    })
    .await
    .expect("five whole seconds of input");
    // In bytes per second (Prometheus' base unit); the API says bits.
    let query = "appliance_input_media_bytes_per_second{job=\"appliance\",channel=\"studio\"} * 8";
    let (prometheus_bps, api_bps) = eventually(STEP_TIMEOUT, || async {
        let result = prometheus.query(query).await;
        let value = sample_value(result.first()?)?;
        let api = api_bitrate(&app, "studio").await? as f64;
        (value > 0.0).then_some((value, api))
    })
    .await
    .unwrap_or_else(|| panic!("no bitrate from PromQL (targets: http://127.0.0.1:{}/api/v1/targets)", prometheus.port));
    eprintln!("input bitrate: PromQL {prometheus_bps:.0} bit/s, API {api_bps:.0} bit/s");
    let ratio = prometheus_bps / api_bps;
    assert!((0.75..=1.33).contains(&ratio), "PromQL {prometheus_bps} vs API {api_bps}");
    let up = prometheus.query("up{job=\"appliance\"}").await;
    assert_eq!(up.first().and_then(sample_value), Some(1.0), "{up:?}");
    assert!(prometheus.running());
    let _ = support::finish(publisher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrape_can_require_a_read_token() {
    let app = TestAppliance::start_with(|c| c.metrics.require_token = true).await;
    let (status, _, body) = scrape(&app, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = scrape(&app, Some("tok_nope.nothing")).await;
    assert_eq!(status, 401);
    let (status, _, body) = scrape(&app, Some(&app.read_token)).await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE appliance_live_sessions gauge"), "{body}");
    // Without the setting, anyone on the network may scrape.
    let open = TestAppliance::start().await;
    assert_eq!(scrape(&open, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_name_what_failed() {
    let app = TestAppliance::start().await;
    let (status, text) = app.get_text("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["status"], "ok");
    let (status, text) = app.get_text("/readyz").await;
    assert_eq!(status, 200, "{text}");
    let ready: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["failed"], serde_json::json!([]));
    let checks: Vec<&str> = ready["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(checks, ["listeners", "state_file", "data_disk", "supervisor"]);

    // A listener that is gone fails readiness by name (a port nothing listens on).
    let closed: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let probes = Probes {
        live: app.appliance.live.clone(),
        store: app.appliance.store.clone(),
        data_dir: app.data.path().to_path_buf(),
        rtmp_addr: closed,
    };
    let readiness = tokio::time::timeout(Duration::from_secs(10), probes.readiness()).await.expect("bounded");
    assert_eq!(readiness.status, "not-ready");
    assert_eq!(readiness.failed, ["listeners"]);
    let error = readiness.checks[0].error.clone().unwrap();
    assert!(error.contains(&closed.to_string()), "{error}");
}
