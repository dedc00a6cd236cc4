//! Private channels end to end: a channel made private through the API and
//! published by the real `ffmpeg` program answers 403 problem+json, never
//! cached, for its multivariant playlist, media playlist, a part and a
//! segment without a playback token, with a forged one, an expired one and
//! another channel's; a valid token opens all four and is carried on in
//! every URI the origin hands out, blocking reloads and delta updates
//! included (`_HLS_msn`, `_HLS_part`, `_HLS_skip` beside `token`). hls.js in
//! Chromium plays it with a token, straight from the origin and through the
//! reference nginx edge. Key rotation keeps old tokens for the overlap
//! window and refuses them once their key is retired; who may sign and
//! rotate follows the roles, and the audit log records rotations and
//! playback changes.

use std::time::Duration;

use appliance::playback::token::{self, Claims};
use serde_json::{Value, json};
use support::edge::Edge;
use support::{MediaPlaylist, Publish, STEP_TIMEOUT, TestAppliance, base, eventually, have_ffmpeg, have_tool};

/// A playback token for `channel` made through the API (with the admin token).
async fn playback_token(app: &TestAppliance, channel: &str, body: Value) -> Value {
    let made = app.write("POST", &format!("/api/v1/channels/{channel}/playback-tokens"), Some(body)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    made.body
}

fn text_of(token: &Value) -> String {
    token["token"].as_str().expect("token text").to_string()
}

/// A token for `channel` that expired a minute ago, signed with the appliance's current key.
fn expired_token(app: &TestAppliance, channel: &str) -> String {
    let keys = app.appliance.store.playback_keys().unwrap();
    let key = keys.iter().find(|k| k.retired_at_ms.is_none()).expect("a current key");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = Claims { channel: channel.into(), expires: now - 60, network: None };
    token::sign(&claims, &key.id, &key.secret().unwrap())
}

/// `{key id}.{payload}` of one token with the MAC of another: a forgery.
fn forged(genuine: &str, other: &str) -> String {
    let (signed, _) = genuine.rsplit_once('.').unwrap();
    let (_, mac) = other.rsplit_once('.').unwrap();
    format!("{signed}.{mac}")
}

fn with_token(path: &str, token: &str) -> String {
    format!("{path}{}token={token}", if path.contains('?') { '&' } else { '?' })
}

/// Asserts `url` answers 403 problem+json, not cached; returns its detail.
async fn assert_denied(app: &TestAppliance, url: &str) -> String {
    let response = app.get(url).await;
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 403, "{url}: {body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{url}");
    assert_eq!(cache.as_deref(), Some("no-store"), "{url}");
    assert_eq!(body["type"], "urn:appliance:problem:playback-denied", "{url}: {body}");
    body["detail"].as_str().unwrap().to_string()
}

