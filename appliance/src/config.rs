//! Configuration: built-in defaults, then a TOML file, then `APPLIANCE_*`
//! environment variables, then validation with precise error text. Unknown keys
//! are rejected; a bad config stops the process before anything is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the appliance reads at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the state database (created if missing).
    pub data_dir: PathBuf,
    /// Host name or address printed in publish and playback URLs.
    pub public_host: String,
    pub rtmp: RtmpConfig,
    pub srt: SrtConfig,
    pub whip: WhipConfig,
    pub http: HttpConfig,
    pub hls: HlsConfig,
    pub webhooks: WebhooksConfig,
    pub api: ApiConfig,
    pub sessions: SessionsConfig,
    pub audit: AuditConfig,
    pub playback: PlaybackConfig,
    pub recording: RecordingConfig,
    pub failover: FailoverConfig,
    pub tls: TlsConfig,
    pub metrics: MetricsConfig,
    pub alerts: AlertsConfig,
    pub thumbnails: ThumbnailsConfig,
}

/// HTTPS: the origin, the API and the console over TLS with HTTP/2 (ALPN),
/// besides plain HTTP (which CDNs may pull from). On when a certificate and
/// key are configured, or with `self_signed` (the image's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub https_listen: String,
    /// RTMPS ingest (RTMP over TLS, the same certificate); empty: off.
    pub rtmps_listen: String,
    /// PEM certificate chain (leaf first); with `key`.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Without `cert` and `key`: a self-signed certificate for `public_host`,
    /// made at the first start and kept in `<data_dir>/tls`.
    pub self_signed: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            https_listen: "0.0.0.0:8443".into(),
            rtmps_listen: "0.0.0.0:1936".into(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            self_signed: false,
        }
    }
}

/// The alert engine's rules (`alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How long a live session's input must deliver nothing before `input-lost` is raised.
    pub input_lost_raise_ms: u64,
    /// How long media must flow again before a raised `input-lost` clears.
    pub input_lost_clear_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { input_lost_raise_ms: 5000, input_lost_clear_ms: 5000 }
    }
}

/// The Prometheus scrape (`GET /metrics`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether a scrape must carry an API token (read scope is enough) as a bearer.
    pub require_token: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpConfig {
    pub listen: String,
    /// Simultaneous RTMP connections accepted.
    pub max_connections: usize,
    /// Of those, connections that have not yet published with a valid key.
    pub max_unauthenticated: usize,
    /// Unauthenticated connections from one client address (IPv6: one /64).
    pub max_unauthenticated_per_address: usize,
    /// From accept to the client's `connect`.
    pub connect_timeout_ms: u64,
    /// From accept to `publish`.
    pub publish_timeout_ms: u64,
}

/// The SRT listener: one UDP port for every channel (callers pick the channel by streamid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SrtConfig {
    /// Whether the SRT listener runs.
    pub enabled: bool,
    pub listen: String,
    /// The receive latency offered to callers (SRT uses the larger of both sides').
    pub latency_ms: u64,
}

impl Default for SrtConfig {
    fn default() -> Self {
        Self { enabled: true, listen: "0.0.0.0:9000".into(), latency_ms: 120 }
    }
}

/// WHIP ingest (WebRTC from a browser or OBS): `POST /whip/{channel}` on the
/// HTTP(S) listeners, media on a UDP port per publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhipConfig {
    /// Whether the WHIP endpoint answers.
    pub enabled: bool,
    /// The address the publishers' UDP sockets bind.
    pub udp_bind: String,
    /// Addresses offered as ICE candidates besides the one each request
    /// reached (the box's public address behind a NAT).
    pub candidate_ips: Vec<String>,
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self { enabled: true, udp_bind: "0.0.0.0".into(), candidate_ips: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// From the first byte of a request's head to its last; slower clients are disconnected.
    pub header_timeout_ms: u64,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout_ms: u64,
    /// From a request's head to the end of its body; slower bodies fail (400).
    pub body_timeout_ms: u64,
    /// Connections open at once; when full, the longest idle one is closed for a newcomer.
    pub max_connections: usize,
    /// Connections of one client address (IPv6: one /64; trusted proxies are exempt).
    pub max_connections_per_address: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsConfig {
    /// Wanted LL-HLS part duration in ultra-low mode (rounded to whole frames).
    pub part_target_ms: u64,
    /// Seconds of media listed in each media playlist.
    pub window_seconds: u64,
    /// How long an ended stream stays downloadable.
    pub retention_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// POST events to registered endpoints; false keeps them queued in the outbox.
    pub deliver: bool,
    /// Per attempt, connecting included.
    pub timeout_ms: u64,
    /// The first retry's delay; each later one doubles, up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// Delivered events are forgotten after this many hours.
    pub retention_hours: u64,
}

/// The REST API's rate limits: token buckets per credential (API token or
/// console session), or per client address for requests without one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Reads (GET, HEAD) per second, sustained.
    pub read_per_second: u32,
    /// Reads at once, after a pause (the bucket's size).
    pub read_burst: u32,
    /// Mutations (every other method) per second, sustained.
    pub mutation_per_second: u32,
    pub mutation_burst: u32,
    /// Failed authentications (an invalid bearer token, a wrong console
    /// password) per client address per minute, sustained; beyond the burst
    /// every attempt from that address waits.
    pub auth_failures_per_minute: u32,
    pub auth_failure_burst: u32,
    /// Failed console sign-ins from all addresses together per minute,
    /// sustained, and at once; an attempt counts from when it starts.
    pub sign_in_failures_per_minute_total: u32,
    pub sign_in_failure_burst_total: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            read_per_second: 50,
            read_burst: 100,
            mutation_per_second: 10,
            mutation_burst: 20,
            auth_failures_per_minute: 5,
            auth_failure_burst: 5,
            sign_in_failures_per_minute_total: 30,
            sign_in_failure_burst_total: 30,
        }
    }
}

