//! The boot test: boots the appliance disk image in qemu-system-x86_64 with
//! software emulation (TCG, UEFI firmware), the serial console captured and the
//! HTTP and RTMP ports forwarded to 127.0.0.1, then proves that the box serves
//! (a channel, a real RTMP publish from the host's `ffmpeg`, the LL-HLS
//! playlist and a part fetched over the forwarded port), that systemd's
//! watchdog restarts a wedged main loop with its state intact, that a stop ends
//! live sessions cleanly, and that the box powers off cleanly.
//!
//! `bash image/boot-test.sh` builds the image and runs this test with
//! `APPLIANCE_TEST_IMAGE` set; without it the test says "skipped" and passes.
//! The image file is never written: the VM runs on a sparse copy that is
//! larger than the image, so the first boot also grows the data partition,
//! and that copy is then upgraded as image/README.md says and booted again.
//! A second test boots the image with legacy BIOS firmware.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{MediaPlaylist, Publish, eventually, finish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Boot to ready under TCG on a busy 2-core machine: normally well under a minute.
const BOOT_LIMIT: Duration = Duration::from_secs(360);
/// One shell command in the guest.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);
/// systemd's WatchdogSec= (20 s) plus the restart, with margin.
const WATCHDOG_LIMIT: Duration = Duration::from_secs(120);
const POWEROFF_LIMIT: Duration = Duration::from_secs(120);
/// The overlay disk the VM sees: bigger than the image, so the data partition grows.
const DISK_SIZE: u64 = 8 << 30;

/// What the hypervisor hands the image's provisioning hook (fw_cfg): arm the
/// hidden debug trigger and open a control shell on the second serial port.
const PROVISION: &str = r#"#!/bin/sh
set -eu
systemctl set-environment APPLIANCE_DEBUG_WEDGE=1
systemd-run --unit=boot-test-shell --quiet --setenv=PS1= -p KillSignal=SIGKILL /bin/sh -c 'stty -F /dev/ttyS1 raw -echo; exec /bin/sh </dev/ttyS1 >/dev/ttyS1 2>&1'
echo "boot test: control shell on ttyS1, debug wedge trigger armed"
"#;

/// One VM at a time: two emulated machines on two cores would only slow both.
static ONE_VM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The image to boot, or why this machine cannot run the boot test.
fn image_to_boot() -> Option<PathBuf> {
    // Not a missing tool: the boot test is image/boot-test.sh's to run (after
    // the suite, which it follows in scripts/test.sh), with the image it built.
    let Some(image) = std::env::var_os("APPLIANCE_TEST_IMAGE").map(PathBuf::from) else {
        eprintln!(
            "not run here: APPLIANCE_TEST_IMAGE is not set (bash image/boot-test.sh builds the image and runs this test)"
        );
        return None;
    };
    if let Err(reason) = prerequisites() {
        support::skip(&reason);
        return None;
    }
    Some(image)
}