/// Every URI a media playlist hands out (map, parts, segments, preload hint, reports).
fn uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            out.extend(line.split("URI=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(String::from));
        } else if !line.trim().is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

fn assert_every_uri_carries(text: &str, token: &str) {
    let uris = uris(text);
    assert!(!uris.is_empty(), "{text}");
    for uri in uris {
        assert!(uri.ends_with(&format!("?token={token}")), "{uri} in\n{text}");
    }
}

/// The media playlist's path (no query) from a multivariant playlist fetched with `token`.
async fn media_path(app: &TestAppliance, channel: &str, token: &str) -> String {
    let multivariant = eventually(STEP_TIMEOUT, || async {
        let (status, text) = app.get_text(&with_token(&format!("/hls/{channel}/index.m3u8"), token)).await;
        (status == 200).then_some(text)
    })
    .await
    .expect("the private channel's multivariant playlist, with a token");
    assert_every_uri_carries(&multivariant, token);
    let uri = multivariant.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap();
    format!("/hls/{channel}/{}", uri.split('?').next().unwrap())
}

/// Polls the media playlist (with `token`) until `done` holds; returns it and its text.
async fn playlist_until(
    app: &TestAppliance,
    path: &str,
    token: &str,
    done: impl Fn(&MediaPlaylist) -> bool,
) -> (MediaPlaylist, String) {
    eventually(STEP_TIMEOUT * 2, || async {
        let (status, text) = app.get_text(&with_token(path, token)).await;
        let playlist = (status == 200).then(|| MediaPlaylist::parse(&text))?;
        done(&playlist).then_some((playlist, text))
    })
    .await
    .unwrap_or_else(|| panic!("{path} never reached the expected state"))
}

fn without_query(uri: &str) -> &str {
    uri.split('?').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_channel_needs_a_valid_token_for_playlists_parts_and_segments() {
    if !have_ffmpeg() {
        return;
    }
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "private", "playback": "private", "start": true})).await;
    assert_eq!(channel["playback"], "private");
    app.create_channel(json!({"name": "other", "playback": "private", "start": true})).await;
    let public = app.create_channel(json!({"name": "open", "start": true})).await;
    assert_eq!(public["playback"], "public");

    let made = playback_token(&app, "private", json!({"ttl_seconds": 900})).await;
    let good = text_of(&made);
    assert!(made["playback_url"].as_str().unwrap().ends_with(&format!("/hls/private/index.m3u8?token={good}")));
    assert_eq!(made["channel"], "private");
    let theirs = text_of(&playback_token(&app, "other", json!({})).await);
    let key = channel["stream_key"].as_str().unwrap();
    let publisher = Publish { seconds: 120.0, ..Publish::default() }.start(&app.rtmp_url(key));
    let open_publisher =
        Publish { seconds: 120.0, ..Publish::default() }.start(&app.rtmp_url(public["stream_key"].as_str().unwrap()));

    let media = media_path(&app, "private", &good).await;
    // Enough listed for a delta update to skip segments (CAN-SKIP-UNTIL), with parts after a complete segment.
    let (playlist, text) = playlist_until(&app, &media, &good, |p| {
        let listed: f64 = p.segments.iter().filter_map(|s| s.duration).sum();
        listed > 6.0 * p.target_duration.unwrap_or(1) as f64 + 1.0 && p.last_part().is_some()
    })
    .await;
    assert_every_uri_carries(&text, &good);
    let segment = playlist.segments.iter().rev().find_map(|s| s.uri.clone()).expect("a complete segment");
    let part = playlist.segments.iter().flat_map(|s| &s.parts).last().expect("a part").uri.clone();
    let dir = base(&media);
    let targets = [
        "/hls/private/index.m3u8".to_string(),
        media.clone(),
        format!("{dir}{}", without_query(&part)),
        format!("{dir}{}", without_query(&segment)),
    ];

    let expired = expired_token(&app, "private");
    let forgery = forged(&good, &theirs);
    for target in &targets {
        assert!(assert_denied(&app, target).await.contains("token is required"), "{target}");
        let forged_detail = assert_denied(&app, &with_token(target, &forgery)).await;
        assert!(forged_detail.contains("signature"), "{target}: {forged_detail}");
        assert!(assert_denied(&app, &with_token(target, &expired)).await.contains("expired"), "{target}");
        assert!(assert_denied(&app, &with_token(target, &theirs)).await.contains("another channel"), "{target}");
        assert!(assert_denied(&app, &with_token(target, "garbage")).await.contains("malformed"), "{target}");
        let response = app.get(&with_token(target, &good)).await;
        assert_eq!(response.status(), 200, "{target} with a valid token");
        assert!(!response.bytes().await.unwrap().is_empty(), "{target}");
    }

    // Blocking reload of the next part, with the token beside the directives (either order).
    let (msn, index) = playlist.last_part().unwrap();
    let next = (msn, index + 1);
    let blocking = format!("{media}?_HLS_msn={}&_HLS_part={}&token={good}", next.0, next.1);
    let (status, text) = app.get_text(&blocking).await;
    assert_eq!(status, 200, "{text}");
    let reloaded = MediaPlaylist::parse(&text);
    assert!(reloaded.last_part().is_some_and(|p| p >= (next.0, next.1)), "{text}");
    assert_every_uri_carries(&text, &good);
    let (msn, index) = reloaded.last_part().unwrap();
    let token_first = format!("{media}?token={good}&_HLS_msn={msn}&_HLS_part={index}");
    assert_eq!(app.get_text(&token_first).await.0, 200);
    let no_token = format!("{media}?_HLS_msn={msn}&_HLS_part={index}");
    assert!(assert_denied(&app, &no_token).await.contains("token is required"));
    // A delta update: EXT-X-SKIP, and the token in what it still lists.
    let (status, delta) = app.get_text(&format!("{media}?_HLS_skip=YES&token={good}")).await;
    assert_eq!(status, 200);
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    assert_every_uri_carries(&delta, &good);
    let skip_block = format!("{media}?_HLS_msn={msn}&_HLS_part={index}&_HLS_skip=YES&token={good}");
    let (status, delta) = app.get_text(&skip_block).await;
    assert_eq!(status, 200);
    assert!(delta.contains("#EXT-X-SKIP:"), "{delta}");
    assert_every_uri_carries(&delta, &good);
    assert!(assert_denied(&app, &format!("{media}?_HLS_skip=YES&token={theirs}")).await.contains("another channel"));

    // The thumbnail is a picture of the stream: behind the token too.
    assert!(assert_denied(&app, "/hls/private/thumb.jpg").await.contains("token is required"));
    assert_ne!(app.get(&with_token("/hls/private/thumb.jpg", &good)).await.status(), 403);

    // A public channel: no token needed, a token (any) ignored, none added.
    let open = app.media_playlist_path("open", None).await;
    let (status, text) = app.get_text(&with_token(&open, "garbage")).await;
    assert_eq!(status, 200);
    assert!(!text.contains("token="), "{text}");

    // Public again: the private channel plays without a token at once; private again: refused.
    let patched = app.write("PATCH", "/api/v1/channels/private", Some(json!({"playback": "public"}))).await;
    assert_eq!((patched.status, patched.body["playback"].as_str()), (200, Some("public")));
    assert_eq!(app.get(&media).await.status(), 200);
    app.write("PATCH", "/api/v1/channels/private", Some(json!({"playback": "private"}))).await;
    assert_denied(&app, &media).await;
    let audit = app.write("GET", "/api/v1/audit?limit=100", None).await.body;
    let details: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "channel.updated" && e["target"] == "private")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(details, ["playback public", "playback private"], "{audit}");
    drop((publisher, open_publisher));
    app.appliance.shutdown().await;
}