/// Sessions in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// How often the figures of sessions in progress (bytes, units, drops)
    /// are written into their records, so a crash keeps them.
    pub checkpoint_seconds: u64,
}

/// The audit log's retention (`state::audit_trail`): the oldest entries go
/// when there are more than `max_entries` or they are older than `max_age_days`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub max_entries: u64,
    pub max_age_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { max_entries: 10_000, max_age_days: 90 }
    }
}

/// Private channels' signed playback (`playback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybackConfig {
    /// How long a rotated signing key keeps verifying the tokens it signed,
    /// unless the rotation asks for another window.
    pub key_overlap_seconds: u64,
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        Self { key_overlap_seconds: 86_400 }
    }
}

/// A session's backup input and slate (`live::input`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverConfig {
    /// The input on air delivering no frame for this long goes off air.
    pub switch_after_ms: u64,
    /// The primary goes back on air after delivering steadily this long.
    pub return_after_ms: u64,
    /// How long the slate keeps the output going with no input delivering before the session ends.
    pub slate_seconds: u64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self { switch_after_ms: 1000, return_after_ms: 10_000, slate_seconds: 30 }
    }
}

/// Thumbnails of live channels (`live::thumbnails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThumbnailsConfig {
    /// A new thumbnail from the first keyframe this many seconds (media time) after the last one.
    pub interval_seconds: u64,
    /// Their width in pixels (at most the rendition's), the height to scale.
    pub width: u32,
}

impl Default for ThumbnailsConfig {
    fn default() -> Self {
        Self { interval_seconds: 5, width: 320 }
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self { checkpoint_seconds: 10 }
    }
}

/// Recordings on the data partition: the global quota and how often it is enforced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Percent of the data partition kept free: the oldest unlocked recordings are deleted to keep it.
    pub keep_free_percent: u32,
    /// Most bytes all recordings may take together; 0: no cap besides the free share.
    pub max_bytes: u64,
    /// How often retention (channel days and the quota) is enforced.
    pub sweep_seconds: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self { keep_free_percent: 10, max_bytes: 0, sweep_seconds: 60 }
    }
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            deliver: true,
            timeout_ms: 5000,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            max_attempts: 20,
            retention_hours: 168,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            public_host: "127.0.0.1".into(),
            rtmp: RtmpConfig::default(),
            srt: SrtConfig::default(),
            whip: WhipConfig::default(),
            http: HttpConfig::default(),
            hls: HlsConfig::default(),
            webhooks: WebhooksConfig::default(),
            api: ApiConfig::default(),
            sessions: SessionsConfig::default(),
            audit: AuditConfig::default(),
            playback: PlaybackConfig::default(),
            recording: RecordingConfig::default(),
            failover: FailoverConfig::default(),
            tls: TlsConfig::default(),
            metrics: MetricsConfig::default(),
            alerts: AlertsConfig::default(),
            thumbnails: ThumbnailsConfig::default(),
        }
    }
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:1935".into(),
            max_connections: 256,
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 16,
            connect_timeout_ms: 5000,
            publish_timeout_ms: 10_000,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            trusted_proxies: Vec::new(),
            header_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            body_timeout_ms: 30_000,
            max_connections: 2048,
            max_connections_per_address: 256,
        }
    }
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self { part_target_ms: 200, window_seconds: 24, retention_seconds: 60 }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The longest overlap window of a playback key rotation (30 days).
pub const MAX_KEY_OVERLAP_SECONDS: u64 = 30 * 86_400;

