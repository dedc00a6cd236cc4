//! Property-based fuzzing of the API from its own OpenAPI document with
//! schemathesis (installed by `scripts/deps.sh` into `target/schemathesis`):
//! every check (`--checks all`: no 5xx, status codes, content types and
//! bodies as documented, valid input accepted, invalid input refused, auth
//! enforced, deleted resources gone, unsupported methods 405) against the
//! running appliance, with a bounded number of examples per operation.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::TestAppliance;

/// Examples per operation and phase; about a minute on two cores.
const MAX_EXAMPLES: &str = "40";
/// Examples per operation for the operator and viewer tokens (the admin's run covers the inputs).
const LOWER_ROLE_EXAMPLES: &str = "8";
/// The checks that hold for a role refused some operations (positive data acceptance does not).
const LOWER_ROLE_CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// A fixed seed keeps runs comparable.
const SEED: &str = "20260401";

fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pytools/bin/schemathesis");
    if venv.exists() {
        return Some(venv);
    }
    let on_path = std::process::Command::new("schemathesis")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    on_path.then(|| PathBuf::from("schemathesis"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let Some(program) = schemathesis() else {
        support::skip(
            "schemathesis is not installed (scripts/deps.sh installs it into target/pytools; \
             or set SCHEMATHESIS=/path/to/schemathesis)",
        );
        return;
    };
    // Fuzzed webhook URLs must never be called: delivery stays off in this test.
    let app = TestAppliance::start_with(|c| c.webhooks.deliver = false).await;
    let reply = app.call("GET", "/api/v1/openapi.json", Some(&app.read_token), None).await;
    assert_eq!(reply.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("openapi.json");
    std::fs::write(&document, serde_json::to_vec_pretty(&reply.body).unwrap()).unwrap();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/api/schemathesis.toml");

    let runner = Runner { program, document, config, dir: dir.path().to_path_buf(), url: app.url("") };
    // The admin (a write token) reaches every operation: every check.
    runner.run(&app.write_token, "all", MAX_EXAMPLES).await;
    // The lower roles are refused part of the API (403, documented): no 5xx and answers as documented.
    for role in ["operator", "viewer"] {
        let token = app.token_with_role(role, &[]).await;
        runner.run(&token, LOWER_ROLE_CHECKS, LOWER_ROLE_EXAMPLES).await;
    }
    app.appliance.shutdown().await;
}

/// Schemathesis against one appliance's document.
struct Runner {
    program: PathBuf,
    document: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    url: String,
}

impl Runner {
    /// One run with `token`; panics with its report on a finding.
    async fn run(&self, token: &str, checks: &str, examples: &str) {
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .arg("--config-file")
            .arg(&self.config)
            .arg("run")
            .arg(&self.document)
            .args(["--url", &self.url])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", checks, "--max-examples", examples, "--seed", SEED, "--workers", "2"])
            .args(["--request-timeout", "10", "--no-color"])
            // The live event feed never ends by itself (tests/tests/e2e/events_feed.rs covers it).
            .args(["--exclude-path", "/api/v1/events/stream"])
            .current_dir(&self.dir)
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(300), command.output())
            .await
            .expect("schemathesis finishes within 5 minutes")
            .expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let summary: String =
            stdout.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        eprintln!("schemathesis ({checks}) took {:?}:\n{summary}", started.elapsed());
        assert!(output.status.success(), "schemathesis found problems:\n{stdout}\n{stderr}");
    }
}
