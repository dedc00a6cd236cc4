//! The shipped systemd units pass `systemd-analyze verify`, and the service's
//! `systemd-analyze security` exposure stays in the "OK" band. Skips loudly
//! where systemd-analyze is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

fn have_systemd_analyze() -> bool {
    test_tools::have_tool("systemd-analyze", "--version", "package systemd")
}

/// Every unit in systemd/ and image/rootfs/, verified as systemd would load
/// it; the binary's path points at the freshly built one.
#[test]
fn units_pass_systemd_analyze_verify() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image/rootfs");
    let image_units = image_root.join("usr/lib/systemd/system");
    let helpers = format!("{}/", image_root.join("usr/lib/appliance").display());
    let mut units = Vec::new();
    for source in [systemd_dir(), image_units] {
        for entry in std::fs::read_dir(&source).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "service" || e == "timer" || e == "socket") {
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.replace("/usr/bin/appliance", env!("CARGO_BIN_EXE_appliance"));
                // The image's helper scripts are checked where they are.
                let text = text.replace("/usr/lib/appliance/", &helpers);
                let target = dir.path().join(path.file_name().unwrap());
                std::fs::write(&target, text).unwrap();
                units.push(target);
            }
        }
    }
    assert!(units.len() >= 4, "found the units: {units:?}");
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Complaints about units outside ours (the host's own) are not ours to fix.
    let ours: Vec<&str> =
        stderr.lines().filter(|l| l.starts_with("appliance") || l.contains(&*dir.path().to_string_lossy())).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify: {stderr}");
    eprintln!("systemd-analyze verify: {} units pass", units.len());
}

#[test]
fn service_exposure_is_ok() {
    if !have_systemd_analyze() {
        return;
    }
    let unit = systemd_dir().join("appliance.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", "--threshold=25"])
        .arg(&unit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("no score: {stdout}"));
    eprintln!("systemd-analyze security: {line}");
    let score: f64 =
        line.split("appliance.service: ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(score <= 2.5, "appliance.service exposure {score} (want the \"OK\" band, at most 2.5): {stdout}");
}
