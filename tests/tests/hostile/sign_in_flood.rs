//! Console sign-in under a flood of wrong passwords, with the shipped
//! budgets: 200 concurrent attempts from one address, then 200 from forty
//! addresses. Password hashing runs on a small fixed pool and the budgets
//! are charged when an attempt starts, so nearly all of them get 429 at
//! once, memory stays bounded (each argon2id run takes 19 MiB; one thread per
//! attempt took the process to 3.3 GB), and the right password from another
//! address still signs in afterwards (once the admin's own budget, which the
//! flood spent too, lets one attempt through: one per 12 s).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::connections::resident_bytes;
use support::{STEP_TIMEOUT, TestAppliance};

const PASSWORD: &str = "the right password";

/// Threads of this process now.
fn threads() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()).expect("Threads")
}

/// Samples this process's RSS and thread count until stopped; gives their peaks.
struct Peaks {
    rss: Arc<AtomicU64>,
    threads: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl Peaks {
    fn start() -> Peaks {
        let (rss, threads_peak, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let sampler = std::thread::spawn({
            let (rss, threads_peak, stop) = (rss.clone(), threads_peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    rss.fetch_max(resident_bytes(), Ordering::Relaxed);
                    threads_peak.fetch_max(threads(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Peaks { rss, threads: threads_peak, stop, sampler }
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sampler.join();
        (self.rss.load(Ordering::Relaxed), self.threads.load(Ordering::Relaxed))
    }
}

/// A client whose connections come from 127.0.0.`host` (loopback answers on all of 127/8).
fn client_from(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(address)).timeout(STEP_TIMEOUT).build().expect("client")
}

/// The statuses of `count` concurrent sign-ins with `password` spread over `clients`.
async fn sign_ins(
    app: &TestAppliance,
    clients: &[reqwest::Client],
    count: usize,
    password: &str,
) -> Vec<(u16, Option<u64>)> {
    let attempts = (0..count).map(|i| {
        let request =
            clients[i % clients.len()].post(app.url("/console/api/session")).json(&json!({"password": password}));
        async move {
            let response = request.send().await.expect("the appliance answers every sign-in");
            let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
            (response.status().as_u16(), retry)
        }
    });
    futures_util::future::join_all(attempts).await
}

fn tally(what: &str, statuses: &[(u16, Option<u64>)]) -> (usize, usize) {
    let refused = statuses.iter().filter(|(s, _)| *s == 429).count();
    assert!(
        statuses.iter().all(|(s, retry)| *s != 429 || retry.is_some_and(|r| (1..=60).contains(&r))),
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|(s, _)| *s != 200 && *s < 500), "{what}: {statuses:?}");
    (statuses.len() - refused, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_is_refused_at_once_with_bounded_memory_and_the_admin_still_signs_in() {
    let app = TestAppliance::start_with(|c| {
        let defaults = appliance::config::ApiConfig::default();
        c.api = appliance::config::ApiConfig { read_burst: 1_000_000, read_per_second: 1_000_000, ..defaults };
        c.api.mutation_burst = 1_000_000;
        c.api.mutation_per_second = 1_000_000;
        appliance::http::console::password::set(&c.data_dir, PASSWORD).expect("admin password set");
    })
    .await;
    let (rss_before, threads_before) = (resident_bytes(), threads());

    // 200 at once from one address.
    let one = [client_from(Ipv4Addr::new(127, 0, 0, 2))];
    let peaks = Peaks::start();
    let from_one = sign_ins(&app, &one, 200, "a wrong guess").await;
    let (hashed_one, refused_one) = tally("one address", &from_one);
    // 200 at once from forty addresses.
    let forty: Vec<_> = (1..=40).map(|i| client_from(Ipv4Addr::new(127, 0, 1, i))).collect();
    let from_forty = sign_ins(&app, &forty, 200, "another wrong guess").await;
    let (hashed_forty, refused_forty) = tally("forty addresses", &from_forty);
    let (rss_peak, threads_peak) = peaks.stop();
    eprintln!(
        "sign-in flood: one address {hashed_one} checked / {refused_one} refused; forty addresses \
         {hashed_forty} checked / {refused_forty} refused; RSS {} MB before, {} MB at peak; threads {threads_before} \
         before, {threads_peak} at peak",
        rss_before >> 20,
        rss_peak >> 20
    );
    let burst = appliance::config::ApiConfig::default().auth_failure_burst as usize;
    assert!(hashed_one <= burst, "one address gets at most its burst of {burst} checked: {hashed_one}");
    let total = appliance::config::ApiConfig::default().sign_in_failure_burst_total as usize;
    assert!(hashed_forty <= total, "forty addresses get at most the total burst of {total}: {hashed_forty}");
    assert!(refused_one + refused_forty >= 350, "most are refused: {refused_one} + {refused_forty}");
    // Two workers at 19 MiB each, not a thread per attempt (3.3 GB and 204
    // threads before). The bound leaves room for the suite's other tests,
    // which run in this process at the same time.
    assert!(rss_peak < rss_before + (512 << 20), "RSS went from {rss_before} to {rss_peak} bytes");

    // The admin, from another address, honours Retry-After and signs in.
    let admin = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let mut refusals = 0;
    loop {
        let reply =
            admin.post(app.url("/console/api/session")).json(&json!({"password": PASSWORD})).send().await.unwrap();
        if reply.status().as_u16() == 200 {
            assert!(reply.headers().get("set-cookie").is_some());
            break;
        }
        assert_eq!(reply.status().as_u16(), 429, "only refused for the budgets, never as a wrong password");
        let retry: u64 = reply.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry <= 12, "the total budget refills one attempt every 2 s, the admin's own one every 12 s: {retry}");
        refusals += 1;
        assert!(refusals <= 10, "the admin never got in");
        tokio::time::sleep(Duration::from_secs(retry)).await;
    }
    eprintln!("the admin signed in after {refusals} refusals");
}
