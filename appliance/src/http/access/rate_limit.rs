//! Rate limits of the API: a token bucket per client for reads (GET, HEAD)
//! and another for mutations, a client being the credential a request proves
//! (an API token, a console session) or, without one, its address; and a
//! bucket per address for failed authentications, shared with the console's
//! sign-in, so guessing tokens or the password is slow. The buckets are
//! `limiter`'s; refusals are logged as counts, never one line each. The
//! control socket's local administrator is not limited.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::console_sessions::Sessions;
use super::identity::{self, Identity};
use super::limiter::{FailureLimiter, Quota, RateLimiter, Verdict, address_key};
use crate::config::ApiConfig;
use crate::http::problem::{ApiError, ProblemKind};
use crate::state::Store;
/// How often refusals are summarised in the log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The client's address (behind a trusted proxy, the one it forwarded for;
/// all clients share one when the server runs without connect info).
pub fn client_address(extensions: &axum::http::Extensions) -> IpAddr {
    crate::http::client_address::of(extensions).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Whom a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// A request without a valid credential, by address (see `address_key`).
    Address(IpAddr),
    /// A token or console session, by a keyed hash of its id.
    Credential(u64),
}

/// The API's limiters.
#[derive(Debug)]
pub struct RateLimits {
    config: ApiConfig,
    reads: RateLimiter<Client>,
    mutations: RateLimiter<Client>,
    failures: Arc<FailureLimiter>,
    /// Keys credential ids (a per-process random key: ids cannot be made to collide on purpose).
    credentials: RandomState,
    /// Requests over their budget, and requests refused for failed authentications.
    refused_requests: RefusalReport,
    refused_attempts: RefusalReport,
}

impl RateLimits {
    pub fn new(config: &ApiConfig) -> RateLimits {
        RateLimits {
            config: config.clone(),
            reads: RateLimiter::new(Quota::per_second(config.read_per_second, config.read_burst)),
            mutations: RateLimiter::new(Quota::per_second(config.mutation_per_second, config.mutation_burst)),
            failures: Arc::new(RateLimiter::new(Quota::per_minute(
                config.auth_failures_per_minute,
                config.auth_failure_burst,
            ))),
            credentials: RandomState::new(),
            refused_requests: RefusalReport::new("request budget spent"),
            refused_attempts: RefusalReport::new("too many failed authentications"),
        }
    }

    /// The failed-authentication limiter (the console's sign-in shares it).
    pub fn failures(&self) -> Arc<FailureLimiter> {
        self.failures.clone()
    }

    /// Failed sign-ins as one user name, from any address (the per-address quota).
    pub fn sign_in_per_user(&self) -> Quota {
        Quota::per_minute(self.config.auth_failures_per_minute, self.config.auth_failure_burst)
    }

    /// Failed sign-ins of every address together.
    pub fn sign_in_total(&self) -> Quota {
        let c = &self.config;
        Quota::per_minute(c.sign_in_failures_per_minute_total, c.sign_in_failure_burst_total)
    }

    /// The client a credential is charged as.
    pub fn credential(&self, kind: &str, id: &str) -> Client {
        Client::Credential(self.credentials.hash_one((kind, id)))
    }

    /// The verdict on a request of `client` (`mutation`: any method but GET and HEAD).
    pub fn check(&self, client: Client, mutation: bool, now: Instant) -> Verdict {
        if mutation { &self.mutations } else { &self.reads }.check(client, now)
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(&ApiConfig::default())
    }
}

/// Refusals are logged as a count at most every `REPORT_EVERY`, never one line each.
#[derive(Debug)]
struct RefusalReport {
    what: &'static str,
    refused: AtomicU64,
    /// When the last report was made, in seconds since `epoch` plus one (0: never).
    last: AtomicU64,
    epoch: Instant,
}

impl RefusalReport {
    fn new(what: &'static str) -> RefusalReport {
        RefusalReport { what, refused: AtomicU64::new(0), last: AtomicU64::new(0), epoch: Instant::now() }
    }