/// Legacy BIOS boot (SeaBIOS, the GPT's protective MBR, syslinux on the ESP)
/// up to the login prompt; the disk is a throw-away snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_boots_with_legacy_bios() {
    let Some(image) = image_to_boot() else { return };
    let _one = ONE_VM.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console.log");
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio,snapshot=on", image.display()))
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("qemu starts");
    let text = eventually(BOOT_LIMIT, || async {
        let text = String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).into_owned();
        text.contains(" login: ").then_some(text)
    })
    .await;
    let _ = qemu.start_kill();
    let text = text.unwrap_or_else(|| panic!("no login prompt within {BOOT_LIMIT:?} with BIOS firmware"));
    assert!(text.contains("SYSLINUX"), "booted through syslinux");
    eprintln!("boot test: legacy BIOS boot to the login prompt in {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_boots_serves_restarts_when_wedged_and_powers_off() {
    let Some(image) = image_to_boot() else { return };
    let _one = ONE_VM.lock().await;
    let dir = tempfile::tempdir().unwrap();
    Vm::make_disk(&image, dir.path());
    let mut vm = Vm::boot(dir.path(), 1).await;

    // 1. Ready: the health endpoint answers over the forwarded port.
    let ready = vm.wait_http_ready().await;
    eprintln!("boot test: boot to ready (qemu start to /healthz answering) {:.1} s", ready.as_secs_f64());
    let banner = vm.wait_console(" Time sync:", BOOT_LIMIT).await;
    assert!(banner.contains("Admin password: "), "first boot prints the admin password:\n{banner}");
    let hostname = banner_hostname(&banner);
    // HTTPS with a certificate made at the first start, its fingerprint on the banner; HTTP/2 by ALPN.
    let fingerprint = banner.lines().skip_while(|l| !l.contains("HTTPS certificate SHA-256 fingerprint")).nth(1);
    assert!(
        fingerprint.is_some_and(|f| f.trim().len() == 95),
        "the banner shows the certificate's fingerprint:\n{banner}"
    );
    let https = std::process::Command::new("curl")
        .args(["-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{response_code}"])
        .arg(format!("https://127.0.0.1:{}/healthz", vm.https_port))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&https.stdout), "2 200", "HTTPS answers over HTTP/2");
    vm.connect_shell().await;

    // The unit as systemd sees it: notify, watchdog, READY reached, STATUS from the binary.
    let (_, show) =
        vm.sh("systemctl show appliance -p Type,NotifyAccess,WatchdogUSec,ActiveState,SubState,StatusText,User").await;
    for want in ["Type=notify", "NotifyAccess=main", "WatchdogUSec=20s", "ActiveState=active", "User=appliance"] {
        assert!(show.contains(want), "appliance.service lacks {want}:\n{show}");
    }
    assert!(show.contains("StatusText=0 channels live"), "STATUS= from the binary:\n{show}");
    // First boot grew the data partition to the end of the (8 GiB) disk.
    let (_, data_size) = vm
        .sh("lsblk -bno SIZE /dev/disk/by-partlabel/appliance-data; df -B1 --output=size /var/lib/appliance | tail -n1")
        .await;
    let sizes: Vec<u64> = data_size.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    assert!(sizes.len() == 2 && sizes.iter().all(|&s| s > 3 << 30), "data partition and filesystem grew: {data_size}");
    let (rc, _) = vm.sh("systemctl is-active systemd-timesyncd systemd-networkd").await;
    assert_eq!(rc, 0, "time sync and networkd run");

    // 2. A channel, a publish from the host, the playlist and a part over the forwarded port.
    let (key, token) = vm.create_channel("boot-test").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let base = format!("http://127.0.0.1:{}", vm.http_port);
    let rtmp = format!("rtmp://127.0.0.1:{}/live/{key}", vm.rtmp_port);
    let publisher = small_publish(8.0).start(&rtmp);
    let (media_path, playlist) = fetch_live_playlist(&http, &base, "boot-test", None).await;
    assert!(playlist.part_target.is_some(), "ultra-low latency playlist has parts:\n{playlist:?}");
    let (msn, index) = playlist.last_part().expect("a part is listed");
    let part_uri = &playlist.segments.iter().find(|s| s.msn == msn).unwrap().parts[index].uri;
    let playlist_dir = media_path.rsplit_once('/').unwrap().0;
    let part = http.get(format!("{base}{playlist_dir}/{part_uri}")).send().await.unwrap();
    assert_eq!(part.status().as_u16(), 200, "GET part {part_uri}");
    let bytes = part.bytes().await.unwrap();
    assert!(bytes.windows(4).any(|w| w == b"moof"), "the part is a CMAF fragment ({} bytes)", bytes.len());
    eprintln!("boot test: fetched {media_path} and part {part_uri} ({} bytes) from the image", bytes.len());
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    // Logs are structured journal records: select this channel's lines by field.
    let (_, journal) = vm.sh("journalctl -u appliance -b -o cat CHANNEL=boot-test --no-pager").await;
    assert!(journal.contains("input connected"), "journal fields CHANNEL=boot-test:\n{journal}");

    // 3. The watchdog: wedge the main loop (hidden debug trigger) and watch systemd restart it.
    let (_, before) = vm.sh("systemctl show appliance -p MainPID,NRestarts --value | tr '\\n' ' '").await;
    let wedged_at = Instant::now();
    let (rc, _) = vm.sh("systemctl kill --kill-who=main --signal=SIGUSR2 appliance").await;
    assert_eq!(rc, 0);
    let old: Vec<String> = before.split_whitespace().map(String::from).collect();
    let deadline = Instant::now() + WATCHDOG_LIMIT;
    let restarted = loop {
        let (_, now) = vm.sh("systemctl show appliance -p MainPID,NRestarts,ActiveState --value | tr '\\n' ' '").await;
        let fields: Vec<&str> = now.split_whitespace().collect();
        if fields.len() == 3 && old.len() == 2 && fields[0] != old[0] && fields[1] != old[1] && fields[2] == "active" {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the watchdog did not restart the wedged service; before: {before}, now: {now}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    eprintln!(
        "boot test: wedged main loop restarted by the watchdog after {:.1} s (MainPID NRestarts: {} -> {})",
        wedged_at.elapsed().as_secs_f64(),
        before.trim(),
        restarted.trim()
    );
    let (_, journal) =
        vm.sh("journalctl -u appliance -b --no-pager -o cat | grep -E 'Watchdog timeout|main loop wedged'").await;
    assert!(journal.contains("Watchdog timeout"), "systemd logged the watchdog timeout:\n{journal}");
    // State intact: the channel and its key survived, and the same key publishes again.
    let (_, list) =
        vm.sh("runuser -u appliance -- appliance --config /etc/appliance/appliance.toml channel list").await;
    assert!(list.contains("boot-test"), "channel survives the restart:\n{list}");
    vm.wait_http_ready().await;
    let publisher = small_publish(20.0).start(&rtmp);
    let (second_path, _) = fetch_live_playlist(&http, &base, "boot-test", Some(&media_path)).await;
    eprintln!("boot test: the same stream key publishes again after the restart ({second_path})");

    // 4. Graceful stop with a live session: STOPPING, the session ends (ENDLIST), within TimeoutStopSec.
    let stop = Instant::now();
    let (rc, _) = vm.sh("systemctl stop appliance").await;
    assert_eq!(rc, 0);
    let stop_took = stop.elapsed();
    // The session was ended as the appliance stopped: found by its journal fields
    // (the supervisor's "session over" with REASON=ApplianceShutdown, or the
    // routing's own line), and the process exited by itself, not killed.
    let (_, ended) = vm
        .sh("journalctl -u appliance -b -o verbose --no-pager CHANNEL=boot-test \
             | grep -E 'REASON=.*ApplianceShutdown|session ended at shutdown'")
        .await;
    assert!(!ended.trim().is_empty(), "no end of the live session in the journal");
    let (_, result) = vm.sh("systemctl show appliance -p Result,ExecMainCode,ExecMainStatus | tr '\\n' ' '").await;
    assert!(result.contains("Result=success") && result.contains("ExecMainStatus=0"), "clean exit: {result}");
    assert!(stop_took < Duration::from_secs(20), "stopped within TimeoutStopSec (took {stop_took:?})");
    eprintln!("boot test: stop with a live session took {:.1} s", stop_took.as_secs_f64());
    let _ = finish(publisher).await;

    vm.report_boot_times().await;

    // 5. Power off cleanly.
    vm.poweroff().await;
    drop(vm);

    // 6. Upgrade: a new system over partitions 1 and 2 as image/README.md says,
    // then boot it: the data partition's channels, keys, tokens and identity are kept.
    upgrade_system(&image, &dir.path().join("disk.raw"));
    let mut vm = Vm::boot(dir.path(), 2).await;
    let ready = vm.wait_http_ready().await;
    eprintln!("boot test: boot to ready after the upgrade {:.1} s", ready.as_secs_f64());
    let banner = vm.wait_console("Management URL:", BOOT_LIMIT).await;
    assert!(!banner.contains("Admin password: "), "the admin password is kept, not made anew:\n{banner}");
    assert_eq!(banner_hostname(&banner), hostname, "the identity is kept");
    vm.connect_shell().await;
    let (rc, out) = vm
        .sh("test \"$(getent shadow root | cut -d: -f2)\" = \"$(cat /var/lib/appliance/identity/admin-password.hash)\"")
        .await;
    assert_eq!(rc, 0, "root's password is the kept admin password: {out}");
    if let Some(token) = &token {
        let response = http
            .get(format!("http://127.0.0.1:{}/api/v1/channels/boot-test", vm.http_port))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "the API token and the channel are kept");
    }
    let base = format!("http://127.0.0.1:{}", vm.http_port);
    let rtmp = format!("rtmp://127.0.0.1:{}/live/{key}", vm.rtmp_port);
    let publisher = small_publish(6.0).start(&rtmp);
    let (path, _) = fetch_live_playlist(&http, &base, "boot-test", None).await;
    eprintln!("boot test: after the upgrade the kept stream key publishes again ({path})");
    let (ok, stderr) = finish(publisher).await;
    assert!(ok, "publisher failed: {stderr}");
    vm.report_boot_times().await;
    vm.poweroff().await;
}

