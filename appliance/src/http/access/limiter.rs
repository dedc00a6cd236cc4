//! The token bucket behind every rate limit: one `u64` per key (GCRA: the
//! time at which the bucket is full again), in a map split into shards
//! behind their own mutexes, so a check is a hash, an uncontended lock and a
//! map lookup. A bucket that is full again is as good as none, so it is
//! dropped when its shard fills; a shard that is still full then forgets
//! arbitrary buckets, so memory stays bounded under a flood of distinct keys.
//! IPv6 addresses count by their /64, what one host or site holds.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shards of each limiter's map.
const SHARDS: usize = 16;
/// Buckets a limiter keeps at most (about 40 bytes each).
const MAX_KEYS: usize = 32 * 1024;

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

    /// Gives back one request taken from `key`'s bucket (it was not used after all).
    pub fn refund(&self, key: K, now: Instant) {
        let (t, interval) = (self.nanos(now), self.quota.interval_ns);
        let mut shard = self.shard(&key);
        if let Some(full_at) = shard.get_mut(&key) {
            *full_at = full_at.saturating_sub(interval).max(t);
        }
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

/// Failed authentications per address: shared by the API and the console's sign-in.
pub type FailureLimiter = RateLimiter<IpAddr>;

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

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
    fn a_request_taken_and_refunded_is_as_if_never_taken() {
        let limiter = RateLimiter::new(Quota::per_minute(5, 1));
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).allowed);
        assert!(!limiter.check("a", t0).allowed);
        limiter.refund("a", t0);
        assert!(limiter.check("a", t0).allowed, "the refunded request can be taken again");
        limiter.refund("a", t0);
        limiter.refund("a", t0);
        assert!(limiter.check("a", t0).allowed);
        assert!(!limiter.check("a", t0).allowed, "refunds never fill a bucket past its size");
        limiter.refund("absent", t0);
        assert!(limiter.peek("absent", t0).is_ok());
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

    #[test]
    fn quotas_round_sanely() {
        assert_eq!(Quota::per_second(50, 100).interval_ns, 20_000_000);
        assert_eq!(Quota::per_minute(5, 5).interval_ns, 12_000_000_000);
        assert_eq!(Quota::per_second(2_000_000_000, 1).interval_ns, 1, "never zero");
    }
}
