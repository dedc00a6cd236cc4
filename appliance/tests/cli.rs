//! The `appliance` command line as an operator uses it: channel management
//! against a real redb file, and a bad configuration refused before binding.

use std::process::Command;

fn appliance(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_appliance"));
    command.env("APPLIANCE_DATA_DIR", data).env_remove("APPLIANCE_CONFIG");
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let out = command.output().expect("appliance runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn channel_add_list_remove() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "studio-1", "--latency-mode", "low"]));
    assert!(ok, "{err}");
    assert!(out.contains("channel studio-1 created (low)"), "{out}");
    let publish = out.lines().find(|l| l.starts_with("publish:")).expect("publish URL");
    assert!(publish.contains("rtmp://127.0.0.1:1935/live/sk_"), "{out}");
    assert!(out.contains("playback: http://127.0.0.1:8080/hls/studio-1/index.m3u8"), "{out}");

    let (ok, _, err) = run(appliance(data.path()).args(["channel", "add", "studio-1"]));
    assert!(!ok);
    assert!(err.contains("channel \"studio-1\" already exists"), "{err}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "add", "Bad Name"]));
    assert!(!ok);
    assert!(err.contains("is invalid"), "{err}");

    let (ok, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(ok);
    assert!(out.lines().any(|l| l.starts_with("studio-1") && l.contains("low")), "{out}");

    let (ok, out, _) = run(appliance(data.path()).args(["channel", "remove", "studio-1"]));
    assert!(ok, "{out}");
    let (_, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(!out.contains("studio-1"), "{out}");
}

#[test]
fn bad_configuration_exits_before_binding() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("appliance.toml");
    std::fs::write(&config, "[hls]\npart_target_ms = 5\n").unwrap();
    let (ok, _, err) = run(appliance(data.path()).args(["serve", "--config"]).arg(&config));
    assert!(!ok);
    assert!(err.contains("invalid configuration: hls.part_target_ms: 5 is outside 100..=2000"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    let (ok, _, err) = run(appliance(data.path()).arg("serve").env("APPLIANCE_RTMP_LISTEN", "not-an-address"));
    assert!(!ok);
    assert!(err.contains("rtmp.listen: \"not-an-address\" is not an address:port"), "{err}");
}

#[test]
fn channel_lifecycle_and_tokens_from_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(appliance(data.path()).args(["channel", "add", "cam", "--idle"]));
    assert!(ok, "{err}");
    assert!(out.contains("state:    idle"), "{out}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "start", "cam"]));
    assert!(ok && out.contains("channel cam started"), "{out}");
    let (ok, _, err) = run(appliance(data.path()).args(["channel", "start", "cam"]));
    assert!(!ok && err.contains("the channel is already active"), "{err}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "rotate-key", "cam"]));
    assert!(ok && out.contains("publish:  rtmp://127.0.0.1:1935/live/sk_"), "{out}");
    let (ok, out, _) = run(appliance(data.path()).args(["channel", "stop", "cam"]));
    assert!(ok && out.contains("channel cam stopped"), "{out}");
    let (_, out, _) = run(appliance(data.path()).args(["channel", "list"]));
    assert!(out.lines().any(|l| l.starts_with("cam") && l.contains("stopped")), "{out}");

    let (ok, out, err) = run(appliance(data.path()).args(["token", "create", "--name", "ci", "--scope", "read"]));
    assert!(ok, "{err}");
    let text = out.lines().nth(1).unwrap().to_string();
    let id = text.split('.').next().unwrap().to_string();
    assert!(id.starts_with("tok_") && out.contains("not shown again"), "{out}");
    let (_, listed, _) = run(appliance(data.path()).args(["token", "list"]));
    assert!(listed.contains(&id) && listed.contains("read") && !listed.contains(&text), "{listed}");
    let (ok, _, err) = run(appliance(data.path()).args(["token", "create", "--name", "x", "--scope", "admin"]));
    assert!(!ok && err.contains("unknown scope \"admin\""), "{err}");
    let (ok, out, _) = run(appliance(data.path()).args(["token", "revoke", &id]));
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, _, err) = run(appliance(data.path()).args(["token", "revoke", &id]));
    assert!(!ok && err.contains("does not exist"), "{err}");
}