/// The hostname on the banner's first line (" Appliance appliance-1a2b3c (active)").
fn banner_hostname(banner: &str) -> String {
    // The login prompt may share the line.
    banner
        .split("Appliance appliance-")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|id| format!("appliance-{id}"))
        .unwrap_or_else(|| panic!("no hostname on the banner:\n{banner}"))
}

/// image/README.md's upgrade: the new image's ESP and system slot a written
/// over the disk's, at the offsets the README names (checked against the GPT).
fn upgrade_system(image: &Path, disk: &Path) {
    let out = std::process::Command::new("sfdisk").arg("--json").arg(image).output().expect("sfdisk runs");
    let table: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sfdisk --json");
    let partitions = table["partitiontable"]["partitions"].as_array().expect("partitions");
    let mib = |p: &serde_json::Value, key: &str| p[key].as_u64().unwrap() * 512 / (1 << 20);
    for (index, (skip, count)) in [(1u64, 256u64), (257, 2048)].into_iter().enumerate() {
        let p = &partitions[index];
        assert_eq!((mib(p, "start"), mib(p, "size")), (skip, count), "README offsets for partition {}", index + 1);
        let status = std::process::Command::new("dd")
            .arg(format!("if={}", image.display()))
            .arg(format!("of={}", disk.display()))
            .args(["bs=1M", &format!("skip={skip}"), &format!("seek={skip}"), &format!("count={count}")])
            .args(["conv=notrunc,fsync", "status=none"])
            .status()
            .unwrap();
        assert!(status.success(), "dd partition {}", index + 1);
    }
    eprintln!("boot test: upgraded: partitions 1 (ESP) and 2 (system) rewritten from the image, 4 (data) kept");
}

