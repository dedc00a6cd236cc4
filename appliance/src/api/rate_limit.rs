//! Rate limits of the API: a token bucket per client for reads (GET, HEAD)
//! and another for mutations, a client being the credential a request proves
//! (an API token, a console session) or, without one, its address; and a
//! bucket per address for failed authentications, shared with the console's
//! sign-in, so guessing tokens or the password is slow.
//!
//! Each bucket is one `u64` (GCRA: the time at which it will be full again),
//! in a map split into shards behind their own mutexes: a check is a hash, an
//! uncontended lock and a map lookup. A bucket that is full again is as good
//! as none, so it is dropped when its shard fills; a shard that is still full
//! then forgets arbitrary buckets, so memory stays bounded under a flood of
//! distinct addresses (such a flood is beyond what per-client limits can stop
//! anyway). IPv6 addresses count by their /64, what one host or site holds.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::auth::{self, Identity};
use super::problem::{ApiError, ProblemKind};
use crate::config::ApiConfig;

/// Shards of each limiter's map.
const SHARDS: usize = 16;
/// Buckets a limiter keeps at most (about 40 bytes each).
const MAX_KEYS: usize = 32 * 1024;
/// How often refusals are summarised in the log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Time to earn one request, in nanoseconds.
    interval_ns: u64,
    /// Requests a full bucket holds.
    burst: u32,
}

impl Quota {
    /// `rate` requests per `period` sustained, `burst` at once.
    pub fn new(rate: u32, period: Duration, burst: u32) -> Quota {
        // Bounded so that a bucket's capacity in nanoseconds never overflows.
        let limit = u64::MAX / 4;
        let interval_ns = (period.as_nanos() / u128::from(rate.max(1))).clamp(1, u128::from(limit)) as u64;
        let burst = u64::from(burst.max(1)).min(limit / interval_ns).min(u64::from(u32::MAX)) as u32;
        Quota { interval_ns, burst: burst.max(1) }
    }

    pub fn per_second(rate: u32, burst: u32) -> Quota {
        Quota::new(rate, Duration::from_secs(1), burst)
    }

    pub fn per_minute(rate: u32, burst: u32) -> Quota {
        Quota::new(rate, Duration::from_secs(60), burst)
    }

    fn capacity_ns(&self) -> u64 {
        self.interval_ns * u64::from(self.burst)
    }
}

/// The answer to a request: whether it may go, and what its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The bucket's size.
    pub limit: u32,
    /// Requests left in the bucket after this one.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// Until the next request would be allowed (zero when this one was).
    pub retry_after: Duration,
}

/// Token buckets by key, bounded in number.
#[derive(Debug)]
pub struct RateLimiter<K> {
    quota: Quota,
    epoch: Instant,
    /// key -> when its bucket is full again (nanoseconds since `epoch`).
    shards: Box<[Mutex<HashMap<K, u64>>]>,
    shard_capacity: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(quota: Quota) -> RateLimiter<K> {
        Self::with_capacity(quota, MAX_KEYS)
    }