/// Environment variables that override the file, and the field each sets.
pub const ENV_VARS: [&str; 55] = [
    "APPLIANCE_DATA_DIR",
    "APPLIANCE_PUBLIC_HOST",
    "APPLIANCE_RTMP_LISTEN",
    "APPLIANCE_RTMP_MAX_CONNECTIONS",
    "APPLIANCE_RTMP_MAX_UNAUTHENTICATED",
    "APPLIANCE_RTMP_MAX_UNAUTHENTICATED_PER_ADDRESS",
    "APPLIANCE_RTMP_CONNECT_TIMEOUT_MS",
    "APPLIANCE_RTMP_PUBLISH_TIMEOUT_MS",
    "APPLIANCE_SRT_ENABLED",
    "APPLIANCE_SRT_LISTEN",
    "APPLIANCE_SRT_LATENCY_MS",
    "APPLIANCE_WHIP_ENABLED",
    "APPLIANCE_WHIP_UDP_BIND",
    "APPLIANCE_WHIP_CANDIDATE_IPS",
    "APPLIANCE_HTTP_LISTEN",
    "APPLIANCE_HTTP_TRUSTED_PROXIES",
    "APPLIANCE_HTTP_HEADER_TIMEOUT_MS",
    "APPLIANCE_HTTP_IDLE_TIMEOUT_MS",
    "APPLIANCE_HTTP_BODY_TIMEOUT_MS",
    "APPLIANCE_HTTP_MAX_CONNECTIONS",
    "APPLIANCE_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
    "APPLIANCE_HLS_PART_TARGET_MS",
    "APPLIANCE_HLS_WINDOW_SECONDS",
    "APPLIANCE_HLS_RETENTION_SECONDS",
    "APPLIANCE_WEBHOOKS_DELIVER",
    "APPLIANCE_WEBHOOKS_TIMEOUT_MS",
    "APPLIANCE_WEBHOOKS_RETRY_BASE_MS",
    "APPLIANCE_WEBHOOKS_RETRY_MAX_MS",
    "APPLIANCE_WEBHOOKS_MAX_ATTEMPTS",
    "APPLIANCE_WEBHOOKS_RETENTION_HOURS",
    "APPLIANCE_API_READ_PER_SECOND",
    "APPLIANCE_API_READ_BURST",
    "APPLIANCE_API_MUTATION_PER_SECOND",
    "APPLIANCE_API_MUTATION_BURST",
    "APPLIANCE_API_AUTH_FAILURES_PER_MINUTE",
    "APPLIANCE_API_AUTH_FAILURE_BURST",
    "APPLIANCE_API_SIGN_IN_FAILURES_PER_MINUTE_TOTAL",
    "APPLIANCE_API_SIGN_IN_FAILURE_BURST_TOTAL",
    "APPLIANCE_SESSIONS_CHECKPOINT_SECONDS",
    "APPLIANCE_AUDIT_MAX_ENTRIES",
    "APPLIANCE_AUDIT_MAX_AGE_DAYS",
    "APPLIANCE_PLAYBACK_KEY_OVERLAP_SECONDS",
    "APPLIANCE_FAILOVER_SWITCH_AFTER_MS",
    "APPLIANCE_FAILOVER_RETURN_AFTER_MS",
    "APPLIANCE_FAILOVER_SLATE_SECONDS",
    "APPLIANCE_TLS_HTTPS_LISTEN",
    "APPLIANCE_TLS_RTMPS_LISTEN",
    "APPLIANCE_TLS_CERT",
    "APPLIANCE_TLS_KEY",
    "APPLIANCE_TLS_SELF_SIGNED",
    "APPLIANCE_METRICS_REQUIRE_TOKEN",
    "APPLIANCE_ALERTS_INPUT_LOST_RAISE_MS",
    "APPLIANCE_ALERTS_INPUT_LOST_CLEAR_MS",
    "APPLIANCE_THUMBNAILS_INTERVAL_SECONDS",
    "APPLIANCE_THUMBNAILS_WIDTH",
];

