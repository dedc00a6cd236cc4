//! The operator's console in Debian's headless Chromium (playwright-core):
//! sign-in (a wrong password refused), a mutation without the CSRF token
//! refused, a channel created from the form (the API's field error shown
//! first), published to with the real `ffmpeg`, live on the dashboard without
//! a reload with its thumbnail, the preview playing (the DVR playlist: the
//! form turned recording on), the key rotated, the channel stopped, its
//! recording opened from the channel page, played, its seek bar previewing a
//! thumbnail, downloaded as MP4 and deleted with confirmation, sign-out.
//! Screenshots of each page go to `target/test-artifacts/console/`.

use std::time::Duration;

use support::{BrowserScript, Publish, TestAppliance, browser_driver, have_ffmpeg};

const PASSWORD: &str = "console-test-password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_channel_from_the_console() {
    if !have_ffmpeg() {
        return;
    }
    let Some(console_dir) = browser_driver("console", &[]) else { return };
    let app = TestAppliance::start_with_admin_password(PASSWORD).await;
    let shots = support::artifacts_dir("console");
    let url = app.url("");
    let args = [url.as_ref(), PASSWORD.as_ref(), shots.as_os_str()];
    let mut script = BrowserScript::start(&console_dir.join("console.mjs"), &args);
    let mut publisher = None;
    let walk = async {
        while let Some(message) = script.next_message().await {
            if let Some(key) = message["publish"].as_str() {
                publisher = Some(Publish { seconds: 90.0, ..Publish::default() }.start(&app.rtmp_url(key)));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(240), walk).await.expect("the console walk-through finishes in time");
    let report = script.report().await;
    eprintln!("console report: {report:#}");
    assert_eq!(report["error"], serde_json::Value::Null, "{report:#}");

    assert!(report["landing_url"].as_str().unwrap().ends_with("/console/"), "{report}");
    assert_eq!(report["wrong_password_cookie"], false, "a refused sign-in sets no session");
    assert_eq!(report["cookie"]["httpOnly"], true, "{report}");
    assert_eq!(report["cookie"]["sameSite"], "Strict", "{report}");
    assert_eq!(report["cookie"]["expires"], true, "{report}");
    assert_eq!(report["csrf"]["get"], 200, "the session stands in for a token");
    assert_eq!(report["csrf"]["post_without_token"], 403, "a change without the CSRF token is refused");
    assert_eq!(report["csrf"]["post_wrong_token"], 403, "a change with a wrong CSRF token is refused");
    assert_eq!(report["csrf"]["probe_created"], false);
    assert!(report["name_field_error"].as_str().is_some_and(|t| !t.is_empty()), "{report}");
    assert!(report["rung_field_error"].as_str().is_some_and(|t| !t.is_empty()), "{report}");
    assert_eq!(report["rung_input_invalid"], "true", "the refused rung is marked invalid");
    assert_eq!(report["dashboard_live_without_reload"], true);
    assert!(report["dashboard_input"].as_str().unwrap().contains("640×360"), "{report}");
    let thumbnail = &report["dashboard_thumbnail"];
    assert_eq!((thumbnail["width"].as_u64(), thumbnail["height"].as_u64()), (Some(320), Some(180)), "{thumbnail}");
    assert!(thumbnail["src"].as_str().unwrap().starts_with("/hls/console-cam/thumb.jpg"), "{thumbnail}");
    assert!(report["preview_advanced_seconds"].as_f64().unwrap() > 1.0, "the preview plays: {report}");
    assert_eq!(report["low_latency_mode"], true);
    assert!(report["preview_url"].as_str().unwrap().ends_with("/hls/console-cam/dvr.m3u8"), "DVR rewind: {report}");
    assert_eq!(report["dvr_setting"], "30 min 0 s", "{report}");
    assert!(report["recording_played_seconds"].as_f64().unwrap() > 1.0, "the recording plays: {report}");
    assert!(report["recording_state"].as_str().unwrap() != "recording", "{report}");
    let sprite = report["scrub_preview"]["sprite"].as_str().expect("a scrubbing preview on the seek bar");
    assert!(sprite.contains("/thumbnails/sprite-") && sprite.contains("#xywh="), "{report}");
    assert_eq!(report["scrub_sprite_status"], 200, "{report}");
    let download = &report["download"];
    assert_eq!((download["status"].as_u64(), download["type"].as_str()), (Some(200), Some("video/mp4")), "{report}");
    assert!(download["bytes"].as_u64().unwrap() > 10_000, "{report}");
    assert_eq!(report["recording_deleted"], true, "{report}");
    assert_eq!(report["key_rotated"], true);
    assert_eq!(report["stopped"], true);
    assert_eq!(report["after_sign_out_status"], 401, "the signed-out cookie opens nothing");
    assert_eq!(report["csp_violations"], serde_json::json!([]), "{report:#}");
    for (page, overflow) in report["tablet_overflow"].as_object().expect("tablet checks ran") {
        assert!(overflow.as_i64().unwrap() <= 0, "{page} is wider than a tablet: {overflow} px");
    }
    let keyboard = &report["keyboard"];
    assert_eq!(keyboard["reached"], true, "Tab reaches the channel link: {keyboard}");
    assert_ne!(keyboard["focus_ring"], "none", "keyboard focus is visible: {keyboard}");
    assert_eq!(keyboard["opened"], true, "Enter opens the channel: {keyboard}");
    for page in ["signin", "dashboard", "channel", "channel-form-errors", "channel-stopped", "channel-edit", "system"] {
        assert!(shots.join(format!("{page}.png")).exists(), "screenshot of {page}");
    }
    // The old key stopped working with the rotation; the channel is stopped, so the store says so.
    let channel = app.appliance.store.get("console-cam").unwrap().expect("channel exists");
    assert_eq!(channel.state.to_string(), "stopped");
    drop(publisher);
    app.appliance.shutdown().await;
}

/// The session cookie's id from a sign-in response.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    let set = response.headers().get("set-cookie")?.to_str().ok()?.to_string();
    let value = set.split(';').next()?.strip_prefix("appliance_session=")?.to_string();
    (!value.is_empty()).then_some(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_resists_the_usual_web_attacks() {
    // The shipped failure limits (the harness lifts the API's limits): the
    // sign-in's limit is one of them.
    let app = TestAppliance::start_with(|config| {
        config.api = appliance::config::ApiConfig::default();
        appliance::http::console::password::set(&config.data_dir, PASSWORD).expect("admin password set");
    })
    .await;
    let http = &app.http;
    let sign_in = |password: &str, cookie: Option<&str>| {
        let mut request = http
            .post(app.url("/console/api/session"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "password": password }).to_string());
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("appliance_session={cookie}"));
        }
        request.send()
    };

    // Not signed in: nothing but the page, its assets and the sign-in.
    assert_eq!(http.get(app.url("/console/api/session")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(app.url("/api/v1/channels")).send().await.unwrap().status(), 401);
    let page = http.get(app.url("/console/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    // Assets come from the embedded map by exact name: no traversal.
    assert_eq!(http.get(app.url("/console/assets/app.js")).send().await.unwrap().status(), 200);
    for path in
        ["/console/assets/..%2F..%2FCargo.toml", "/console/assets/%2e%2e%2fapi.js", "/console/assets/.%2Fapp.js"]
    {
        assert_eq!(http.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
    // A form post (what a cross-site page can send without CORS) cannot sign in.
    let form = http
        .post(app.url("/console/api/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("password={PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);

    // Session fixation: a cookie the client brings is never adopted, and a
    // new sign-in gets a new id.
    let first = sign_in(PASSWORD, Some("chosen-by-the-attacker")).await.unwrap();
    assert_eq!(first.status(), 200);
    let first_id = session_cookie(&first).expect("a session cookie");
    assert_ne!(first_id, "chosen-by-the-attacker");
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let second = sign_in(PASSWORD, Some(&first_id)).await.unwrap();
    let second_id = session_cookie(&second).expect("a session cookie");
    assert_ne!(first_id, second_id);
    let old = http
        .get(app.url("/api/v1/channels"))
        .header("cookie", format!("appliance_session={first_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "signing in again drops the session the browser had");
    let body: serde_json::Value = serde_json::from_str(&second.text().await.unwrap()).unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let cookie = format!("appliance_session={second_id}");

    // CSRF: every change made with the cookie needs the session's token.
    let create = |token: Option<&str>| {
        let mut request = http
            .post(app.url("/api/v1/channels"))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body(r#"{"name": "csrf-check"}"#);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    assert_eq!(create(None).await.unwrap().status(), 403);
    assert_eq!(create(Some("deadbeef")).await.unwrap().status(), 403);
    assert_eq!(create(Some(&csrf)).await.unwrap().status(), 201);
    let sign_out = |token: Option<&str>| {
        let mut request = http.delete(app.url("/console/api/session")).header("cookie", &cookie);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    assert_eq!(sign_out(None).await.unwrap().status(), 403);
    assert_eq!(sign_out(Some(&csrf)).await.unwrap().status(), 204);
    let after = http.get(app.url("/api/v1/channels")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), 401);

    // Sign-in rate limiting per client address.
    for _ in 0..appliance::http::access::console_sessions::MAX_FAILURES {
        assert_eq!(sign_in("wrong password", None).await.unwrap().status(), 400);
    }
    let limited = sign_in(PASSWORD, None).await.unwrap();
    assert_eq!(limited.status(), 429, "even the right password waits once the limit is reached");
    assert!(limited.headers().contains_key("retry-after"));
    app.appliance.shutdown().await;
}
