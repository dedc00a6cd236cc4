//! The reference edge (`packager/edge/nginx.conf`, as written) run by a test
//! as the calling user under a temporary prefix, in front of an origin that
//! counts every request it answers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::{STEP_TIMEOUT, TestAppliance, eventually};

/// The reference configuration in the repository.
pub fn reference_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packager/edge/nginx.conf")
}

/// What the origin answered: (path?query, status), in order.
type Answered = Arc<Mutex<Vec<(String, u16)>>>;

/// The appliance's origin and pages served again on a port of their own,
/// counting what it answers (path with query, status) as the origin sees it.
pub struct CountingOrigin {
    pub addr: SocketAddr,
    answered: Answered,
}

impl CountingOrigin {
    pub async fn start(app: &TestAppliance) -> CountingOrigin {
        let answered: Answered = Arc::default();
        let router = packager::router(app.appliance.origin.clone())
            .merge(appliance::http::web::router())
            .layer(axum::middleware::from_fn_with_state(answered.clone(), count));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("origin port");
        let addr = listener.local_addr().expect("origin address");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("counting origin serves") });
        CountingOrigin { addr, answered }
    }

    /// Every (path?query, status) answered so far, in order.
    pub fn answered(&self) -> Vec<(String, u16)> {
        self.answered.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many times each path?query was answered with `status`.
    pub fn counts(&self, status: u16) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (uri, s) in self.answered() {
            if s == status {
                *counts.entry(uri).or_insert(0) += 1;
            }
        }
        counts
    }
}

async fn count(State(answered): State<Answered>, request: Request, next: Next) -> Response {
    let uri = request.uri().path_and_query().map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
    let response = next.run(request).await;
    answered.lock().unwrap_or_else(|e| e.into_inner()).push((uri, response.status().as_u16()));
    response
}

/// nginx running the reference configuration in front of `origin`.
pub struct Edge {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    nginx: Child,
}

impl Edge {
    /// Starts nginx (`-p` a temp prefix, as the calling user) and waits until it accepts.
    pub async fn start(origin: SocketAddr) -> Edge {
        let dir = tempfile::tempdir().expect("edge prefix");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let reference = std::fs::read_to_string(reference_config()).expect("packager/edge/nginx.conf");
        let config = reference
            .replace("server 127.0.0.1:8080;", &format!("server {origin};"))
            .replace("listen 127.0.0.1:8081;", &format!("listen {addr};"));
        assert_ne!(config, reference, "the reference config names the addresses the test replaces");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).expect("edge config written");
        // Started by root, nginx's workers would switch to `nobody`, who cannot write the temp prefix.
        let user = if is_root() { "user root;" } else { "" };
        let pid = dir.path().join("nginx.pid");
        let nginx = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("logs/error.log"))
            .arg("-g")
            .arg(format!("daemon off; pid {}; {user}", pid.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut edge = Edge { addr, dir, nginx };
        let accepting = eventually(STEP_TIMEOUT, || async { tokio::net::TcpStream::connect(addr).await.ok() }).await;
        if accepting.is_none() || edge.nginx.try_wait().ok().flatten().is_some() {
            panic!("nginx did not start: {}", edge.error_log());
        }
        edge
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The edge's access log: one line per request a client made.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // SIGTERM to the master stops its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill").arg("-TERM").arg(self.nginx.id().to_string()).status();
        let _ = crate::eventually_blocking(Duration::from_secs(10), || self.nginx.try_wait().ok().flatten());
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