    /// Counts a refusal; reports the count (naming the latest client) when the last report is old enough.
    fn refused(&self, who: impl FnOnce() -> String) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let now = self.epoch.elapsed().as_secs() + 1;
        let last = self.last.load(Ordering::Relaxed);
        if (last == 0 || now >= last + REPORT_EVERY.as_secs())
            && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let refused = self.refused.swap(0, Ordering::Relaxed).max(1);
            let what = self.what;
            tracing::warn!(client = %who(), refused, "api: {what}: requests refused with 429 (count since the last report)");
        }
    }
}

/// Whole seconds, rounded up (a client waiting that long is never early).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The bucket's size, what is left in it, and the seconds until it is full
/// again (the IETF httpapi draft's `RateLimit-*` fields).
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

fn limit_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(verdict.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(verdict.remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(ceil_secs(verdict.reset)));
}

fn refusal(kind: ProblemKind, detail: String, retry_after: Duration) -> Response {
    let mut response = ApiError::new(kind, detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(ceil_secs(retry_after).max(1)));
    response
}

/// What the rate-limit middleware needs: the limits, and what identifies a caller.
#[derive(Debug, Clone)]
pub struct Gate {
    pub limits: Arc<RateLimits>,
    pub store: Store,
    pub console: Arc<Sessions>,
}

/// The middleware of every API route: charges the request to its client's
/// bucket (after authenticating it: an unverified token id must not spend
/// someone else's budget) and answers 429 once the bucket is empty. A request
/// with a bearer token from an address with no failed-authentication budget
/// left is refused before its token is even checked.
pub async fn limit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if matches!(request.extensions().get::<Identity>(), Some(Identity::Local)) {
        // The control socket: the box's own administrator, never limited (see `identity`).
        return next.run(request).await;
    }
    let now = Instant::now();
    let address = address_key(client_address(request.extensions()));
    let (mut parts, body) = request.into_parts();
    let limits = &gate.limits;
    if parts.headers.contains_key(header::AUTHORIZATION)
        && let Err(wait) = limits.failures.peek(address, now)
    {
        limits.refused_attempts.refused(|| address.to_string());
        let detail =
            format!("too many failed authentications from this address; retry in {} s", ceil_secs(wait).max(1));
        return refusal(ProblemKind::TooManyAttempts, detail, wait);
    }
    let identity = identity::identify(&parts, &gate.store, &gate.console).await;
    let (client, who): (Client, &str) = match &identity {
        Identity::Bearer(Ok(token)) => (limits.credential("token", &token.id), &token.id),
        Identity::Console { id, .. } => (limits.credential("console", id), "console session"),
        Identity::Bearer(Err(e)) if e.kind == ProblemKind::Unauthorized => {
            limits.failures.charge(address, now);
            (Client::Address(address), "")
        }
        Identity::Bearer(Err(_)) | Identity::Anonymous | Identity::Local => (Client::Address(address), ""),
    };
    let mutation = !matches!(parts.method, Method::GET | Method::HEAD);
    let verdict = limits.check(client, mutation, now);
    if !verdict.allowed {
        limits.refused_requests.refused(|| if who.is_empty() { address.to_string() } else { who.to_string() });
        let (kind, rate) = match mutation {
            true => ("changes", limits.config.mutation_per_second),
            false => ("reads", limits.config.read_per_second),
        };
        let detail = format!(
            "over the limit of {} {kind} at once and {rate} per second; retry in {} s",
            verdict.limit,
            ceil_secs(verdict.retry_after).max(1),
        );
        let mut response = refusal(ProblemKind::TooManyRequests, detail, verdict.retry_after);
        limit_headers(response.headers_mut(), &verdict);
        return response;
    }
    parts.extensions.insert(identity);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    limit_headers(response.headers_mut(), &verdict);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(ceil_secs(ms(1)), 1);
        assert_eq!(ceil_secs(ms(2000)), 2);
    }
}