/// Seconds hls.js watches each way.
const WATCH_SECONDS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_a_private_channel_with_a_token_from_the_origin_and_through_nginx() {
    if !have_ffmpeg() || !have_tool("nginx", "-v", "apt install nginx; scripts/deps.sh installs it") {
        return;
    }
    let Some(player) = support::browser_driver("player", &[]) else { return };
    let app = TestAppliance::start().await;
    let channel = app.create_channel(json!({"name": "vip", "playback": "private", "start": true})).await;
    let good = text_of(&playback_token(&app, "vip", json!({"ttl_seconds": 600, "network": "127.0.0.0/8"})).await);
    let publisher = Publish { seconds: (2 * WATCH_SECONDS + 90) as f64, ..Publish::default() }
        .start(&app.rtmp_url(channel["stream_key"].as_str().unwrap()));
    let media = media_path(&app, "vip", &good).await;
    playlist_until(&app, &media, &good, |p| p.segments.iter().filter(|s| s.duration.is_some()).count() >= 3).await;
    let edge = Edge::start(app.appliance.http_addr).await;

    // Through the edge: playlists are cached per token, so one without a token is refused
    // even right after a viewer's fetch of the same playlist; media is shared.
    let at_edge = with_token(&edge.url(&media), &good);
    let first = app.get(&at_edge).await;
    assert_eq!(first.status(), 200);
    let text = first.text().await.unwrap();
    assert_every_uri_carries(&text, &good);
    assert_eq!(app.get(&with_token(&edge.url(&media), &good)).await.status(), 200);
    let refused = app.get(&edge.url(&media)).await;
    assert_eq!(refused.status(), 403, "a playlist cached for one token served without one");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    // Media is cached once for every token (the origin checked the first request's).
    let segment = MediaPlaylist::parse(&text).segments.iter().rev().find_map(|s| s.uri.clone()).expect("a segment");
    let segment_url = edge.url(&format!("{}{}", base(&media), without_query(&segment)));
    let another = text_of(&playback_token(&app, "vip", json!({})).await);
    assert_eq!(app.get(&with_token(&segment_url, &good)).await.status(), 200);
    let shared = app.get(&with_token(&segment_url, &another)).await;
    assert_eq!(shared.status(), 200);
    assert_eq!(shared.headers()["x-cache-status"], "HIT", "one cached copy of a segment for every token");
    let outsider = text_of(&playback_token(&app, "vip", json!({"network": "192.0.2.0/24"})).await);
    let detail = app.get(&with_token(&edge.url(&media), &outsider)).await.json::<Value>().await.unwrap();
    assert_eq!(detail["detail"], "the playback token is not valid from this address", "{detail}");

    let query = format!("token={good}");
    for (origin, name) in [(app.url(""), "origin"), (edge.url(""), "nginx edge")] {
        let args = [origin.as_str(), "vip", &WATCH_SECONDS.to_string(), "hlsjs", query.as_str()];
        let limit = STEP_TIMEOUT * 2 + Duration::from_secs(WATCH_SECONDS);
        let report = support::run_browser_script(&player.join("play.mjs"), &args, limit).await;
        let p = &report["players"][0];
        assert_eq!(p["http_errors"], json!([]), "{name}: {p}");
        assert_eq!(p["player_errors"], json!([]), "{name}: {p}");
        let played = p["played_seconds"].as_f64().unwrap();
        let wall = p["wall_seconds"].as_f64().unwrap();
        assert!(played >= 0.75 * wall, "{name}: playback advanced {played:.1} s in {wall:.1} s: {p}");
    }
    drop(publisher);
    app.appliance.shutdown().await;
}

