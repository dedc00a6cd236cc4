//! A webhook endpoint: where events are POSTed, the secret that signs them
//! and which event types it wants (none listed: all); what registering one
//! takes, and the checks of those fields.

use serde::{Deserialize, Serialize};

use super::event::EventType;
use crate::state::error::StoreError;

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A registered receiver of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    /// HMAC-SHA256 key of the signature header.
    pub secret: String,
    /// Event types delivered; empty means every type.
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: Option<String>,
    pub created_ms: u64,
}

impl WebhookEndpoint {
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// What registering an endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewWebhook {
    pub url: String,
    /// Generated when absent.
    pub secret: Option<String>,
    pub events: Vec<EventType>,
    pub description: Option<String>,
}

/// Endpoint URLs: http or https, a host name or IPv4 address, an optional
/// port, path and query; no credentials, no fragment (also the OpenAPI pattern).
pub const URL_PATTERN: &str = concat!(
    r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|[A-Za-z][A-Za-z0-9-]{0,62}(\.[A-Za-z][A-Za-z0-9-]{0,62})*)",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
);
/// Endpoint secrets: 16 to 128 printable ASCII characters.
pub const SECRET_PATTERN: &str = "^[!-~]{16,128}$";
/// Descriptions: no control characters.
pub const DESCRIPTION_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

fn matches(pattern: &'static str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static COMPILED: LazyLock<Mutex<HashMap<&'static str, regex::Regex>>> = LazyLock::new(Default::default);
    // A poisoned map still holds only fully compiled patterns (an insert is
    // one step), so it stays usable.
    let mut compiled = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    compiled.entry(pattern).or_insert_with(|| regex::Regex::new(pattern).expect("valid pattern")).is_match(text)
}

/// Checks the URL, secret and description of a new endpoint.
pub(crate) fn validate(new: &NewWebhook) -> Result<(), StoreError> {
    if new.url.len() > MAX_URL_LEN {
        return Err(StoreError::invalid("url", format!("longer than {MAX_URL_LEN} bytes")));
    }
    if !matches(URL_PATTERN, &new.url) {
        return Err(StoreError::invalid(
            "url",
            "use an http or https URL with a host name or IPv4 address, no credentials",
        ));
    }
    reqwest::Url::parse(&new.url).map_err(|e| StoreError::invalid("url", format!("not a valid URL ({e})")))?;
    if new.secret.as_ref().is_some_and(|secret| !matches(SECRET_PATTERN, secret)) {
        return Err(StoreError::invalid("secret", "use 16 to 128 printable ASCII characters"));
    }
    if new.description.as_ref().is_some_and(|d| d.chars().count() > 256 || !matches(DESCRIPTION_PATTERN, d)) {
        return Err(StoreError::invalid("description", "use at most 256 characters, none of them control characters"));
    }
    Ok(())
}
