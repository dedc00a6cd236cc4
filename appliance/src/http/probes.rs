//! Probes for load balancers, systemd's watchdog and the image's boot test:
//! `/healthz` (the process answers HTTP) and `/readyz` (it can do its job:
//! the RTMP listener accepts, the state file takes a write, the data disk
//! has room, the live supervisor answers a ping), each check bounded in
//! time. 200 or 503, with a JSON body naming every check and what failed.
//! No token: they say nothing about channels.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::live::supervisor::Supervisor;
use crate::recordings::retention::disk_space;
use crate::state::Store;

/// How long each readiness check may take before it counts as failed.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(2);
/// The data disk counts as full below this much room (a state write needs a few pages).
pub const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// What the probes look at.
#[derive(Debug, Clone)]
pub struct Probes {
    pub live: Supervisor,
    pub store: Store,
    pub data_dir: PathBuf,
    pub rtmp_addr: SocketAddr,
}

/// One check's result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The readiness answer.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// `ready` or `not-ready`.
    pub status: &'static str,
    /// The names of the checks that failed.
    pub failed: Vec<&'static str>,
    pub checks: Vec<Check>,
}

pub fn router(probes: Probes) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(probes)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn readyz(State(probes): State<Probes>) -> Response {
    let readiness = probes.readiness().await;
    let status = if readiness.failed.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness)).into_response()
}

impl Probes {
    /// Runs every check (at once, each within `CHECK_DEADLINE`).
    pub async fn readiness(&self) -> Readiness {
        let (listeners, state_file, data_disk, supervisor) =
            tokio::join!(self.listeners(), self.state_file(), self.data_disk(), self.supervisor());
        let checks = vec![
            check("listeners", listeners),
            check("state_file", state_file),
            check("data_disk", data_disk),
            check("supervisor", supervisor),
        ];
        let failed: Vec<&'static str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
        Readiness { status: if failed.is_empty() { "ready" } else { "not-ready" }, failed, checks }
    }

    /// The RTMP listener accepts a connection (the HTTP one answered this request).
    async fn listeners(&self) -> Result<(), String> {
        let mut addr = self.rtmp_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) });
        }
        match tokio::time::timeout(CHECK_DEADLINE, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the RTMP listener on {addr} refused a connection: {e}")),
            Err(_) => Err(format!("the RTMP listener on {addr} did not accept within {CHECK_DEADLINE:?}")),
        }
    }

    /// The state file commits a (empty) write transaction.
    async fn state_file(&self) -> Result<(), String> {
        let store = self.store.clone();
        let write = tokio::task::spawn_blocking(move || store.write_quietly(|_| Ok(())));
        match tokio::time::timeout(CHECK_DEADLINE, write).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("the state file takes no write: {e}")),
            Ok(Err(_)) => Err("the state file check failed".into()),
            Err(_) => Err(format!("a write to the state file took over {CHECK_DEADLINE:?}")),
        }
    }

    /// The data directory's file system has room.
    async fn data_disk(&self) -> Result<(), String> {
        let dir = self.data_dir.clone();
        let space = tokio::task::spawn_blocking(move || disk_space(&dir));
        match tokio::time::timeout(CHECK_DEADLINE, space).await {
            Ok(Ok(Ok(space))) if space.available >= MIN_FREE_BYTES => Ok(()),
            Ok(Ok(Ok(space))) => Err(format!(
                "the data disk is full: {} bytes free of {} (needs {MIN_FREE_BYTES})",
                space.available, space.total
            )),
            Ok(Ok(Err(e))) => Err(format!("cannot read the data disk's space: {e}")),
            Ok(Err(_)) => Err("the data disk check failed".into()),
            Err(_) => Err(format!("reading the data disk's space took over {CHECK_DEADLINE:?}")),
        }
    }

    /// The live supervisor's task answers a command.
    async fn supervisor(&self) -> Result<(), String> {
        if self.live.ping(CHECK_DEADLINE).await {
            Ok(())
        } else {
            Err(format!("the live supervisor did not answer within {CHECK_DEADLINE:?}"))
        }
    }
}

fn check(name: &'static str, result: Result<(), String>) -> Check {
    Check { name, ok: result.is_ok(), error: result.err() }
}