impl Config {
    /// Defaults, then `file` if given, then the environment, then validation.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Self::from_toml(&text).map_err(|reason| ConfigError::Parse { path: path.display().to_string(), reason })
    }

    /// Parses TOML text; the error is one line naming the key and position.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text)
            .map_err(|e| e.to_string().lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(" "))
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
            value
                .trim()
                .parse()
                .map_err(|_| ConfigError::Env { name, reason: format!("{value:?} is not a whole number") })
        }
        fn boolean(name: &'static str, value: &str) -> Result<bool, ConfigError> {
            match value.trim() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::Env { name, reason: format!("{value:?} is not true or false") }),
            }
        }
        for name in ENV_VARS {
            let Some(value) = env(name) else { continue };
            match name {
                "APPLIANCE_DATA_DIR" => self.data_dir = PathBuf::from(value),
                "APPLIANCE_PUBLIC_HOST" => self.public_host = value,
                "APPLIANCE_RTMP_LISTEN" => self.rtmp.listen = value,
                "APPLIANCE_RTMP_MAX_CONNECTIONS" => self.rtmp.max_connections = number(name, &value)?,
                "APPLIANCE_RTMP_MAX_UNAUTHENTICATED" => self.rtmp.max_unauthenticated = number(name, &value)?,
                "APPLIANCE_RTMP_MAX_UNAUTHENTICATED_PER_ADDRESS" => {
                    self.rtmp.max_unauthenticated_per_address = number(name, &value)?
                }
                "APPLIANCE_RTMP_CONNECT_TIMEOUT_MS" => self.rtmp.connect_timeout_ms = number(name, &value)?,
                "APPLIANCE_RTMP_PUBLISH_TIMEOUT_MS" => self.rtmp.publish_timeout_ms = number(name, &value)?,
                "APPLIANCE_SRT_ENABLED" => self.srt.enabled = boolean(name, &value)?,
                "APPLIANCE_SRT_LISTEN" => self.srt.listen = value,
                "APPLIANCE_SRT_LATENCY_MS" => self.srt.latency_ms = number(name, &value)?,
                "APPLIANCE_WHIP_ENABLED" => self.whip.enabled = boolean(name, &value)?,
                "APPLIANCE_WHIP_UDP_BIND" => self.whip.udp_bind = value,
                "APPLIANCE_WHIP_CANDIDATE_IPS" => {
                    self.whip.candidate_ips =
                        value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
                }
                "APPLIANCE_HTTP_LISTEN" => self.http.listen = value,
                "APPLIANCE_HTTP_TRUSTED_PROXIES" => {
                    self.http.trusted_proxies =
                        value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
                }
                "APPLIANCE_HTTP_HEADER_TIMEOUT_MS" => self.http.header_timeout_ms = number(name, &value)?,
                "APPLIANCE_HTTP_IDLE_TIMEOUT_MS" => self.http.idle_timeout_ms = number(name, &value)?,
                "APPLIANCE_HTTP_BODY_TIMEOUT_MS" => self.http.body_timeout_ms = number(name, &value)?,
                "APPLIANCE_HTTP_MAX_CONNECTIONS" => self.http.max_connections = number(name, &value)?,
                "APPLIANCE_HTTP_MAX_CONNECTIONS_PER_ADDRESS" => {
                    self.http.max_connections_per_address = number(name, &value)?
                }
                "APPLIANCE_HLS_PART_TARGET_MS" => self.hls.part_target_ms = number(name, &value)?,
                "APPLIANCE_HLS_WINDOW_SECONDS" => self.hls.window_seconds = number(name, &value)?,
                "APPLIANCE_HLS_RETENTION_SECONDS" => self.hls.retention_seconds = number(name, &value)?,
                "APPLIANCE_WEBHOOKS_DELIVER" => self.webhooks.deliver = boolean(name, &value)?,
                "APPLIANCE_METRICS_REQUIRE_TOKEN" => self.metrics.require_token = boolean(name, &value)?,
                "APPLIANCE_ALERTS_INPUT_LOST_RAISE_MS" => self.alerts.input_lost_raise_ms = number(name, &value)?,
                "APPLIANCE_ALERTS_INPUT_LOST_CLEAR_MS" => self.alerts.input_lost_clear_ms = number(name, &value)?,
                "APPLIANCE_WEBHOOKS_TIMEOUT_MS" => self.webhooks.timeout_ms = number(name, &value)?,
                "APPLIANCE_WEBHOOKS_RETRY_BASE_MS" => self.webhooks.retry_base_ms = number(name, &value)?,
                "APPLIANCE_WEBHOOKS_RETRY_MAX_MS" => self.webhooks.retry_max_ms = number(name, &value)?,
                "APPLIANCE_WEBHOOKS_MAX_ATTEMPTS" => self.webhooks.max_attempts = number(name, &value)?,
                "APPLIANCE_WEBHOOKS_RETENTION_HOURS" => self.webhooks.retention_hours = number(name, &value)?,
                "APPLIANCE_API_READ_PER_SECOND" => self.api.read_per_second = number(name, &value)?,
                "APPLIANCE_API_READ_BURST" => self.api.read_burst = number(name, &value)?,
                "APPLIANCE_API_MUTATION_PER_SECOND" => self.api.mutation_per_second = number(name, &value)?,
                "APPLIANCE_API_MUTATION_BURST" => self.api.mutation_burst = number(name, &value)?,
                "APPLIANCE_API_AUTH_FAILURES_PER_MINUTE" => self.api.auth_failures_per_minute = number(name, &value)?,
                "APPLIANCE_API_AUTH_FAILURE_BURST" => self.api.auth_failure_burst = number(name, &value)?,
                "APPLIANCE_API_SIGN_IN_FAILURES_PER_MINUTE_TOTAL" => {
                    self.api.sign_in_failures_per_minute_total = number(name, &value)?
                }
                "APPLIANCE_API_SIGN_IN_FAILURE_BURST_TOTAL" => {
                    self.api.sign_in_failure_burst_total = number(name, &value)?
                }
                "APPLIANCE_SESSIONS_CHECKPOINT_SECONDS" => self.sessions.checkpoint_seconds = number(name, &value)?,
                "APPLIANCE_AUDIT_MAX_ENTRIES" => self.audit.max_entries = number(name, &value)?,
                "APPLIANCE_AUDIT_MAX_AGE_DAYS" => self.audit.max_age_days = number(name, &value)?,
                "APPLIANCE_PLAYBACK_KEY_OVERLAP_SECONDS" => self.playback.key_overlap_seconds = number(name, &value)?,
                "APPLIANCE_FAILOVER_SWITCH_AFTER_MS" => self.failover.switch_after_ms = number(name, &value)?,
                "APPLIANCE_FAILOVER_RETURN_AFTER_MS" => self.failover.return_after_ms = number(name, &value)?,
                "APPLIANCE_FAILOVER_SLATE_SECONDS" => self.failover.slate_seconds = number(name, &value)?,
                "APPLIANCE_TLS_HTTPS_LISTEN" => self.tls.https_listen = value,
                "APPLIANCE_TLS_RTMPS_LISTEN" => self.tls.rtmps_listen = value,
                "APPLIANCE_TLS_CERT" => self.tls.cert = PathBuf::from(value),
                "APPLIANCE_TLS_KEY" => self.tls.key = PathBuf::from(value),
                "APPLIANCE_TLS_SELF_SIGNED" => self.tls.self_signed = boolean(name, &value)?,
                "APPLIANCE_THUMBNAILS_INTERVAL_SECONDS" => self.thumbnails.interval_seconds = number(name, &value)?,
                "APPLIANCE_THUMBNAILS_WIDTH" => self.thumbnails.width = number(name, &value)?,
                _ => unreachable!("every name in ENV_VARS is matched"),
            }
        }
        Ok(())
    }

    /// Checks every field; the first problem is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty".into());
        }
        if self.public_host.trim().is_empty() || self.public_host.contains(['/', ' ']) {
            return invalid("public_host", format!("{:?} is not a host name or address", self.public_host));
        }
        if let Err(e) = self.srt.listen.parse::<SocketAddr>() {
            return invalid("srt.listen", format!("{:?} is not an address:port ({e})", self.srt.listen));
        }
        if !(20..=8000).contains(&self.srt.latency_ms) {
            return invalid("srt.latency_ms", format!("{} is outside 20..=8000", self.srt.latency_ms));
        }
        if let Err(e) = self.whip.udp_bind.parse::<std::net::IpAddr>() {
            return invalid("whip.udp_bind", format!("{:?} is not an IP address ({e})", self.whip.udp_bind));
        }
        if let Some(bad) = self.whip.candidate_ips.iter().find(|ip| ip.parse::<std::net::IpAddr>().is_err()) {
            return invalid("whip.candidate_ips", format!("{bad:?} is not an IP address"));
        }
        if let Err(e) = self.rtmp.listen.parse::<SocketAddr>() {
            return invalid("rtmp.listen", format!("{:?} is not an address:port ({e})", self.rtmp.listen));
        }
        let r = &self.rtmp;
        if !(1..=100_000).contains(&r.max_connections) {
            return invalid("rtmp.max_connections", format!("{} is outside 1..=100000", r.max_connections));
        }
        if !(1..=r.max_connections).contains(&r.max_unauthenticated) {
            let (value, max) = (r.max_unauthenticated, r.max_connections);
            return invalid("rtmp.max_unauthenticated", format!("{value} is outside 1..=max_connections (1..={max})"));
        }
        if !(1..=r.max_unauthenticated).contains(&r.max_unauthenticated_per_address) {
            let (value, max) = (r.max_unauthenticated_per_address, r.max_unauthenticated);
            let reason = format!("{value} is outside 1..=max_unauthenticated (1..={max})");
            return invalid("rtmp.max_unauthenticated_per_address", reason);
        }
        if !(100..=60_000).contains(&r.connect_timeout_ms) {
            return invalid("rtmp.connect_timeout_ms", format!("{} is outside 100..=60000", r.connect_timeout_ms));
        }
        if !(r.connect_timeout_ms..=300_000).contains(&r.publish_timeout_ms) {
            let (value, min) = (r.publish_timeout_ms, r.connect_timeout_ms);
            let reason = format!("{value} is outside connect_timeout_ms..=300000 ({min}..=300000)");
            return invalid("rtmp.publish_timeout_ms", reason);
        }
        if let Err(e) = self.http.listen.parse::<SocketAddr>() {
            return invalid("http.listen", format!("{:?} is not an address:port ({e})", self.http.listen));
        }
        if let Err(e) = self.tls.https_listen.parse::<SocketAddr>() {
            return invalid("tls.https_listen", format!("{:?} is not an address:port ({e})", self.tls.https_listen));
        }
        if !self.tls.rtmps_listen.is_empty()
            && let Err(e) = self.tls.rtmps_listen.parse::<SocketAddr>()
        {
            return invalid("tls.rtmps_listen", format!("{:?} is not an address:port ({e})", self.tls.rtmps_listen));
        }
        if self.tls.cert.as_os_str().is_empty() != self.tls.key.as_os_str().is_empty() {
            return invalid("tls.cert", "a certificate needs its key (tls.key), and a key its certificate".into());
        }
        if let Err(reason) = crate::http::client_address::TrustedProxies::parse(&self.http.trusted_proxies) {
            return invalid("http.trusted_proxies", reason);
        }
        let h = &self.http;
        if !(500..=120_000).contains(&h.header_timeout_ms) {
            return invalid("http.header_timeout_ms", format!("{} is outside 500..=120000", h.header_timeout_ms));
        }
        if !(1000..=3_600_000).contains(&h.idle_timeout_ms) {
            return invalid("http.idle_timeout_ms", format!("{} is outside 1000..=3600000", h.idle_timeout_ms));
        }
        if !(1000..=600_000).contains(&h.body_timeout_ms) {
            return invalid("http.body_timeout_ms", format!("{} is outside 1000..=600000", h.body_timeout_ms));
        }
        if !(16..=1_000_000).contains(&h.max_connections) {
            return invalid("http.max_connections", format!("{} is outside 16..=1000000", h.max_connections));
        }
        if !(1..=h.max_connections).contains(&h.max_connections_per_address) {
            let (value, max) = (h.max_connections_per_address, h.max_connections);
            let reason = format!("{value} is outside 1..=max_connections (1..={max})");
            return invalid("http.max_connections_per_address", reason);
        }
        if !(100..=2000).contains(&self.hls.part_target_ms) {
            return invalid("hls.part_target_ms", format!("{} is outside 100..=2000", self.hls.part_target_ms));
        }
        if !(12..=3600).contains(&self.hls.window_seconds) {
            return invalid("hls.window_seconds", format!("{} is outside 12..=3600", self.hls.window_seconds));
        }
        if !(1..=3600).contains(&self.hls.retention_seconds) {
            return invalid("hls.retention_seconds", format!("{} is outside 1..=3600", self.hls.retention_seconds));
        }
        let w = &self.webhooks;
        if !(100..=60_000).contains(&w.timeout_ms) {
            return invalid("webhooks.timeout_ms", format!("{} is outside 100..=60000", w.timeout_ms));
        }
        if !(10..=3_600_000).contains(&w.retry_base_ms) {
            return invalid("webhooks.retry_base_ms", format!("{} is outside 10..=3600000", w.retry_base_ms));
        }
        if !(w.retry_base_ms..=86_400_000).contains(&w.retry_max_ms) {
            return invalid(
                "webhooks.retry_max_ms",
                format!("{} is outside retry_base_ms..=86400000 ({}..=86400000)", w.retry_max_ms, w.retry_base_ms),
            );
        }
        if !(1..=100).contains(&w.max_attempts) {
            return invalid("webhooks.max_attempts", format!("{} is outside 1..=100", w.max_attempts));
        }
        if !(1..=8760).contains(&w.retention_hours) {
            return invalid("webhooks.retention_hours", format!("{} is outside 1..=8760", w.retention_hours));
        }
        let a = &self.api;
        let limits = [
            ("api.read_per_second", a.read_per_second),
            ("api.read_burst", a.read_burst),
            ("api.mutation_per_second", a.mutation_per_second),
            ("api.mutation_burst", a.mutation_burst),
            ("api.auth_failures_per_minute", a.auth_failures_per_minute),
            ("api.auth_failure_burst", a.auth_failure_burst),
            ("api.sign_in_failures_per_minute_total", a.sign_in_failures_per_minute_total),
            ("api.sign_in_failure_burst_total", a.sign_in_failure_burst_total),
        ];
        for (field, value) in limits {
            if !(1..=1_000_000).contains(&value) {
                return invalid(field, format!("{value} is outside 1..=1000000"));
            }
        }
        for (field, ms) in [
            ("alerts.input_lost_raise_ms", self.alerts.input_lost_raise_ms),
            ("alerts.input_lost_clear_ms", self.alerts.input_lost_clear_ms),
        ] {
            if !(100..=3_600_000).contains(&ms) {
                return invalid(field, format!("{ms} is outside 100..=3600000"));
            }
        }
        if !(1..=3600).contains(&self.sessions.checkpoint_seconds) {
            let seconds = self.sessions.checkpoint_seconds;
            return invalid("sessions.checkpoint_seconds", format!("{seconds} is outside 1..=3600"));
        }
        if !(1..=1_000_000).contains(&self.audit.max_entries) {
            let entries = self.audit.max_entries;
            return invalid("audit.max_entries", format!("{entries} is outside 1..=1000000"));
        }
        if !(1..=3650).contains(&self.audit.max_age_days) {
            let days = self.audit.max_age_days;
            return invalid("audit.max_age_days", format!("{days} is outside 1..=3650"));
        }
        if self.playback.key_overlap_seconds > MAX_KEY_OVERLAP_SECONDS {
            let seconds = self.playback.key_overlap_seconds;
            return invalid(
                "playback.key_overlap_seconds",
                format!("{seconds} is outside 0..={MAX_KEY_OVERLAP_SECONDS}"),
            );
        }
        if self.recording.keep_free_percent > 90 {
            let percent = self.recording.keep_free_percent;
            return invalid("recording.keep_free_percent", format!("{percent} is outside 0..=90"));
        }
        if !(1..=3600).contains(&self.recording.sweep_seconds) {
            let seconds = self.recording.sweep_seconds;
            return invalid("recording.sweep_seconds", format!("{seconds} is outside 1..=3600"));
        }
        let failover = &self.failover;
        if !(100..=60_000).contains(&failover.switch_after_ms) {
            let ms = failover.switch_after_ms;
            return invalid("failover.switch_after_ms", format!("{ms} is outside 100..=60000"));
        }
        if !(100..=3_600_000).contains(&failover.return_after_ms) {
            let ms = failover.return_after_ms;
            return invalid("failover.return_after_ms", format!("{ms} is outside 100..=3600000"));
        }
        if failover.slate_seconds > 86_400 {
            let seconds = failover.slate_seconds;
            return invalid("failover.slate_seconds", format!("{seconds} is outside 0..=86400"));
        }
        if !(1..=3600).contains(&self.thumbnails.interval_seconds) {
            let seconds = self.thumbnails.interval_seconds;
            return invalid("thumbnails.interval_seconds", format!("{seconds} is outside 1..=3600"));
        }
        if !(16..=3840).contains(&self.thumbnails.width) {
            let width = self.thumbnails.width;
            return invalid("thumbnails.width", format!("{width} is outside 16..=3840"));
        }
        Ok(())
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp.listen.parse().expect("validated")
    }

    /// The RTMP server's limits.
    pub fn ingest(&self) -> ingest::IngestConfig {
        let r = &self.rtmp;
        ingest::IngestConfig {
            max_connections: r.max_connections,
            max_unauthenticated: r.max_unauthenticated,
            max_unauthenticated_per_address: r.max_unauthenticated_per_address,
            connect_deadline: Duration::from_millis(r.connect_timeout_ms),
            publish_deadline: Duration::from_millis(r.publish_timeout_ms),
            ..ingest::IngestConfig::default()
        }
    }

    /// The SRT listener's address and settings, when it is enabled.
    pub fn srt(&self) -> Option<(SocketAddr, ingest::SrtConfig)> {
        let srt = &self.srt;
        srt.enabled.then(|| {
            let settings = ingest::SrtConfig {
                latency: Duration::from_millis(srt.latency_ms),
                max_connections: self.rtmp.max_connections,
                publish_deadline: Duration::from_millis(self.rtmp.publish_timeout_ms),
                ..ingest::SrtConfig::default()
            };
            (srt.listen.parse().expect("validated"), settings)
        })
    }

    /// The WHIP ingest's settings, when it is enabled.
    pub fn whip(&self) -> Option<ingest::WhipConfig> {
        let whip = &self.whip;
        whip.enabled.then(|| ingest::WhipConfig {
            udp_bind: whip.udp_bind.parse().expect("validated"),
            candidate_ips: whip.candidate_ips.iter().map(|ip| ip.parse().expect("validated")).collect(),
            max_publishers: self.rtmp.max_connections,
            publish_deadline: Duration::from_millis(self.rtmp.publish_timeout_ms),
            ..ingest::WhipConfig::default()
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.listen.parse().expect("validated")
    }

    /// Where HTTPS gets its certificate; `None` when HTTPS is off.
    pub fn tls_source(&self) -> Option<crate::tls::CertificateSource> {
        let t = &self.tls;
        if !t.cert.as_os_str().is_empty() {
            return Some(crate::tls::CertificateSource::Files { cert: t.cert.clone(), key: t.key.clone() });
        }
        let mut names = vec![self.public_host.clone()];
        for local in ["localhost", "127.0.0.1"] {
            if !names.iter().any(|n| n == local) {
                names.push(local.into());
            }
        }
        t.self_signed.then_some(crate::tls::CertificateSource::SelfSigned { names })
    }

    /// The RTMPS listener's address; `None` when it is off.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.tls.rtmps_listen.parse().ok()
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.tls.https_listen.parse().expect("validated")
    }

    /// The HTTP server's timeouts and caps (validated: the proxies parse).
    pub fn http_limits(&self) -> crate::http::server::Limits {
        let h = &self.http;
        crate::http::server::Limits {
            timeouts: crate::http::server::activity::Timeouts {
                header: Duration::from_millis(h.header_timeout_ms),
                idle: Duration::from_millis(h.idle_timeout_ms),
                body: Duration::from_millis(h.body_timeout_ms),
            },
            caps: crate::http::server::registry::Caps {
                total: h.max_connections,
                per_address: h.max_connections_per_address,
            },
            exempt: crate::http::client_address::TrustedProxies::parse(&h.trusted_proxies).unwrap_or_default(),
        }
    }

    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.hls.part_target_ms)
    }

    /// The recordings' global quota.
    pub fn recording_quota(&self) -> crate::recordings::retention::Quota {
        crate::recordings::retention::Quota {
            keep_free_percent: f64::from(self.recording.keep_free_percent),
            max_bytes: (self.recording.max_bytes > 0).then_some(self.recording.max_bytes),
        }
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_secs(self.sessions.checkpoint_seconds)
    }

    /// How thumbnails of live channels are made.
    pub fn thumbnail_settings(&self) -> crate::live::thumbnails::ThumbnailSettings {
        crate::live::thumbnails::ThumbnailSettings {
            interval: Duration::from_secs(self.thumbnails.interval_seconds),
            width: self.thumbnails.width,
        }
    }

    /// The failover times sessions run with.
    pub fn failover_times(&self) -> crate::live::input::failover::FailoverTimes {
        crate::live::input::failover::FailoverTimes {
            switch_after: Duration::from_millis(self.failover.switch_after_ms),
            return_after: Duration::from_millis(self.failover.return_after_ms),
            slate_grace: Duration::from_secs(self.failover.slate_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn shipped_sample_equals_defaults() {
        let sample = include_str!("../appliance.sample.toml");
        assert_eq!(Config::from_toml(sample).unwrap(), Config::default());
    }

    #[test]
    fn environment_overrides_file_values() {
        let env = |name: &str| match name {
            "APPLIANCE_HTTP_LISTEN" => Some("127.0.0.1:0".to_string()),
            "APPLIANCE_HLS_PART_TARGET_MS" => Some("333".to_string()),
            "APPLIANCE_API_MUTATION_BURST" => Some("7".to_string()),
            "APPLIANCE_SESSIONS_CHECKPOINT_SECONDS" => Some("2".to_string()),
            _ => None,
        };
        let config = Config::load(None, env).unwrap();
        assert_eq!(config.http.listen, "127.0.0.1:0");
        assert_eq!(config.hls.part_target_ms, 333);
        assert_eq!((config.api.mutation_burst, config.api.read_burst), (7, 100));
        assert_eq!(config.checkpoint_interval(), Duration::from_secs(2));
        assert_eq!(config.rtmp, RtmpConfig::default());
    }

    #[test]
    fn srt_settings_from_the_environment() {
        let env = |name: &str| match name {
            "APPLIANCE_SRT_LISTEN" => Some("127.0.0.1:9100".to_string()),
            "APPLIANCE_SRT_LATENCY_MS" => Some("300".to_string()),
            _ => None,
        };
        let (addr, srt) = Config::load(None, env).unwrap().srt().expect("on by default");
        assert_eq!((addr.port(), srt.latency), (9100, Duration::from_millis(300)));
        let off = |name: &str| (name == "APPLIANCE_SRT_ENABLED").then(|| "false".to_string());
        assert_eq!(Config::load(None, off).unwrap().srt(), None);
        let bad = |name: &str| (name == "APPLIANCE_SRT_ENABLED").then(|| "maybe".to_string());
        assert_eq!(
            Config::load(None, bad).unwrap_err().to_string(),
            Config::load(None, |n: &str| (n == "APPLIANCE_WEBHOOKS_DELIVER").then(|| "maybe".to_string()))
                .unwrap_err()
                .to_string()
                .replace("WEBHOOKS_DELIVER", "SRT_ENABLED")
        );
    }

    #[test]
    fn rtmp_limits_reach_ingest() {
        let env = |name: &str| match name {
            "APPLIANCE_RTMP_MAX_UNAUTHENTICATED" => Some("20".to_string()),
            "APPLIANCE_RTMP_MAX_UNAUTHENTICATED_PER_ADDRESS" => Some("4".to_string()),
            "APPLIANCE_RTMP_CONNECT_TIMEOUT_MS" => Some("2000".to_string()),
            "APPLIANCE_RTMP_PUBLISH_TIMEOUT_MS" => Some("6000".to_string()),
            _ => None,
        };
        let ingest = Config::load(None, env).unwrap().ingest();
        assert_eq!(
            (ingest.max_connections, ingest.max_unauthenticated, ingest.max_unauthenticated_per_address),
            (256, 20, 4)
        );
        assert_eq!(
            (ingest.connect_deadline, ingest.publish_deadline),
            (Duration::from_secs(2), Duration::from_secs(6))
        );
        assert_eq!(ingest.validate(), Ok(()));
        assert_eq!(Config::default().ingest().validate(), Ok(()), "the defaults pass ingest's own checks");
    }

    #[test]
    fn error_texts_are_pinned() {
        let cases: [(&str, &str); 31] = [
            ("bogus = 1", "unknown field `bogus`"),
            ("[hls]\npart_target_ms = 50", "hls.part_target_ms: 50 is outside 100..=2000"),
            (
                "[rtmp]\nlisten = \"nowhere\"",
                "rtmp.listen: \"nowhere\" is not an address:port (invalid socket address syntax)",
            ),
            (
                "[http]\nlisten = \"1.2.3.4\"",
                "http.listen: \"1.2.3.4\" is not an address:port (invalid socket address syntax)",
            ),
            ("[hls]\nwindow_seconds = 5", "hls.window_seconds: 5 is outside 12..=3600"),
            ("public_host = \"a b\"", "public_host: \"a b\" is not a host name or address"),
            ("[webhooks]\nmax_attempts = 0", "webhooks.max_attempts: 0 is outside 1..=100"),
            (
                "[webhooks]\nretry_base_ms = 5000\nretry_max_ms = 1000",
                "webhooks.retry_max_ms: 1000 is outside retry_base_ms..=86400000 (5000..=86400000)",
            ),
            ("[api]\nread_burst = 0", "api.read_burst: 0 is outside 1..=1000000"),
            ("[api]\nauth_failures_per_minute = 0", "api.auth_failures_per_minute: 0 is outside 1..=1000000"),
            ("[sessions]\ncheckpoint_seconds = 0", "sessions.checkpoint_seconds: 0 is outside 1..=3600"),
            ("[audit]\nmax_entries = 0", "audit.max_entries: 0 is outside 1..=1000000"),
            ("[audit]\nmax_age_days = 4000", "audit.max_age_days: 4000 is outside 1..=3650"),
            (
                "[playback]\nkey_overlap_seconds = 2592001",
                "playback.key_overlap_seconds: 2592001 is outside 0..=2592000",
            ),
            ("[recording]\nkeep_free_percent = 91", "recording.keep_free_percent: 91 is outside 0..=90"),
            ("[recording]\nsweep_seconds = 0", "recording.sweep_seconds: 0 is outside 1..=3600"),
            ("[thumbnails]\ninterval_seconds = 0", "thumbnails.interval_seconds: 0 is outside 1..=3600"),
            ("[thumbnails]\nwidth = 8", "thumbnails.width: 8 is outside 16..=3840"),
            ("[failover]\nswitch_after_ms = 50", "failover.switch_after_ms: 50 is outside 100..=60000"),
            ("[failover]\nreturn_after_ms = 0", "failover.return_after_ms: 0 is outside 100..=3600000"),
            ("[failover]\nslate_seconds = 90000", "failover.slate_seconds: 90000 is outside 0..=86400"),
            ("[rtmp]\nmax_connections = 32", "rtmp.max_unauthenticated: 64 is outside 1..=max_connections (1..=32)"),
            (
                "[rtmp]\nmax_unauthenticated_per_address = 65",
                "rtmp.max_unauthenticated_per_address: 65 is outside 1..=max_unauthenticated (1..=64)",
            ),
            ("[http]\nheader_timeout_ms = 100", "http.header_timeout_ms: 100 is outside 500..=120000"),
            ("[http]\nidle_timeout_ms = 0", "http.idle_timeout_ms: 0 is outside 1000..=3600000"),
            ("[http]\nbody_timeout_ms = 999", "http.body_timeout_ms: 999 is outside 1000..=600000"),
            (
                "[http]\nmax_connections = 100",
                "http.max_connections_per_address: 256 is outside 1..=max_connections (1..=100)",
            ),
            ("[rtmp]\nconnect_timeout_ms = 50", "rtmp.connect_timeout_ms: 50 is outside 100..=60000"),
            ("[srt]\nlatency_ms = 10", "srt.latency_ms: 10 is outside 20..=8000"),
            ("[srt]\nlisten = \"9000\"", "srt.listen: \"9000\" is not an address:port (invalid socket address syntax)"),
            (
                "[rtmp]\npublish_timeout_ms = 4000",
                "rtmp.publish_timeout_ms: 4000 is outside connect_timeout_ms..=300000 (5000..=300000)",
            ),
        ];
        for (text, want) in cases {
            let got = match Config::from_toml(text) {
                Err(e) => e,
                Ok(config) => config.validate().unwrap_err().to_string(),
            };
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
        }
        let env = |name: &str| (name == "APPLIANCE_HLS_WINDOW_SECONDS").then(|| "ten".to_string());
        assert_eq!(
            Config::load(None, env).unwrap_err().to_string(),
            "environment variable APPLIANCE_HLS_WINDOW_SECONDS: \"ten\" is not a whole number"
        );
        let missing = Config::load(Some(Path::new("does/not/exist.toml")), no_env).unwrap_err().to_string();
        assert!(missing.starts_with("cannot read config file does/not/exist.toml: "), "{missing}");
    }
}