/// The private channel of the rotation test, with no stream: a token the gate
/// accepts reaches the origin (404: no stream), one it refuses is 403.
const STUDIO: &str = "/hls/studio/index.m3u8";

async fn opens(app: &TestAppliance, token: &str) -> bool {
    app.get(&with_token(STUDIO, token)).await.status().as_u16() == 404
}

/// A playback token asked for with the API token `token`.
async fn sign(app: &TestAppliance, token: &str, channel: &str) -> support::Reply {
    let path = format!("/api/v1/channels/{channel}/playback-tokens");
    app.call("POST", &path, Some(token), Some(json!({"ttl_seconds": 60}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_old_tokens_for_the_overlap_and_roles_bound_signing_and_rotating() {
    let app = TestAppliance::start().await;
    app.create_channel(json!({"name": "studio", "playback": "private"})).await;
    app.create_channel(json!({"name": "elsewhere", "playback": "private"})).await;
    let path = STUDIO;
    let first = text_of(&playback_token(&app, "studio", json!({})).await);
    assert!(opens(&app, &first).await);

    let rotated = app.write("POST", "/api/v1/playback-keys/rotate", Some(json!({"overlap_seconds": 600}))).await;
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    assert_eq!(rotated.body["retiring"].as_array().unwrap().len(), 1);
    assert!(opens(&app, &first).await, "the old key verifies during the overlap");
    let second = playback_token(&app, "studio", json!({})).await;
    assert_eq!(second["key_id"], rotated.body["key"]["id"]);
    assert!(opens(&app, &text_of(&second)).await);

    let retired = app.write("POST", "/api/v1/playback-keys/rotate", Some(json!({"overlap_seconds": 0}))).await;
    assert_eq!(retired.status, 201);
    assert_eq!(retired.body["retiring"], json!([]));
    assert!(assert_denied(&app, &with_token(path, &first)).await.contains("unknown or retired"));
    assert!(assert_denied(&app, &with_token(path, &text_of(&second))).await.contains("unknown or retired"));
    assert!(opens(&app, &text_of(&playback_token(&app, "studio", json!({})).await)).await);
    let keys = app.write("GET", "/api/v1/playback-keys", None).await.body;
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys["items"][0]["id"], retired.body["key"]["id"]);
    assert!(keys["items"][0].get("secret_hex").is_none() && !keys.to_string().contains("secret"));
    let bad = app.write("POST", "/api/v1/playback-keys/rotate", Some(json!({"overlap_seconds": 2592001}))).await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (400, Some("overlap_seconds")));

    // Operators sign (restricted ones for their channels only); only admins rotate; viewers do neither.
    let operator = app.token_with_role("operator", &[]).await;
    let restricted = app.token_with_role("operator", &["studio"]).await;
    let viewer = app.token_with_role("viewer", &[]).await;
    assert_eq!(sign(&app, &operator, "elsewhere").await.status, 201);
    assert_eq!(sign(&app, &restricted, "studio").await.status, 201);
    assert_eq!(sign(&app, &restricted, "elsewhere").await.status, 404);
    assert_eq!(sign(&app, &viewer, "studio").await.status, 403);
    let by_operator = app.call("POST", "/api/v1/playback-keys/rotate", Some(&operator), Some(json!({}))).await;
    assert_eq!(by_operator.status, 403);
    assert_eq!(app.call("GET", "/api/v1/playback-keys", Some(&operator), None).await.status, 403);
    for (body, field) in [
        (json!({"ttl_seconds": 0}), "ttl_seconds"),
        (json!({"ttl_seconds": 604801}), "ttl_seconds"),
        (json!({"network": "10.0.0.0/33"}), "network"),
    ] {
        let reply = app.write("POST", "/api/v1/channels/studio/playback-tokens", Some(body.clone())).await;
        assert_eq!((reply.status, reply.body["field"].as_str()), (400, Some(field)), "{body}: {:?}", reply.body);
    }

    // The audit log has both rotations, by the admin token, with their windows.
    let audit = app.write("GET", "/api/v1/audit?limit=100", None).await.body;
    let rotations: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "playback_key.rotated")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(rotations, ["overlap 600 s", "overlap 0 s"], "{audit}");

    // The keys are the state file's (what a restart loads).
    let stored = app.appliance.store.playback_keys().unwrap();
    assert_eq!(stored.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), [retired.body["key"]["id"].as_str().unwrap()]);
    app.appliance.shutdown().await;
}

