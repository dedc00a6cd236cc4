//! The demo publisher: the `ffmpeg` program (an outside client, as a studio's
//! encoder would be) sends a moving test pattern with a clock and a tone over
//! real RTMP on loopback, restarted if it exits.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

/// Publishes into `rtmp_addr` with `stream_key` until `shutdown` flips.
pub async fn run_publisher(rtmp_addr: SocketAddr, stream_key: String, shutdown: watch::Receiver<bool>) {
    let stopped = move || {
        let mut shutdown = shutdown.clone();
        async move { shutdown.wait_for(|stop| *stop).await.is_ok() }
    };
    let url = format!("rtmp://127.0.0.1:{}/live/{stream_key}", rtmp_addr.port());
    let mut with_clock = true;
    loop {
        let started = tokio::time::Instant::now();
        let mut child = match publisher_command(&url, with_clock).spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the demo publisher: is the ffmpeg program installed?");
                return;
            }
        };
        tracing::info!(clock = with_clock, "demo publisher started");
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stopped() => {
                let _ = child.kill().await;
                return;
            }
        };
        if with_clock && started.elapsed() < Duration::from_secs(3) {
            // drawtext needs a font; without one, show the pattern without the clock.
            tracing::warn!(?status, "demo publisher with a clock exited at once; retrying without the clock overlay");
            with_clock = false;
            continue;
        }
        tracing::warn!(?status, "demo publisher exited; restarting in 2 s");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stopped() => return,
        }
    }
}

fn publisher_command(url: &str, with_clock: bool) -> Command {
    // Wall-clock time and frame number, so glass-to-glass latency can be read off a screen.
    let clock = ",drawtext=text='%{localtime\\:%X}.%{eif\\:mod(n\\,30)\\:d\\:2}':fontsize=72:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=12:x=(w-tw)/2:y=h-th-48";
    let video = format!("testsrc2=size=1280x720:rate=30{}", if with_clock { clock } else { "" });
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-nostats", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &video])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "1250k"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}
