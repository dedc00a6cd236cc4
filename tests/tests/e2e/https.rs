//! HTTPS with HTTP/2 beside plain HTTP: a self-signed certificate made at the
//! first start, curl's HTTP/2 client doing a blocking playlist reload and
//! the part it waits for over one multiplexed connection, the console's
//! cookie `Secure` over HTTPS only, and hls.js in Chromium playing over h2.

use std::process::Stdio;
use std::time::Duration;

use media::LatencyMode;
use support::{Publish, STEP_TIMEOUT, TestAppliance, base, have_ffmpeg, have_tool};

const PASSWORD: &str = "correct horse battery staple";

/// Runs curl with `args` (certificates not checked: the appliance's is self-signed) and returns its stdout.
async fn curl(args: &[&str]) -> String {
    let output = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--insecure", "--max-time", "20"])
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("curl finishes in time")
    .expect("curl runs");
    assert!(output.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_http2_blocking_reloads_and_parts_over_one_connection_and_secure_cookies() {
    if !have_ffmpeg() || !have_tool("curl", "--version", "apt install curl; scripts/deps.sh installs it") {
        return;
    }
    let app = TestAppliance::start_with(|config| {
        config.tls.self_signed = true;
        appliance::http::console::password::set(&config.data_dir, PASSWORD).expect("admin password set");
    })
    .await;
    let https = app.appliance.https_addr.expect("HTTPS is on with a self-signed certificate");
    let fingerprint = app.appliance.tls_fingerprint.clone().expect("a fingerprint");
    let kept = std::fs::read_to_string(app.data.path().join("tls/https-fingerprint")).unwrap();
    assert_eq!(kept, fingerprint, "the console banner's copy of the fingerprint");
    let origin = format!("https://127.0.0.1:{}", https.port());

    // HTTP/2 by ALPN; plain HTTP stays HTTP/1.1 on its own port.
    let version = curl(&["--http2", "-o", "/dev/null", "-w", "%{http_version}", &format!("{origin}/healthz")]).await;
    assert_eq!(version, "2");
    let plain = curl(&["-o", "/dev/null", "-w", "%{http_version}", &app.url("/healthz")]).await;
    assert_eq!(plain, "1.1");

    let channel = app.add_channel("secure", LatencyMode::UltraLow);
    let publisher = Publish { seconds: 40.0, ..Publish::default() }.start(&app.rtmp_url(&channel.stream_key));
    let path = app.media_playlist_path("secure", None).await;
    let playlist = app.playlist_until(&path, |p| p.preload_hint.is_some()).await;
    let hint = playlist.preload_hint.clone().unwrap();
    let (msn, part) = hint.trim_start_matches("part").trim_end_matches(".m4s").split_once('.').unwrap();
    // The held reload, the hinted part (answered while it is made) and the
    // init section at once: curl multiplexes them over one connection.
    let urls = [
        format!("{origin}{path}?_HLS_msn={msn}&_HLS_part={part}"),
        format!("{origin}{}{hint}", base(&path)),
        format!("{origin}{}init0.mp4", base(&path)),
    ];
    let mut args =
        vec!["--http2", "--parallel", "-w", "%{http_version} %{response_code} %{num_connects} %{size_download}\\n"];
    for url in &urls {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let lines = curl(&args).await;
    let answers: Vec<Vec<u64>> =
        lines.lines().map(|l| l.split(' ').map(|n| n.parse::<f64>().unwrap() as u64).collect()).collect();
    assert_eq!(answers.len(), 3, "{lines}");
    for a in &answers {
        assert_eq!((a[0], a[1]), (2, 200), "HTTP/2 200 for each: {lines}");
        assert!(a[3] > 0, "a body for each: {lines}");
    }
    let connects: u64 = answers.iter().map(|a| a[2]).sum();
    assert_eq!(connects, 1, "one connection for all three: {lines}");

    // The console's cookie is Secure over HTTPS, and not over plain HTTP (a browser would drop it).
    let sign_in = |url: String| async move {
        let body = format!("{{\"password\":\"{PASSWORD}\"}}");
        curl(&["-i", "-o", "-", "-X", "POST", "-H", "content-type: application/json", "-d", &body, &url]).await
    };
    let over_tls = sign_in(format!("{origin}/console/api/session")).await;
    let cookie = over_tls.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect(&over_tls);
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let plain = sign_in(app.url("/console/api/session")).await;
    let cookie = plain.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect(&plain);
    assert!(!cookie.contains("Secure"), "{cookie}");

    // hls.js in Chromium over HTTPS: every request on HTTP/2.
    if let Some(player) = support::browser_driver("player", &[]) {
        let url = format!("{origin}/?channel=secure");
        let report = support::run_browser_script(
            &player.join("players.mjs"),
            &["12", &url],
            STEP_TIMEOUT + Duration::from_secs(12),
        )
        .await;
        let p = &report["players"][0];
        assert_eq!(p["fatal_errors"], serde_json::json!([]), "{p}");
        assert_eq!(p["http_errors"], serde_json::json!([]), "{p}");
        let played = p["played_seconds"].as_f64().unwrap();
        assert!(played >= 0.5 * p["wall_seconds"].as_f64().unwrap(), "playback advanced {played:.1} s: {p}");
        assert_eq!(p["protocols"], serde_json::json!(["h2"]), "{p}");
    }
    drop(publisher);
    app.appliance.shutdown().await;
}

/// A configured certificate and key that do not exist stop the start with
/// the path named (nothing is bound).
#[tokio::test]
async fn a_missing_certificate_stops_the_start_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let mut config = support::appliance::test_config(data.path());
    config.tls.cert = data.path().join("missing.crt");
    config.tls.key = data.path().join("missing.key");
    config.validate().expect("valid: the files are read at start");
    let error = match appliance::serve::Appliance::start(&config).await {
        Ok(_) => panic!("the appliance started without its certificate"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("missing.crt"), "{error}");
}