fn small_publish(seconds: f64) -> Publish {
    Publish { seconds, size: "320x180", fps: 25, ..Publish::default() }
}

/// Polls the multivariant playlist until it names a media playlist (other than
/// `not`) with a part; returns its path and parse.
async fn fetch_live_playlist(
    http: &reqwest::Client,
    base: &str,
    channel: &str,
    not: Option<&str>,
) -> (String, MediaPlaylist) {
    eventually(Duration::from_secs(60), || async {
        let text = get_text(http, &format!("{base}/hls/{channel}/index.m3u8")).await?;
        let uri = text.lines().find(|l| !l.starts_with('#') && !l.is_empty())?;
        let path = format!("/hls/{channel}/{uri}");
        if Some(path.as_str()) == not {
            return None;
        }
        let media = get_text(http, &format!("{base}{path}")).await?;
        let playlist = MediaPlaylist::parse(&media);
        playlist.last_part().is_some().then_some((path, playlist))
    })
    .await
    .unwrap_or_else(|| panic!("channel {channel} never got a playlist with a part"))
}

async fn get_text(http: &reqwest::Client, url: &str) -> Option<String> {
    let response = http.get(url).send().await.ok()?;
    if response.status().as_u16() != 200 {
        return None;
    }
    response.text().await.ok()
}

fn prerequisites() -> Result<(), String> {
    for (program, arg) in [("qemu-system-x86_64", "--version"), ("sfdisk", "--version"), ("ffmpeg", "-version")] {
        let ok = std::process::Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("{program} is not installed (bash scripts/deps.sh installs it)"));
        }
    }
    if ovmf().is_none() {
        return Err("no UEFI firmware for qemu (package ovmf)".into());
    }
    Ok(())
}