    /// A limiter that keeps at most about `max_keys` buckets.
    pub fn with_capacity(quota: Quota, max_keys: usize) -> RateLimiter<K> {
        RateLimiter {
            quota,
            epoch: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_capacity: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// Nanoseconds since the limiter began (an absent key's bucket is full at 0).
    fn nanos(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one request from `key`'s bucket if it has one.
    pub fn check(&self, key: K, now: Instant) -> Verdict {
        let (t, interval, capacity) = (self.nanos(now), self.quota.interval_ns, self.quota.capacity_ns());
        let mut shard = self.shard(&key);
        let full_at = shard.get(&key).copied().unwrap_or(0).max(t);
        let after = full_at + interval;
        if after - t > capacity {
            return Verdict {
                allowed: false,
                limit: self.quota.burst,
                remaining: 0,
                reset: Duration::from_nanos(full_at - t),
                retry_after: Duration::from_nanos(after - capacity - t),
            };
        }
        self.store(&mut shard, key, after, t);
        Verdict {
            allowed: true,
            limit: self.quota.burst,
            remaining: ((capacity - (after - t)) / interval) as u32,
            reset: Duration::from_nanos(after - t),
            retry_after: Duration::ZERO,
        }
    }

    /// Whether `key` has a request left, without taking it; otherwise how long until it has.
    pub fn peek(&self, key: K, now: Instant) -> Result<(), Duration> {
        let (t, interval, capacity) = (self.nanos(now), self.quota.interval_ns, self.quota.capacity_ns());
        let full_at = self.shard(&key).get(&key).copied().unwrap_or(0).max(t);
        match (full_at + interval).checked_sub(t + capacity) {
            Some(wait) if wait > 0 => Err(Duration::from_nanos(wait)),
            _ => Ok(()),
        }
    }

    /// Takes one request from `key`'s bucket even if it is empty (the debt is
    /// capped at one bucket: at worst the key waits for a whole refill).
    pub fn charge(&self, key: K, now: Instant) {
        let (t, interval, capacity) = (self.nanos(now), self.quota.interval_ns, self.quota.capacity_ns());
        let mut shard = self.shard(&key);
        let full_at = shard.get(&key).copied().unwrap_or(0).max(t);
        self.store(&mut shard, key, (full_at + interval).min(t + capacity), t);
    }

    /// Forgets `key`'s bucket (it is full again).
    pub fn forget(&self, key: K) {
        self.shard(&key).remove(&key);
    }

    /// Buckets kept now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn store(&self, shard: &mut HashMap<K, u64>, key: K, full_at: u64, t: u64) {
        if let Some(slot) = shard.get_mut(&key) {
            *slot = full_at;
            return;
        }
        if shard.len() >= self.shard_capacity {
            // Full buckets are as good as absent; if that is not enough, an
            // eighth of the shard goes at once, so this stays rare.
            shard.retain(|_, full| *full > t);
            if shard.len() >= self.shard_capacity {
                let mut excess = shard.len() + 1 - self.shard_capacity * 7 / 8;
                shard.retain(|_, _| {
                    let keep = excess == 0;
                    excess = excess.saturating_sub(1);
                    keep
                });
            }
        }
        shard.insert(key, full_at);
    }
}

/// The address a limit applies to: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The client's address (behind a trusted proxy, the one it forwarded for;
/// all clients share one when the server runs without connect info).
pub fn client_address(extensions: &axum::http::Extensions) -> IpAddr {
    crate::client_address::of(extensions).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Whom a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// A request without a valid credential, by address (see `address_key`).
    Address(IpAddr),
    /// A token or console session, by a keyed hash of its id.
    Credential(u64),
}

/// Failed authentications per address: shared by the API and the console's sign-in.
pub type FailureLimiter = RateLimiter<IpAddr>;

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

    fn credential(&self, kind: &str, id: &str) -> Client {
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

/// The middleware of every API route: charges the request to its client's
/// bucket (after authenticating it: an unverified token id must not spend
/// someone else's budget) and answers 429 once the bucket is empty. A request
/// with a bearer token from an address with no failed-authentication budget
/// left is refused before its token is even checked.
pub async fn limit(State(api): State<ApiState>, request: Request, next: Next) -> Response {
    let now = Instant::now();
    let address = address_key(client_address(request.extensions()));
    let (mut parts, body) = request.into_parts();
    let limits = &api.limits;
    if parts.headers.contains_key(header::AUTHORIZATION)
        && let Err(wait) = limits.failures.peek(address, now)
    {
        limits.refused_attempts.refused(|| address.to_string());
        let detail =
            format!("too many failed authentications from this address; retry in {} s", ceil_secs(wait).max(1));
        return refusal(ProblemKind::TooManyAttempts, detail, wait);
    }
    let identity = auth::identify(&parts, &api).await;
    let (client, who): (Client, &str) = match &identity {
        Identity::Bearer(Ok(token)) => (limits.credential("token", &token.id), &token.id),
        Identity::Console { id, .. } => (limits.credential("console", id), "console session"),
        Identity::Bearer(Err(e)) if e.kind == ProblemKind::Unauthorized => {
            limits.failures.charge(address, now);
            (Client::Address(address), "")
        }
        Identity::Bearer(Err(_)) | Identity::Anonymous => (Client::Address(address), ""),
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
    fn a_bucket_gives_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(Quota::per_second(10, 3));
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..4).map(|_| limiter.check("a", t0)).collect();
        let remaining: Vec<u32> = verdicts.iter().map(|v| v.remaining).collect();
        assert_eq!(verdicts.iter().map(|v| v.allowed).collect::<Vec<_>>(), [true, true, true, false]);
        assert_eq!(remaining, [2, 1, 0, 0]);
        assert_eq!(verdicts[2].reset, ms(300), "three requests take 300 ms to earn back");
        assert_eq!(verdicts[3].retry_after, ms(100));
        assert!(limiter.check("b", t0).allowed, "another key has its own bucket");
        assert!(!limiter.check("a", t0 + ms(99)).allowed);
        assert!(limiter.check("a", t0 + ms(100)).allowed, "one request earned back");
        assert!(!limiter.check("a", t0 + ms(100)).allowed);
        let later = limiter.check("a", t0 + ms(10_000));
        assert_eq!((later.allowed, later.remaining), (true, 2), "a long pause refills the bucket, no more");
    }

    #[test]
    fn failures_are_peeked_charged_and_forgotten() {
        let limiter = RateLimiter::new(Quota::per_minute(5, 2));
        let (ip, t0): (IpAddr, Instant) = ("192.0.2.1".parse().unwrap(), Instant::now());
        assert_eq!(limiter.peek(ip, t0), Ok(()));
        limiter.charge(ip, t0);
        assert_eq!(limiter.peek(ip, t0), Ok(()), "peeking takes nothing");
        limiter.charge(ip, t0);
        assert_eq!(limiter.peek(ip, t0), Err(Duration::from_secs(12)), "one failure per 12 s");
        for _ in 0..100 {
            limiter.charge(ip, t0);
        }
        assert_eq!(limiter.peek(ip, t0), Err(Duration::from_secs(12)), "the debt is capped at one bucket");
        assert_eq!(limiter.peek(ip, t0 + Duration::from_secs(12)), Ok(()));
        limiter.forget(ip);
        assert_eq!(limiter.peek(ip, t0), Ok(()));
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let limiter = RateLimiter::with_capacity(Quota::per_second(1, 1), 1024);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            limiter.check(IpAddr::V4(Ipv4Addr::from(i)), t0);
        }
        assert!(limiter.len() <= 1024, "{} buckets", limiter.len());
        // Buckets that are full again go first: a second later every one is.
        limiter.check(IpAddr::V4(Ipv4Addr::from(u32::MAX)), t0);
        for i in 0..2000u32 {
            limiter.check(IpAddr::V4(Ipv4Addr::from(i)), t0 + Duration::from_secs(2));
        }
        assert!(limiter.len() <= 1024 && !limiter.is_empty());
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    /// What a check costs (a measurement, printed; not a timed assertion).
    #[test]
    fn the_cost_of_a_check() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        let rounds = 200_000u32;
        let started = Instant::now();
        for i in 0..rounds {
            let client = limits.credential("token", "tok_k3j9x2m1qz8w");
            std::hint::black_box(limits.check(client, false, t0 + Duration::from_millis(u64::from(i) * 20)));
        }
        let one_client = started.elapsed() / rounds;
        let started = Instant::now();
        for i in 0..rounds {
            let client = Client::Address(IpAddr::V4(Ipv4Addr::from(i % 10_000)));
            std::hint::black_box(limits.check(client, false, t0 + Duration::from_millis(u64::from(i))));
        }
        let many_clients = started.elapsed() / rounds;
        let mut headers = HeaderMap::new();
        let started = Instant::now();
        for _ in 0..rounds {
            limit_headers(&mut headers, &limits.check(Client::Credential(1), false, t0));
            std::hint::black_box(&headers);
        }
        let with_headers = started.elapsed() / rounds;
        eprintln!(
            "rate limit check: {one_client:?} (one token, keyed hash included), {many_clients:?} (10 000 addresses), {with_headers:?} (with the three headers)"
        );
    }

    #[test]
    fn quotas_round_sanely() {
        assert_eq!(Quota::per_second(50, 100).interval_ns, 20_000_000);
        assert_eq!(Quota::per_minute(5, 5).interval_ns, 12_000_000_000);
        assert_eq!(Quota::per_second(2_000_000_000, 1).interval_ns, 1, "never zero");
        assert_eq!(ceil_secs(ms(1)), 1);
        assert_eq!(ceil_secs(ms(2000)), 2);
    }
}