/// The console previews a private channel (the dashboard's card and the
/// channel page) with tokens it asks for with the operator's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_previews_a_private_channel_with_its_own_tokens() {
    if !have_ffmpeg() {
        return;
    }
    let Some(console_dir) = support::browser_driver("console", &[]) else { return };
    let password = "private-console-password";
    let app = TestAppliance::start_with_admin_password(password).await;
    let channel = app.create_channel(json!({"name": "backstage", "playback": "private", "start": true})).await;
    let publisher =
        Publish { seconds: 90.0, ..Publish::default() }.start(&app.rtmp_url(channel["stream_key"].as_str().unwrap()));
    let shots = support::artifacts_dir("console");
    let url = app.url("");
    let args = [url.as_ref(), password.as_ref(), "backstage".as_ref(), shots.as_os_str()];
    let mut script = support::BrowserScript::start(&console_dir.join("private.mjs"), &args);
    let walk = async { while script.next_message().await.is_some() {} };
    tokio::time::timeout(Duration::from_secs(180), walk).await.expect("the walk finishes in time");
    let report = script.report().await;
    assert_eq!(report["error"], Value::Null, "{report:#}");
    assert_eq!((report["card_played"].as_bool(), report["preview_played"].as_bool()), (Some(true), Some(true)));
    assert_eq!(report["http_errors"], json!([]), "{report:#}");
    assert_eq!(report["media_without_token"], json!([]), "{report:#}");
    assert!(report["media_with_token"].as_u64().unwrap() > 10, "{report:#}");
    assert_eq!(report["card_thumbnail"], true, "the card's picture carries the token: {report:#}");
    assert_eq!(report["form_playback"], "private");
    assert_eq!(report["csp_violations"], json!([]), "{report:#}");
    drop(publisher);
    app.appliance.shutdown().await;
}
