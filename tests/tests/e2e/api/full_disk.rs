//! A full data disk: the state database sits on a small tmpfs that the test
//! fills. The API answers 507 with a problem body and changes nothing, a new
//! publish is refused with the reason, the channel that is already live keeps
//! serving its players, the end of a session is retried until it can be
//! recorded, and once there is room again everything works
//! without a restart (redb refuses every operation after an I/O error until
//! the file is reopened; the store reopens it). Needs root to mount the
//! tmpfs; skips loudly where it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use support::{STEP_TIMEOUT, TestAppliance, eventually, finish_within, have_ffmpeg, publish};

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        mounted.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `file` until the disk takes no more.
fn fill(file: &Path) {
    use std::io::Write;
    let mut out = std::fs::File::create(file).expect("the filler file");
    let block = vec![0u8; 64 * 1024];
    while out.write_all(&block).is_ok() {}
    let _ = out.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_refuses_changes_clearly_keeps_live_channels_and_recovers() {
    if !have_ffmpeg() {
        return;
    }
    let data = tempfile::tempdir().expect("temp dir");
    let Some(_disk) = SmallDisk::mount(data.path(), "16m") else {
        support::skip("cannot mount a small tmpfs to fill (needs root)");
        return;
    };
    let app = TestAppliance::start_in(data, |_| {}).await;
    let live = app.create_channel(json!({"name": "live-cam", "start": true})).await;
    let waiting = app.create_channel(json!({"name": "waiting-cam", "start": true})).await;
    let publisher = publish(&app.rtmp_url(live["stream_key"].as_str().unwrap()), 40.0);
    let session = app.session_until("live-cam", "live", |s| s["state"] == "live").await;
    let playlist = session["playlist_path"].as_str().unwrap().to_string();

    let filler = app.data.path().join("filler");
    fill(&filler);

    // Changes go into the file's free pages until they run out; then a change
    // is refused with 507 and a problem body, and nothing is created.
    let mut attempt = 0;
    let refused = loop {
        attempt += 1;
        assert!(attempt < 2000, "the database never ran out of room");
        let name = format!("filler-{attempt}");
        let reply = app.write("POST", "/api/v1/channels", Some(json!({"name": name}))).await;
        match reply.status {
            201 => continue,
            _ => break (name, reply),
        }
    };
    let (name, refused) = refused;
    assert_eq!(refused.status, 507, "{:?}", refused.body);
    assert_eq!(app.call("GET", &format!("/api/v1/channels/{name}"), Some(&app.read_token), None).await.status, 404);
    assert_eq!(refused.body["type"], "urn:appliance:problem:insufficient-storage", "{:?}", refused.body);
    assert!(refused.content_type.starts_with("application/problem+json"), "{}", refused.content_type);

    // Creations carry an audit entry, so the file may still hold room for smaller writes:
    // small changes (one field of one channel) until those are refused too.
    let mut small = 0;
    loop {
        small += 1;
        assert!(small < 2000, "small changes never ran out of room");
        let body = json!({"max_session_seconds": 3600 + small});
        if app.write("PATCH", "/api/v1/channels/waiting-cam", Some(body)).await.status == 507 {
            break;
        }
    }

    // A new publish is refused (its session cannot be recorded) ...
    let (ok, _) =
        finish_within(publish(&app.rtmp_url(waiting["stream_key"].as_str().unwrap()), 3.0), STEP_TIMEOUT).await;
    assert!(!ok, "a publish is refused while the disk is full");

    // ... while the live channel keeps serving: its playlist still advances.
    let parts = |text: &str| text.matches("#EXT-X-PART:").count() + text.matches("#EXTINF").count();
    let (_, before) = app.get_text(&playlist).await;
    let advanced = eventually(STEP_TIMEOUT, || async {
        let (status, text) = app.get_text(&playlist).await;
        (status == 200 && text != before && parts(&text) > 0 && !text.contains("#EXT-X-ENDLIST")).then_some(())
    })
    .await;
    assert!(advanced.is_some(), "the live channel keeps publishing parts on a full disk");

    // The live publisher leaves while the disk is full: once the appliance
    // has seen it go (its playlist ends), its end is recorded at once where
    // the state file still has free pages inside (redb reuses them), or else
    // retried until there is room (below): never lost either way.
    drop(publisher);
    let gone = eventually(STEP_TIMEOUT, || async { app.has_ended(&playlist).await.then_some(()) }).await;
    assert!(gone.is_some(), "the playlist ends when the publisher leaves");
    let current = app.get_json("/api/v1/channels/live-cam").await;
    let pending = current["current_session"] == session["id"];
    assert!(pending || current["current_session"].is_null(), "{current}");

    // Room again: the same process records the end (retried), takes changes
    // and publishes, no restart.
    std::fs::remove_file(&filler).expect("free the disk");
    let over = app.session_until("live-cam", "ended", |s| s["state"] == "ended").await;
    assert_eq!((&over["id"], &over["end_reason"]), (&session["id"], &json!("publisher-left")));
    let created = app.write("POST", "/api/v1/channels", Some(json!({"name": "one-too-many"}))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let second = publish(&app.rtmp_url(waiting["stream_key"].as_str().unwrap()), 4.0);
    app.session_until("waiting-cam", "live", |s| s["state"] == "live").await;
    let (ok, _) = finish_within(second, STEP_TIMEOUT).await;
    assert!(ok, "the publish after the disk had room ran to its end");
    app.appliance.shutdown().await;
}
