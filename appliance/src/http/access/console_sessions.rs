//! Signed-in console sessions, kept in memory (a restart signs everyone out,
//! which is what an appliance reboot should do): a random 256-bit id in an
//! HttpOnly cookie, a CSRF token that every mutation must echo in
//! `X-CSRF-Token`, an absolute expiry. A new admin password (set through the
//! API, which the CLI uses while the appliance runs) ends every session. Also the per-address limit on
//! failed sign-ins: the API's failed-authentication limiter
//! (`api::rate_limit`), so wrong passwords and invalid API tokens from one
//! address draw on one budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use subtle::ConstantTimeEq;

use super::limiter::{FailureLimiter, Quota, address_key};

/// The session cookie's name.
pub const COOKIE: &str = "appliance_session";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed authentications allowed at once per client address by default
/// (`api.auth_failure_burst`); then `api.auth_failures_per_minute`.
pub const MAX_FAILURES: u32 = 5;
/// Sessions kept at most (the oldest go first).
const MAX_SESSIONS: usize = 256;

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// Every signed-in session and the sign-in failure budgets.
#[derive(Debug)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Arc<FailureLimiter>,
}

/// What a valid session cookie gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub csrf: String,
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Default for Sessions {
    /// Sessions with a failure limiter of their own, at the default quota.
    fn default() -> Self {
        Sessions::new(Arc::new(FailureLimiter::new(Quota::per_minute(MAX_FAILURES, MAX_FAILURES))))
    }
}

impl Sessions {
    /// No sessions yet; failed sign-ins are charged to `failures`.
    pub fn new(failures: Arc<FailureLimiter>) -> Sessions {
        Sessions { sessions: Mutex::default(), failures }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Every change to the map is a single insert or remove, so a panic
        // elsewhere while the lock was held cannot leave it half-changed:
        // go on with it rather than fail every later request.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every session (the admin password changed).
    pub fn end_all(&self) {
        self.sessions().clear();
    }

    /// A fresh session (never one the client chose: no fixation); returns (id, csrf).
    pub fn create(&self) -> (String, String) {
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
        sessions.insert(id.clone(), Session { csrf: csrf.clone(), expires: now + LIFETIME });
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
        Some(SignedIn { csrf: session.csrf })
    }

    pub fn remove(&self, id: &str) {
        self.sessions().remove(id);
    }

    /// Whether `client` may try to sign in now; `Err(retry after)` when it failed too often.
    pub fn may_try(&self, client: IpAddr) -> Result<(), Duration> {
        self.failures.peek(address_key(client), Instant::now())
    }

    pub fn failed(&self, client: IpAddr) {
        self.failures.charge(address_key(client), Instant::now());
    }

    /// The admin signed in from `client`: its failures are forgotten (it knows the password).
    pub fn succeeded(&self, client: IpAddr) {
        self.failures.forget(address_key(client));
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
        let (id, csrf) = sessions.create();
        let signed_in = sessions.get(&id).unwrap();
        assert!(csrf_matches(&signed_in, Some(&csrf)));
        assert!(!csrf_matches(&signed_in, None));
        assert!(!csrf_matches(&signed_in, Some("0")));
        assert_eq!(sessions.get("not-a-session"), None);
        sessions.remove(&id);
        assert_eq!(sessions.get(&id), None);
    }

    #[test]
    fn a_new_password_ends_every_session() {
        // The password route calls `end_all` (tests/control_plane checks the route end to end).
        let sessions = Sessions::default();
        let (id, _) = sessions.create();
        let (other, _) = sessions.create();
        assert!(sessions.get(&id).is_some());
        sessions.end_all();
        assert_eq!((sessions.get(&id), sessions.get(&other)), (None, None));
        let (fresh, _) = sessions.create();
        assert!(sessions.get(&fresh).is_some(), "signing in again works");
    }

    #[test]
    fn a_panic_while_the_lock_is_held_does_not_fail_every_later_request() {
        let sessions = Arc::new(Sessions::default());
        let (id, _) = sessions.create();
        let holder = sessions.clone();
        let panicked = std::thread::spawn(move || {
            let _held = holder.sessions.lock().unwrap();
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(panicked.is_err() && sessions.sessions.is_poisoned());
        assert!(sessions.get(&id).is_some());
        let (fresh, _) = sessions.create();
        assert!(sessions.get(&fresh).is_some());
        sessions.remove(&fresh);
        assert_eq!(sessions.get(&fresh), None);
    }

    #[test]
    fn failures_are_limited_per_address() {
        let sessions = Sessions::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(sessions.may_try(a).is_ok());
            sessions.failed(a);
        }
        let wait = sessions.may_try(a).unwrap_err();
        assert!(wait > Duration::from_secs(11) && wait <= Duration::from_secs(12), "one more per 12 s: {wait:?}");
        assert!(sessions.may_try(b).is_ok());
        sessions.succeeded(a);
        assert!(sessions.may_try(a).is_ok());
        assert_eq!(MAX_FAILURES, crate::config::ApiConfig::default().auth_failure_burst);
    }

    #[test]
    fn cookie_parsing() {
        assert_eq!(cookie_value("a=1; appliance_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("xappliance_session=abc"), None);
    }
}
