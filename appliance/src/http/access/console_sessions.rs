//! Signed-in console sessions, kept in memory (a restart signs everyone out,
//! which is what an appliance reboot should do): a random 256-bit id in an
//! HttpOnly cookie, the user and role it signed in as, a CSRF token that
//! every mutation must echo in `X-CSRF-Token`, an absolute expiry. A user's
//! new password, or disabling it, ends that user's sessions at once. Also the
//! limits on failed sign-ins: per address, the API's failed-authentication
//! limiter (`api::rate_limit`), so wrong passwords and invalid API tokens
//! from one address draw on one budget; per user name, so one account cannot
//! be guessed at from many addresses; and a budget of failed sign-ins from
//! all addresses together, so a flood from many addresses is bounded too.
//! All are charged when an attempt starts, not when it has failed: attempts
//! still being checked count (a success gives its charge back).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use subtle::ConstantTimeEq;

use super::limiter::{FailureLimiter, Quota, RateLimiter, address_key};
use crate::state::Role;

/// The session cookie's name.
pub const COOKIE: &str = "appliance_session";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed authentications allowed at once per client address by default
/// (`api.auth_failure_burst`); then `api.auth_failures_per_minute`.
pub const MAX_FAILURES: u32 = 5;
/// Sessions kept at most (the oldest go first).
const MAX_SESSIONS: usize = 256;
/// Failed sign-ins from all addresses together by default
/// (`api.sign_in_failures_per_minute_total`, `api.sign_in_failure_burst_total`).
pub const MAX_FAILURES_TOTAL: u32 = 30;

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
    user: String,
    role: Role,
}

/// Every signed-in session and the sign-in failure budgets.
#[derive(Debug)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Arc<FailureLimiter>,
    /// Sign-in failures of every address together.
    failures_total: RateLimiter<()>,
    /// Sign-in failures per user name (by a keyed hash of it).
    failures_per_user: RateLimiter<u64>,
    user_keys: RandomState,
}

/// What a valid session cookie gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub csrf: String,
    /// The user it signed in as, and that user's role then.
    pub user: String,
    pub role: Role,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Default for Sessions {
    /// Sessions with a failure limiter of their own, at the default quota.
    fn default() -> Self {
        let per_address = Quota::per_minute(MAX_FAILURES, MAX_FAILURES);
        let failures = Arc::new(FailureLimiter::new(per_address));
        Sessions::new(failures, per_address, Quota::per_minute(MAX_FAILURES_TOTAL, MAX_FAILURES_TOTAL))
    }
}

impl Sessions {
    /// No sessions yet; sign-in attempts are charged to `failures` (per
    /// address), to a budget of `per_user` for each user name, and to one of
    /// `total` for every address together.
    pub fn new(failures: Arc<FailureLimiter>, per_user: Quota, total: Quota) -> Sessions {
        Sessions {
            sessions: Mutex::default(),
            failures,
            failures_total: RateLimiter::with_capacity(total, 1),
            failures_per_user: RateLimiter::new(per_user),
            user_keys: RandomState::new(),
        }
    }

    fn user_key(&self, user: &str) -> u64 {
        self.user_keys.hash_one(user)
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Every change to the map is a single insert or remove, so a panic
        // elsewhere while the lock was held cannot leave it half-changed:
        // go on with it rather than fail every later request.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every session.
    pub fn end_all(&self) {
        self.sessions().clear();
    }

    /// Ends every session of `user` (disabled, or a new password); returns how many.
    pub fn end_user(&self, user: &str) -> usize {
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, s| s.user != user);
        before - sessions.len()
    }

    /// A fresh session of `user` (never one the client chose: no fixation); returns (id, csrf).
    pub fn create(&self, user: &str, role: Role) -> (String, String) {
        let id = random_token();
        let csrf = random_token();
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        let session = Session { csrf: csrf.clone(), expires: now + LIFETIME, user: user.to_string(), role };
        sessions.insert(id.clone(), session);
        (id, csrf)
    }

    /// The session with this id, if it exists and has not expired.
    pub fn get(&self, id: &str) -> Option<SignedIn> {
        let mut sessions = self.sessions();
        let session = sessions.get(id)?.clone();
        if session.expires <= Instant::now() {
            sessions.remove(id);
            return None;
        }
        Some(SignedIn { csrf: session.csrf, user: session.user, role: session.role })
    }

    pub fn remove(&self, id: &str) {
        self.sessions().remove(id);
    }

    /// Starts a sign-in attempt as `user` from `client`: charges its
    /// address's budget, the user's and everyone's as a failure, or
    /// `Err(retry after)` when any is spent (then nothing is charged). Follow
    /// with `succeeded` or `not_run`; a failed attempt needs nothing more.
    pub fn begin_attempt(&self, client: IpAddr, user: &str) -> Result<(), Duration> {
        let (address, user, now) = (address_key(client), self.user_key(user), Instant::now());
        self.failures.peek(address, now)?;
        self.failures_per_user.peek(user, now)?;
        self.failures_total.peek((), now)?;
        self.failures.charge(address, now);
        self.failures_per_user.charge(user, now);
        self.failures_total.charge((), now);
        Ok(())
    }

