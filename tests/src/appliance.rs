//! An appliance running in the test's own process on loopback ports chosen
//! by the OS, with its own data directory (a real redb file), a write and a
//! read API token, and a real HTTP client.

use appliance::state::{Channel, NewChannel, RecordingSettings, Scope};
use appliance::{Appliance, Config};
use media::{ChannelOutput, EncoderPolicy, Ladder, LatencyMode, RenditionSpec};

use crate::STEP_TIMEOUT;

/// An appliance running in this process.
pub struct TestAppliance {
    pub appliance: Appliance,
    pub http: reqwest::Client,
    /// A token with the write scope, and one with the read scope.
    pub write_token: String,
    pub read_token: String,
    /// The data directory; removed when the test ends.
    pub data: tempfile::TempDir,
}

/// The configuration every test appliance starts from: loopback ports the OS
/// picks, quick webhook retries, and API rate limits out of the way (the
/// suite's own traffic, hundreds of calls at once and invalid tokens on
/// purpose, is not what its tests are about; the rate-limit tests set low
/// ones of their own).
pub fn test_config(data: &std::path::Path) -> Config {
    let mut config = Config { data_dir: data.to_path_buf(), ..Config::default() };
    config.rtmp.listen = "127.0.0.1:0".into();
    config.http.listen = "127.0.0.1:0".into();
    config.tls.https_listen = "127.0.0.1:0".into();
    config.tls.rtmps_listen = "127.0.0.1:0".into();
    config.srt.listen = "127.0.0.1:0".into();
    config.webhooks.retry_base_ms = 200;
    config.webhooks.retry_max_ms = 1000;
    config.webhooks.timeout_ms = 2000;
    config.api.read_per_second = 1_000_000;
    config.api.read_burst = 1_000_000;
    config.api.mutation_per_second = 1_000_000;
    config.api.mutation_burst = 1_000_000;
    config.api.auth_failures_per_minute = 1_000_000;
    config.api.auth_failure_burst = 1_000_000;
    config.api.sign_in_failures_per_minute_total = 1_000_000;
    config.api.sign_in_failure_burst_total = 1_000_000;
    // A publisher's end ends its session at once (no slate) unless a test sets a grace time.
    config.failover.slate_seconds = 0;
    config
}

/// A ladder output of H.264 `rungs` (height, kbit/s), with the source when `include_source`.
pub fn h264_ladder(rungs: &[(u32, u32)], include_source: bool) -> ChannelOutput {
    let rungs = rungs.iter().map(|&(height, bitrate_kbps)| RenditionSpec::h264(height, bitrate_kbps)).collect();
    ChannelOutput::Ladder { ladder: Ladder { rungs, include_source } }
}

/// A channel in low latency mode (2 s segments) on the CPU's encoders, recording its sessions.
pub fn recorded_channel(name: &str, output: ChannelOutput) -> NewChannel {
    NewChannel {
        name: name.to_string(),
        latency_mode: LatencyMode::Low,
        output,
        encoder_policy: EncoderPolicy::Software,
        recording: RecordingSettings { enabled: true, ..RecordingSettings::default() },
        ..NewChannel::default()
    }
}

impl TestAppliance {
    pub async fn start() -> TestAppliance {
        Self::start_with(|_| {}).await
    }

    /// Starts with [`test_config`] changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestAppliance {
        Self::start_in(tempfile::tempdir().expect("temp dir"), adjust).await
    }

    /// Starts on an existing data directory (restart and crash tests).
    pub async fn start_in(data: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestAppliance {
        let mut config = test_config(data.path());
        adjust(&mut config);
        config.validate().expect("test config is valid");
        let appliance = Appliance::start(&config).await.expect("appliance starts");
        let (_, write_token) = appliance.store.create_token("tests-write", Scope::Write).expect("token");
        let (_, read_token) = appliance.store.create_token("tests-read", Scope::Read).expect("token");
        let http = reqwest::Client::builder().timeout(STEP_TIMEOUT).build().expect("http client");
        TestAppliance { appliance, http, write_token, read_token, data }
    }

    /// An appliance whose console admin password is `password` (the console tests sign in with it).
    pub async fn start_with_admin_password(password: &str) -> TestAppliance {
        Self::start_with(|config| {
            appliance::http::console::password::set(&config.data_dir, password).expect("admin password set");
        })
        .await
    }

    pub fn add_channel(&self, name: &str, mode: LatencyMode) -> Channel {
        self.appliance.store.add(name, mode).expect("channel added")
    }

    /// A ladder channel of H.264 `rungs` (height, kbit/s), with the source when `include_source`.
    pub fn add_ladder_channel(
        &self,
        name: &str,
        mode: LatencyMode,
        rungs: &[(u32, u32)],
        include_source: bool,
        policy: EncoderPolicy,
    ) -> Channel {
        let new = NewChannel {
            name: name.to_string(),
            latency_mode: mode,
            output: h264_ladder(rungs, include_source),
            encoder_policy: policy,
            ..NewChannel::default()
        };
        self.appliance.store.create_channel(new, true).expect("ladder channel created")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.appliance.http_addr)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.appliance.rtmp_addr)
    }
}