/// OVMF's code and variable-store templates.
fn ovmf() -> Option<(PathBuf, PathBuf)> {
    [("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.fd", "OVMF_VARS.fd")]
        .iter()
        .map(|(c, v)| (Path::new("/usr/share/OVMF").join(c), Path::new("/usr/share/OVMF").join(v)))
        .find(|(c, v)| c.exists() && v.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The appliance in a VM.
struct Vm {
    qemu: Option<Child>,
    console: PathBuf,
    socket: PathBuf,
    http_port: u16,
    https_port: u16,
    rtmp_port: u16,
    started: Instant,
    shell: Option<tokio::net::UnixStream>,
    seq: u32,
}

impl Vm {
    /// A raw copy of the image (sparse), grown to [`DISK_SIZE`]: the disk the box has.
    fn make_disk(image: &Path, dir: &Path) -> PathBuf {
        let disk = dir.join("disk.raw");
        let status = std::process::Command::new("cp").arg("--sparse=always").arg(image).arg(&disk).status().unwrap();
        assert!(status.success(), "copy the image");
        std::fs::OpenOptions::new().write(true).open(&disk).unwrap().set_len(DISK_SIZE).unwrap();
        disk
    }

    /// Boots `dir/disk.raw`; `boot` numbers the console log and control socket.
    async fn boot(dir: &Path, boot: u32) -> Vm {
        let disk = dir.join("disk.raw");
        let (code, vars) = ovmf().unwrap();
        let vars_copy = dir.join("vars.fd");
        if !vars_copy.exists() {
            std::fs::copy(vars, &vars_copy).unwrap();
        }
        let provision = dir.join("provision.sh");
        let console = dir.join(format!("console-{boot}.log"));
        let socket = dir.join(format!("ctl-{boot}.sock"));
        std::fs::write(&provision, PROVISION).unwrap();
        let (http_port, rtmp_port, https_port) = (free_port(), free_port(), free_port());
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2048"])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", code.display()))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=1,file={}", vars_copy.display()))
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()))
            // restrict=on: the guest reaches nothing but the forwarded ports.
            .arg("-netdev")
            .arg(format!(
                "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{http_port}-:80,hostfwd=tcp:127.0.0.1:{rtmp_port}-:1935,hostfwd=tcp:127.0.0.1:{https_port}-:443"
            ))
            .args(["-device", "virtio-net-pci,netdev=net0"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-chardev")
            .arg(format!("socket,id=ctl,path={},server=on,wait=off", socket.display()))
            .args(["-serial", "chardev:ctl"])
            .arg("-fw_cfg")
            .arg(format!("name=opt/org.appliance/provision,file={}", provision.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let qemu = qemu.spawn().expect("qemu starts");
        eprintln!("boot test: qemu (TCG) started (boot {boot}), console in {}", console.display());
        Vm { qemu: Some(qemu), console, socket, http_port, rtmp_port, https_port, started, shell: None, seq: 0 }
    }

    fn console(&self) -> String {
        std::fs::read(&self.console).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.qemu.as_mut().and_then(|q| q.try_wait().ok().flatten()) {
            panic!("qemu exited early ({status})");
        }
    }

    /// Polls `/healthz` over the forwarded port; returns the time since qemu started.
    async fn wait_http_ready(&mut self) -> Duration {
        let url = format!("http://127.0.0.1:{}/healthz", self.http_port);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let deadline = Instant::now() + BOOT_LIMIT;
        loop {
            self.assert_running();
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return self.started.elapsed();
            }
            assert!(Instant::now() < deadline, "the appliance was not ready within {BOOT_LIMIT:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits for `needle` on the serial console; returns the console from its line on.
    async fn wait_console(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let console = self.console();
            if let Some(at) = console.find(needle) {
                let start = console[..at].rfind("=====").unwrap_or(at);
                return console[start..].to_string();
            }
            self.assert_running();
            assert!(Instant::now() < deadline, "{needle:?} did not appear on the console within {limit:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Connects to the control shell on ttyS1 (opened by the provisioning script).
    async fn connect_shell(&mut self) {
        let mut stream = tokio::net::UnixStream::connect(&self.socket).await.expect("qemu's control socket");
        let deadline = Instant::now() + COMMAND_LIMIT;
        let mut seen = Vec::new();
        loop {
            stream.write_all(b"echo @@hello@@\n").await.unwrap();
            let mut buf = [0u8; 4096];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
                seen.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&seen).contains("@@hello@@") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no control shell on ttyS1 (provisioning hook)");
        }
        // Drain what the repeated greetings left.
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut [0u8; 4096])).await {
            if n == 0 {
                break;
            }
        }
        self.shell = Some(stream);
    }

    /// Runs `command` in the guest as root; returns its exit status and output.
    async fn sh(&mut self, command: &str) -> (i32, String) {
        self.seq += 1;
        let marker = format!("@@{}:rc=", self.seq);
        let shell = self.shell.as_mut().expect("connect_shell first");
        let begin = format!("@@{}:begin@@\n", self.seq);
        let line = format!(
            "printf '@@%s:begin@@\\n' {0}; ( {command} ) 2>&1; printf '@@%s:rc=%s@@\\n' {0} \"$?\"\n",
            self.seq
        );
        shell.write_all(line.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(COMMAND_LIMIT, async {
            let mut buf = [0u8; 8192];
            loop {
                let n = shell.read(&mut buf).await.unwrap();
                assert!(n > 0, "control shell closed");
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                if let Some(at) = text.find(&marker) {
                    let rest = &text[at + marker.len()..];
                    if let Some(end) = rest.find("@@") {
                        // Only what the command printed: no prompt, no earlier output.
                        let output = text[..at].rsplit_once(begin.as_str()).map_or(&text[..at], |(_, after)| after);
                        return (rest[..end].parse().unwrap_or(-1), output.to_string());
                    }
                }
            }
        })
        .await;
        read.unwrap_or_else(|_| panic!("guest command {command:?} did not finish within {COMMAND_LIMIT:?}"))
    }

    /// Creates a channel; returns its stream key. Through the REST API with a
    /// write token made in the guest (`appliance token create`, the secret is
    /// shown once); with the CLI in the guest where the image's binary has no API.
    async fn create_channel(&mut self, name: &str) -> (String, Option<String>) {
        let cli = "runuser -u appliance -- appliance --config /etc/appliance/appliance.toml";
        let (rc, out) = self.sh(&format!("{cli} token create --name boot-test --scope write")).await;
        let secret = (rc == 0).then(|| out.lines().nth(1).map(|l| l.trim().to_string())).flatten();
        if let Some(secret) = secret.filter(|s| !s.is_empty() && !s.contains(' ')) {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            let response = http
                .post(format!("http://127.0.0.1:{}/api/v1/channels", self.http_port))
                .bearer_auth(&secret)
                .header("content-type", "application/json")
                .body(format!(r#"{{"name":"{name}","start":true}}"#))
                .send()
                .await
                .expect("POST /api/v1/channels");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            if status != 404 {
                assert_eq!(status, 201, "POST /api/v1/channels: {body}");
                let json: serde_json::Value = serde_json::from_str(&body).expect("channel JSON");
                let key = json["stream_key"].as_str().unwrap_or_else(|| panic!("no stream_key in {body}"));
                eprintln!("boot test: channel {name} created through the REST API with a write token");
                return (key.to_string(), Some(secret));
            }
        }
        let (rc, out) = self.sh(&format!("{cli} channel add {name}")).await;
        assert_eq!(rc, 0, "channel add: {out}");
        let key = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("key:"))
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|| panic!("no stream key in: {out}"));
        eprintln!("boot test: channel {name} created with the CLI in the guest (this binary has no REST API)");
        (key, None)
    }

    /// Where the boot time went, for the report.
    async fn report_boot_times(&mut self) {
        let (_, times) = self.sh("systemd-analyze time | head -n1; systemd-analyze blame --no-pager | head -n 6").await;
        eprintln!("boot test: guest boot times:\n{}", times.trim_end());
    }

    async fn poweroff(&mut self) {
        let shell = self.shell.as_mut().unwrap();
        shell.write_all(b"systemctl --no-block poweroff\n").await.unwrap();
        let mut qemu = self.qemu.take().unwrap();
        let status = tokio::time::timeout(POWEROFF_LIMIT, qemu.wait())
            .await
            .unwrap_or_else(|_| panic!("the VM did not power off within {POWEROFF_LIMIT:?}"))
            .unwrap();
        assert!(status.success(), "qemu exited with {status}");
        let console = self.console();
        assert!(console.contains("reboot: Power down"), "clean power-off on the console");
        eprintln!("boot test: powered off cleanly after {:.1} s in total", self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let console = self.console();
            let tail: Vec<&str> = console.lines().rev().take(80).collect();
            eprintln!("---- last console lines ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
            if let Some(mut qemu) = self.qemu.take() {
                let _ = qemu.start_kill();
            }
        }
    }
}
