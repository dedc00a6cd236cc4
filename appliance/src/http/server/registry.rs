//! Every open HTTP connection, and the caps on them: in total, and per
//! client address (IPv6 by /64; the operator's trusted reverse proxies are
//! exempt, they carry many clients). A newcomer over a cap sheds the
//! connection that has been idle longest (of its own address, for the
//! per-address cap): a connection whose request is in progress is never
//! shed, so clients that hold sockets open without asking anything (or
//! dribble a header) make room for the health check, the console and
//! players instead of locking them out. Only when every connection in the
//! way is busy is the newcomer refused.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

use super::activity::Activity;
use crate::http::access::limiter::address_key;
use crate::http::client_address::TrustedProxies;

/// The caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: usize,
    pub per_address: usize,
}

/// Why a newcomer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every connection is busy.
    Full,
    /// Every connection of this address is busy.
    Address,
}

/// The open connections.
#[derive(Debug)]
pub struct Registry {
    caps: Caps,
    exempt: TrustedProxies,
    table: Mutex<Table>,
    shed: AtomicU64,
    refused: AtomicU64,
    accept_failures: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: BTreeMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    /// The address it counts against; none when exempt from the per-address cap.
    address: Option<IpAddr>,
    activity: Arc<Activity>,
    shed: oneshot::Sender<()>,
}

impl Table {
    /// The connection idle longest among those `of` selects.
    fn longest_idle(&self, of: impl Fn(&Entry) -> bool) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, e)| of(e) && e.activity.is_idle())
            .min_by_key(|(_, e)| e.activity.idle_since())
            .map(|(id, _)| *id)
    }

    /// Forgets a connection; true if it was still here.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(address) = entry.address
            && let Some(count) = self.per_address.get_mut(&address)
        {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&address);
            }
        }
        Some(entry)
    }
}

/// An admitted connection: its activity, the signal to close when shed,
/// and its place in the registry.
#[derive(Debug)]
pub struct Admitted {
    pub activity: Arc<Activity>,
    /// Resolves when the registry sheds this connection to make room.
    pub shed: oneshot::Receiver<()>,
    pub ticket: Ticket,
}

/// A connection's place in the registry: dropping it leaves.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.table().remove(self.id);
    }
}