    /// The attempt could not run (no password worker was free): its charge is given back.
    pub fn not_run(&self, client: IpAddr, user: &str) {
        let now = Instant::now();
        self.failures.refund(address_key(client), now);
        self.failures_per_user.refund(self.user_key(user), now);
        self.failures_total.refund((), now);
    }

    /// `user` signed in from `client`: the failures of both are forgotten
    /// (they know the password) and the attempt is given back to everyone's budget.
    pub fn succeeded(&self, client: IpAddr, user: &str) {
        self.failures.forget(address_key(client));
        self.failures_per_user.forget(self.user_key(user));
        self.failures_total.refund((), Instant::now());
    }
}

/// Whether the CSRF token presented matches the session's (constant time).
pub fn csrf_matches(session: &SignedIn, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| p.len() == session.csrf.len() && bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// The session id from a `Cookie` header value.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == COOKIE).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_csrf() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create("admin", Role::Admin);
        let signed_in = sessions.get(&id).unwrap();
        assert_eq!((signed_in.user.as_str(), signed_in.role), ("admin", Role::Admin));
        assert!(csrf_matches(&signed_in, Some(&csrf)));
        assert!(!csrf_matches(&signed_in, None));
        assert!(!csrf_matches(&signed_in, Some("0")));
        assert_eq!(sessions.get("not-a-session"), None);
        sessions.remove(&id);
        assert_eq!(sessions.get(&id), None);
    }

    #[test]
    fn ending_a_users_sessions_spares_the_others() {
        // The password and user routes call `end_user` (tests/tests/e2e/access checks them end to end).
        let sessions = Sessions::default();
        let (id, _) = sessions.create("olga", Role::Operator);
        let (again, _) = sessions.create("olga", Role::Operator);
        let (other, _) = sessions.create("admin", Role::Admin);
        assert_eq!(sessions.end_user("olga"), 2);
        assert_eq!((sessions.get(&id), sessions.get(&again)), (None, None));
        assert!(sessions.get(&other).is_some());
        sessions.end_all();
        assert_eq!(sessions.get(&other), None);
        let (fresh, _) = sessions.create("olga", Role::Operator);
        assert!(sessions.get(&fresh).is_some(), "signing in again works");
    }

    #[test]
    fn a_panic_while_the_lock_is_held_does_not_fail_every_later_request() {
        let sessions = Arc::new(Sessions::default());
        let (id, _) = sessions.create("admin", Role::Admin);
        let holder = sessions.clone();
        let panicked = std::thread::spawn(move || {
            let _held = holder.sessions.lock().unwrap();
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(panicked.is_err() && sessions.sessions.is_poisoned());
        assert!(sessions.get(&id).is_some());
        let (fresh, _) = sessions.create("admin", Role::Admin);
        assert!(sessions.get(&fresh).is_some());
        sessions.remove(&fresh);
        assert_eq!(sessions.get(&fresh), None);
    }

    #[test]
    fn attempts_are_charged_when_they_start_per_address_and_in_total() {
        let sessions = Sessions::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..MAX_FAILURES {
            assert!(sessions.begin_attempt(a, &format!("u{i}")).is_ok(), "attempts in progress count at once");
        }
        let wait = sessions.begin_attempt(a, "fresh").unwrap_err();
        assert!(wait > Duration::from_secs(11) && wait <= Duration::from_secs(12), "one more per 12 s: {wait:?}");
        assert!(sessions.begin_attempt(b, "b").is_ok());
        sessions.not_run(b, "b");
        sessions.succeeded(a, "u0");
        assert!(sessions.begin_attempt(a, "u0").is_ok());
        sessions.succeeded(a, "u0");
        assert_eq!(MAX_FAILURES, crate::config::ApiConfig::default().auth_failure_burst);

        // Many addresses: everyone's budget runs out, and a refusal charges nothing.
        let mut refused = 0;
        for i in 0..100u8 {
            let client = IpAddr::from([198, 51, 100, i]);
            if sessions.begin_attempt(client, &format!("many{i}")).is_err() {
                refused += 1;
                assert!(sessions.failures.peek(address_key(client), Instant::now()).is_ok());
            }
        }
        assert_eq!(100 - refused, MAX_FAILURES_TOTAL as usize - 4, "a's four failures count in the total");
        assert_eq!(MAX_FAILURES_TOTAL, crate::config::ApiConfig::default().sign_in_failure_burst_total);
    }

    #[test]
    fn one_user_guessed_at_from_many_addresses_runs_out_of_its_own_budget() {
        let sessions = Sessions::default();
        for i in 0..MAX_FAILURES as u8 {
            assert!(sessions.begin_attempt(IpAddr::from([198, 51, 100, i]), "olga").is_ok());
        }
        let elsewhere = IpAddr::from([203, 0, 113, 9]);
        assert!(sessions.begin_attempt(elsewhere, "olga").is_err(), "olga's budget is spent from any address");
        assert!(sessions.begin_attempt(elsewhere, "admin").is_ok(), "another user is not held back");
        sessions.succeeded(elsewhere, "admin");
    }

    #[test]
    fn cookie_parsing() {
        assert_eq!(cookie_value("a=1; appliance_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("xappliance_session=abc"), None);
    }
}
