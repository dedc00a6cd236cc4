//! The sd_notify protocol end to end against a fake systemd notification
//! socket. Its own test binary (one test, one thread) because it sets the
//! environment variables systemd would set.

use std::time::Duration;

use appliance::systemd_notify::{Notifier, ServiceStatus};

/// READY with STATUS, then WATCHDOG pings only while the "main loop" answers.
#[test]
fn pings_only_while_the_main_loop_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // SAFETY: this test binary runs this one test and no other thread reads the environment yet.
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", "400000");
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    }
    let notifier = Notifier::from_env();
    assert!(notifier.is_enabled());
    notifier.ready(&ServiceStatus::default());
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        "READY=1\nSTATUS=0 channels live, 0 sessions, encoders not probed yet\n"
    );
    let (mut probes, thread) = notifier.spawn_watchdog().expect("watchdog thread");
    // Answer two probes: two pings, each with the answer as STATUS.
    for _ in 0..2 {
        let probe = probes.blocking_recv().unwrap();
        probe.answer(ServiceStatus { channels_live: 2, sessions: 2, encoders: None });
        let n = socket.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("WATCHDOG=1\nSTATUS=2 channels live, 2 sessions"), "{text:?}");
    }
    // Take the next probe and never answer it: no ping for three watchdog ticks.
    let unanswered = probes.blocking_recv().unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    match socket.recv(&mut buf) {
        Ok(n) => panic!("got {:?} although the main loop did not answer", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{e}"),
    }
    // The loop ends (shutdown): the thread stops by itself.
    drop(unanswered);
    drop(probes);
    thread.join().unwrap();
    notifier.stopping("stopping: ending sessions");
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "STOPPING=1\nSTATUS=stopping: ending sessions\n");
}
