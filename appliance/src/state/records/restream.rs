//! A restream destination of a channel: another platform or server that
//! gets one rendition of every session of the channel as it is made
//! (RTMP, RTMPS or SRT), what adding or changing one takes, and the checks
//! of its fields. The destination's stream key is a secret: stored apart
//! from the URL so that the URL can be shown, never shown itself.

use serde::{Deserialize, Serialize};

use crate::state::error::StoreError;

/// Longest destination URL accepted.
pub const MAX_URL_LEN: usize = 1024;
/// Destinations per channel.
pub const MAX_PER_CHANNEL: usize = 16;
/// The rendition a destination gets unless told: the source as published.
pub const SOURCE: &str = "source";

/// One destination of a channel's restream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestreamDestination {
    pub id: String,
    pub channel: String,
    /// `rtmp://host[:port]/app`, `rtmps://...` or `srt://host:port[?options]`, without the key.
    pub url: String,
    /// The stream key at the destination: the last path segment of an RTMP
    /// URL, the `streamid` of an SRT one. Never shown after it is set.
    #[serde(default)]
    pub key: Option<String>,
    /// `source` or the name of a ladder rung.
    pub rendition: String,
    pub enabled: bool,
    #[serde(default)]
    pub description: Option<String>,
    pub created_ms: u64,
}

impl RestreamDestination {
    /// The URL the stream is sent to, key included: never logged or shown.
    pub fn target(&self) -> String {
        let Some(key) = self.key.as_deref().filter(|k| !k.is_empty()) else { return self.url.clone() };
        if self.url.to_ascii_lowercase().starts_with("srt://") {
            let separator = if self.url.contains('?') { '&' } else { '?' };
            format!("{}{separator}streamid={key}", self.url)
        } else {
            format!("{}/{key}", self.url.trim_end_matches('/'))
        }
    }

    /// The URL as logs, events and the API show it: SRT options that carry
    /// secrets are masked (the key is never part of `url`).
    pub fn shown_url(&self) -> String {
        let Some((base, query)) = self.url.split_once('?') else { return self.url.clone() };
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if matches!(name, "passphrase" | "streamid") => format!("{name}=***"),
                _ => pair.to_string(),
            })
            .collect();
        format!("{base}?{}", masked.join("&"))
    }
}

/// What adding a destination takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRestream {
    pub url: String,
    pub key: Option<String>,
    /// `source` when absent.
    pub rendition: Option<String>,
    /// True when absent.
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// A change to a destination; absent fields stay as they are. `key: Some("")` removes the key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestreamPatch {
    pub url: Option<String>,
    pub key: Option<String>,
    pub rendition: Option<String>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// Destination URLs (also the OpenAPI pattern): rtmp, rtmps or srt, a host,
/// an optional port, path and query; no credentials, no fragment, no spaces.
pub const URL_PATTERN: &str = r"^(rtmps?|srt)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$";
/// Destination keys: 1 to 512 printable ASCII characters but `# & / ?` (URL separators).
pub const KEY_PATTERN: &str = r##"^[!-"$-%'-.0-9:->@-~]{1,512}$"##;
/// Rendition names, as ladder rungs are named.
pub const RENDITION_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,31}$";

fn matches(pattern: &'static str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static COMPILED: LazyLock<Mutex<HashMap<&'static str, regex::Regex>>> = LazyLock::new(Default::default);
    // A poisoned map still holds only fully compiled patterns.
    let mut compiled = COMPILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    compiled.entry(pattern).or_insert_with(|| regex::Regex::new(pattern).expect("a valid pattern")).is_match(text)
}

pub fn validate_url(url: &str) -> Result<(), StoreError> {
    if url.len() > MAX_URL_LEN || !matches(URL_PATTERN, url) {
        return Err(StoreError::invalid(
            "url",
            "use rtmp://host[:port]/app, rtmps://... or srt://host:port[?options], without the stream key",
        ));
    }
    Ok(())
}

pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if !matches(KEY_PATTERN, key) {
        return Err(StoreError::invalid("key", "use 1 to 512 printable characters without / ? & #"));
    }
    Ok(())
}

pub fn validate_rendition(rendition: &str) -> Result<(), StoreError> {
    if !matches(RENDITION_PATTERN, rendition) {
        return Err(StoreError::invalid("rendition", "use `source` or the name of a ladder rung"));
    }
    Ok(())
}

pub fn validate_description(description: &str) -> Result<(), StoreError> {
    if description.chars().count() > 256 || description.chars().any(char::is_control) {
        return Err(StoreError::invalid("description", "use at most 256 characters, none of them control characters"));
    }
    Ok(())
}

/// What a restream event reports: the destination as shown (no key), the
/// session, and the error when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestreamReport {
    pub destination: String,
    pub url: String,
    pub rendition: String,
    pub session: String,
    /// Connection attempts so far in this session (1 for the first).
    pub attempt: u32,
    /// Why it failed (`restream.failed`).
    pub error: Option<String>,
    /// When it is retried, in milliseconds from the event (`restream.failed`).
    pub retry_in_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(url: &str, key: Option<&str>) -> RestreamDestination {
        RestreamDestination {
            id: "rs_1".into(),
            channel: "show".into(),
            url: url.into(),
            key: key.map(str::to_string),
            rendition: SOURCE.into(),
            enabled: true,
            description: None,
            created_ms: 0,
        }
    }

    #[test]
    fn the_key_joins_the_url_as_each_protocol_expects() {
        assert_eq!(
            destination("rtmp://a.rtmp.youtube.com/live2", Some("abcd")).target(),
            "rtmp://a.rtmp.youtube.com/live2/abcd"
        );
        assert_eq!(destination("rtmps://x:443/rtmp/", Some("k")).target(), "rtmps://x:443/rtmp/k");
        assert_eq!(destination("srt://10.0.0.2:9000", Some("k")).target(), "srt://10.0.0.2:9000?streamid=k");
        assert_eq!(
            destination("srt://10.0.0.2:9000?latency=200", Some("k")).target(),
            "srt://10.0.0.2:9000?latency=200&streamid=k"
        );
        assert_eq!(destination("rtmp://h/app/fullkey", None).target(), "rtmp://h/app/fullkey");
    }

    #[test]
    fn secrets_in_srt_options_are_masked() {
        let shown = destination("srt://h:9000?passphrase=hunter22hunter&latency=120", None).shown_url();
        assert_eq!(shown, "srt://h:9000?passphrase=***&latency=120");
    }

    #[test]
    fn urls_and_keys_are_checked() {
        assert!(validate_url("rtmp://a.rtmp.youtube.com/live2").is_ok());
        assert!(validate_url("srt://10.0.0.2:9000?latency=200").is_ok());
        assert!(validate_url("http://example.com/").is_err());
        assert!(validate_url("rtmp://user:pass@host/app").is_err());
        assert!(validate_url("rtmp://host/app with space").is_err());
        assert!(validate_key("live_12345_abc").is_ok());
        assert!(validate_key("a/b").is_err());
        assert!(validate_key("x\ny").is_err());
        assert!(validate_key("").is_err());
        assert!(validate_rendition("720p").is_ok());
        assert!(validate_rendition("../x").is_err());
    }
}
