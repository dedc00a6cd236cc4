//! The system route: what the host looks like now (CPU, memory, the data
//! directory's disk, temperatures where `/sys/class/thermal` or hwmon expose
//! them), read from `/proc` and `/sys` on each request. Read-only.

use std::path::Path;
use std::sync::Mutex;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::ReadErrors;
use crate::http::access::caller::Caller;

/// A temperature sensor's reading.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Temperature {
    /// `thermal_zone0 (x86_pkg_temp)`, `hwmon1 coretemp temp2`, ...
    pub sensor: String,
    pub celsius: f64,
}

/// The host's resources.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemStatus {
    pub cpu_cores: u32,
    /// 1, 5 and 15 minute load averages.
    pub load_average: Vec<f64>,
    /// Share of CPU time busy since the previous request to this route (null on the first).
    pub cpu_percent: Option<f64>,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// The file system of the data directory (0 when unknown).
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
    /// Seconds since the host booted.
    pub uptime_seconds: u64,
    /// Empty where the machine exposes none.
    pub temperatures: Vec<Temperature>,
}

/// CPU, memory, disk and temperatures of the host.
#[utoipa::path(get, path = "/system", tag = "health",
    responses((status = 200, description = "The host's resources", body = SystemStatus), ReadErrors),
    security(("bearer" = [])))]
pub async fn system(State(api): State<ApiState>, _: Caller) -> Json<SystemStatus> {
    let (disk_total_bytes, disk_available_bytes) = disk(&api.data_dir).await.unwrap_or((0, 0));
    let status = tokio::task::spawn_blocking(move || {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        SystemStatus {
            cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .filter_map(|v| v.parse().ok())
                .collect(),
            cpu_percent: cpu_percent(),
            memory_total_bytes: meminfo_kib(&meminfo, "MemTotal") * 1024,
            memory_available_bytes: meminfo_kib(&meminfo, "MemAvailable") * 1024,
            disk_total_bytes,
            disk_available_bytes,
            uptime_seconds: std::fs::read_to_string("/proc/uptime")
                .ok()
                .and_then(|t| t.split('.').next()?.parse().ok())
                .unwrap_or(0),
            temperatures: temperatures(),
        }
    })
    .await
    .expect("reading /proc does not panic");
    Json(status)
}

fn meminfo_kib(meminfo: &str, key: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (busy, total) jiffies of the previous request.
static LAST_CPU: Mutex<Option<(u64, u64)>> = Mutex::new(None);

fn cpu_percent() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    let busy = total.saturating_sub(idle);
    // Two counters written together: a poisoned lock still holds a valid
    // pair, and failing here forever would blank the figure for good.
    let mut last = LAST_CPU.lock().unwrap_or_else(|e| e.into_inner());
    let previous = last.replace((busy, total));
    let (prev_busy, prev_total) = previous?;
    let dt = total.checked_sub(prev_total).filter(|d| *d > 0)?;
    Some(100.0 * busy.saturating_sub(prev_busy) as f64 / dt as f64)
}

/// The data directory's file system from `df` (no FFI in this crate).
async fn disk(dir: &Path) -> Option<(u64, u64)> {
    let output = tokio::process::Command::new("df").args(["-P", "-B1"]).arg(dir).output().await.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.lines().nth(1)?.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

fn temperatures() -> Vec<Temperature> {
    let read = |p: &Path| std::fs::read_to_string(p).ok().map(|t| t.trim().to_string());
    let mut found = Vec::new();
    if let Ok(zones) = std::fs::read_dir("/sys/class/thermal") {
        for zone in zones.flatten().filter(|z| z.file_name().to_string_lossy().starts_with("thermal_zone")) {
            let milli = read(&zone.path().join("temp")).and_then(|t| t.parse::<f64>().ok());
            if let Some(milli) = milli {
                let kind = read(&zone.path().join("type")).unwrap_or_default();
                found.push(Temperature {
                    sensor: format!("{} ({kind})", zone.file_name().to_string_lossy()),
                    celsius: milli / 1000.0,
                });
            }
        }
    }
    if let Ok(monitors) = std::fs::read_dir("/sys/class/hwmon") {
        for monitor in monitors.flatten() {
            let name = read(&monitor.path().join("name")).unwrap_or_default();
            let Ok(files) = std::fs::read_dir(monitor.path()) else { continue };
            for file in files.flatten() {
                let file_name = file.file_name().to_string_lossy().to_string();
                let Some(sensor) = file_name.strip_prefix("temp").and_then(|s| s.strip_suffix("_input")) else {
                    continue;
                };
                if let Some(milli) = read(&file.path()).and_then(|t| t.parse::<f64>().ok()) {
                    let label =
                        read(&monitor.path().join(format!("temp{sensor}_label"))).unwrap_or(format!("temp{sensor}"));
                    found.push(Temperature {
                        sensor: format!("{} {name} {label}", monitor.file_name().to_string_lossy()),
                        celsius: milli / 1000.0,
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| a.sensor.cmp(&b.sensor));
    found.truncate(32);
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo_lines() {
        let text = "MemTotal:        8000000 kB\nMemFree:  10 kB\nMemAvailable:    4000000 kB\n";
        assert_eq!(super::meminfo_kib(text, "MemTotal"), 8_000_000);
        assert_eq!(super::meminfo_kib(text, "MemAvailable"), 4_000_000);
        assert_eq!(super::meminfo_kib(text, "Nope"), 0);
    }
}