impl Registry {
    pub fn new(caps: Caps, exempt: TrustedProxies) -> Registry {
        Registry {
            caps,
            exempt,
            table: Mutex::default(),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            accept_failures: AtomicU64::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Every change is a few map operations that cannot panic halfway.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `peer` accepted at `now`, shedding the idle
    /// connection in its way, or refuses it when every one in its way is busy.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, now: Instant) -> Result<Admitted, Refused> {
        let address = (!self.exempt.trusts_peer(peer)).then(|| address_key(peer));
        let mut table = self.table();
        if let Some(address) = address
            && table.per_address.get(&address).copied().unwrap_or(0) >= self.caps.per_address
        {
            let Some(victim) = table.longest_idle(|e| e.address == Some(address)) else {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Address);
            };
            self.shed(&mut table, victim);
        }
        if table.open.len() >= self.caps.total {
            let Some(victim) = table.longest_idle(|_| true) else {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Full);
            };
            self.shed(&mut table, victim);
        }
        let id = table.next_id;
        table.next_id += 1;
        let activity = Arc::new(Activity::new(now));
        let (shed, on_shed) = oneshot::channel();
        table.open.insert(id, Entry { address, activity: activity.clone(), shed });
        if let Some(address) = address {
            *table.per_address.entry(address).or_default() += 1;
        }
        Ok(Admitted { activity, shed: on_shed, ticket: Ticket { id, registry: self.clone() } })
    }

    fn shed(&self, table: &mut Table, id: u64) {
        if let Some(entry) = table.remove(id) {
            let _ = entry.shed.send(());
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sheds the connection idle longest, if any (the process ran out of
    /// file descriptors: one is freed for the next client).
    pub fn shed_longest_idle(&self) -> bool {
        let mut table = self.table();
        let Some(victim) = table.longest_idle(|_| true) else { return false };
        self.shed(&mut table, victim);
        true
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().open.len()
    }

    /// Connections open now with no request in progress.
    pub fn idle(&self) -> usize {
        self.table().open.values().filter(|e| e.activity.is_idle()).count()
    }

    /// Connections shed to make room, so far.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Connections refused because every one in their way was busy, so far.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts a failure of the listener's `accept` (e.g. out of file descriptors).
    pub fn note_accept_failure(&self) {
        self.accept_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Failures of the listener's `accept` so far.
    pub fn accept_failure_count(&self) -> u64 {
        self.accept_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn registry(total: usize, per_address: usize) -> Arc<Registry> {
        let proxies = TrustedProxies::parse(&["10.0.0.1".into()]).unwrap();
        Arc::new(Registry::new(Caps { total, per_address }, proxies))
    }

    #[test]
    fn a_newcomer_over_the_address_cap_sheds_that_addresss_longest_idle() {
        let registry = registry(100, 2);
        let t0 = Instant::now();
        let mut first = registry.admit(ip("192.0.2.1"), t0).unwrap();
        let second = registry.admit(ip("192.0.2.1"), t0 + Duration::from_secs(1)).unwrap();
        let other = registry.admit(ip("192.0.2.2"), t0).unwrap();
        let third = registry.admit(ip("192.0.2.1"), t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(first.shed.try_recv(), Ok(()), "the oldest idle of that address goes");
        assert_eq!((registry.open(), registry.shed_count()), (3, 1));
        // Busy connections are never shed: with both busy, the next is refused.
        let _busy = (second.activity.begin_request(), third.activity.begin_request());
        assert_eq!(registry.admit(ip("192.0.2.1"), t0).unwrap_err(), Refused::Address);
        assert_eq!(registry.refused_count(), 1);
        drop(first);
        assert_eq!(registry.open(), 3, "a shed connection that ends is not counted twice");
        drop(other);
        assert_eq!(registry.open(), 2);
    }

    #[test]
    fn a_newcomer_over_the_total_cap_sheds_the_longest_idle_of_any_address() {
        let registry = registry(3, 3);
        let t0 = Instant::now();
        let busy = registry.admit(ip("192.0.2.1"), t0).unwrap();
        let _request = busy.activity.begin_request();
        let mut idle_old = registry.admit(ip("192.0.2.2"), t0 + Duration::from_secs(1)).unwrap();
        let mut idle_new = registry.admit(ip("192.0.2.3"), t0 + Duration::from_secs(2)).unwrap();
        let mut newcomer = registry.admit(ip("2001:db8::1"), t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(idle_old.shed.try_recv(), Ok(()));
        assert!(idle_new.shed.try_recv().is_err() && newcomer.shed.try_recv().is_err());
        assert!(registry.shed_longest_idle());
        assert_eq!(idle_new.shed.try_recv(), Ok(()), "out of file descriptors: the longest idle goes");
        let _second_request = newcomer.activity.begin_request();
        assert!(!registry.shed_longest_idle(), "nothing idle is left");
        let _filler = registry.admit(ip("192.0.2.9"), t0).unwrap();
        let _second_request_filler = _filler.activity.begin_request();
        assert_eq!(registry.admit(ip("192.0.2.4"), t0).unwrap_err(), Refused::Full);
    }

    #[test]
    fn trusted_proxies_are_exempt_from_the_address_cap_and_ipv6_counts_by_its_64() {
        let registry = registry(100, 1);
        let t0 = Instant::now();
        let proxied: Vec<_> = (0..5).map(|_| registry.admit(ip("10.0.0.1"), t0).unwrap()).collect();
        let mut a = registry.admit(ip("2001:db8:1:2::1"), t0).unwrap();
        let _b = registry.admit(ip("2001:db8:1:2::2"), t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(a.shed.try_recv(), Ok(()), "one /64 is one address");
        let _c = registry.admit(ip("2001:db8:1:3::1"), t0).unwrap();
        assert_eq!(registry.open(), 5 + 2);
        drop(proxied);
        assert_eq!(registry.open(), 2);
    }
}
