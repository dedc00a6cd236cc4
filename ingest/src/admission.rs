//! Who may hold a connection: at most `total` connections, of which at most
//! `unauthenticated` have not yet published with a valid key, and at most
//! `per_address` of those from one client address (IPv6 by /64). A publish
//! the handler grants moves its connection out of the unauthenticated budget,
//! so connections that never authenticate cannot take the slots of those
//! that did.
//!
//! When the unauthenticated budget (or the whole server) is full, a newcomer
//! displaces the oldest unauthenticated connection of the most represented
//! address, as long as that address holds at least two more than the
//! newcomer's: a flood from a few addresses then cannot lock out a publisher
//! from another one, and floods from several addresses are evened out rather
//! than served first come. Connections that authenticated are never displaced.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::client_address::ClientAddress;

/// The three caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub total: usize,
    pub unauthenticated: usize,
    pub per_address: usize,
}

/// Why a new connection was closed on accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Every slot is taken and none could be freed.
    Full,
    /// The unauthenticated budget is full and spread too evenly to displace anyone.
    Unauthenticated,
    /// This client address already holds its share of unauthenticated connections.
    Address,
}

#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    state: Mutex<State>,
    evicted: AtomicU64,
    /// Rejections so far by `Rejection as usize`.
    rejected: [AtomicU64; 3],
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Every admitted connection by id; ids grow, so iteration goes oldest first.
    conns: BTreeMap<u64, Conn>,
    pending: usize,
    pending_per_address: HashMap<ClientAddress, usize>,
}

#[derive(Debug)]
struct Conn {
    address: ClientAddress,
    /// Present while the connection has not authenticated: sending on it displaces the connection.
    evict: Option<oneshot::Sender<()>>,
}

impl State {
    fn unpend(&mut self, address: ClientAddress) {
        self.pending -= 1;
        if let Some(count) = self.pending_per_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.pending_per_address.remove(&address);
            }
        }
    }

    /// The oldest unauthenticated connection of the most represented address,
    /// if that address holds at least two more than `mine`.
    fn victim(&self, mine: usize) -> Option<u64> {
        let most = self.pending_per_address.values().copied().max()?;
        if most < mine + 2 {
            return None;
        }
        self.conns
            .iter()
            .find(|(_, c)| c.evict.is_some() && self.pending_per_address.get(&c.address) == Some(&most))
            .map(|(&id, _)| id)
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self { limits, state: Mutex::default(), evicted: AtomicU64::new(0), rejected: Default::default() })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement that could panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip` as unauthenticated, displacing another
    /// one if that is fair (see the module comment), or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Ticket, Eviction), Rejection> {
        let admitted = self.try_admit(ip);
        if let Err(rejection) = admitted {
            self.rejected[rejection as usize].fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Ticket, Eviction), Rejection> {
        let address = ClientAddress::of(ip);
        let mut state = self.lock();
        let mine = state.pending_per_address.get(&address).copied().unwrap_or(0);
        if mine >= self.limits.per_address {
            return Err(Rejection::Address);
        }
        let full = state.conns.len() >= self.limits.total;
        if full || state.pending >= self.limits.unauthenticated {
            let why = if full { Rejection::Full } else { Rejection::Unauthenticated };
            let victim = state.victim(mine).ok_or(why)?;
            let conn = state.conns.remove(&victim).expect("the victim is admitted");
            state.unpend(conn.address);
            if let Some(evict) = conn.evict {
                let _ = evict.send(());
            }
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = state.next_id;
        state.next_id += 1;
        let (evict, evicted) = oneshot::channel();
        state.conns.insert(id, Conn { address, evict: Some(evict) });
        state.pending += 1;
        *state.pending_per_address.entry(address).or_default() += 1;
        Ok((Ticket { admission: self.clone(), id }, Eviction(evicted)))
    }

    /// Connections admitted and not yet ended (or displaced).
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// Of those, the ones that have not authenticated.
    pub fn unauthenticated(&self) -> usize {
        self.lock().pending
    }

    /// Connections displaced so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Connections closed on accept so far for `why`.
    pub fn rejected(&self, why: Rejection) -> u64 {
        self.rejected[why as usize].load(Ordering::Relaxed)
    }
}

/// One admitted connection's hold on its slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
}

impl Ticket {
    /// The connection published with a valid key: it leaves the
    /// unauthenticated budget and can no longer be displaced.
    pub fn authenticate(&self) {
        let mut state = self.admission.lock();
        let Some(conn) = state.conns.get_mut(&self.id) else { return };
        if conn.evict.take().is_some() {
            let address = conn.address;
            state.unpend(address);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        // Absent when the connection was displaced: its counts went with it.
        if let Some(conn) = state.conns.remove(&self.id)
            && conn.evict.is_some()
        {
            state.unpend(conn.address);
        }
    }
}

/// Resolves when the connection is displaced; never once it authenticated.
#[derive(Debug)]
pub(crate) struct Eviction(oneshot::Receiver<()>);

impl Eviction {
    pub async fn wait(self) {
        if self.0.await.is_ok() {
            return;
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn fired(eviction: &mut Eviction) -> bool {
        let poll = Pin::new(&mut eviction.0).poll(&mut Context::from_waker(Waker::noop()));
        matches!(poll, Poll::Ready(Ok(())))
    }

    #[test]
    fn caps_and_displacement() {
        let limits = Limits { total: 6, unauthenticated: 4, per_address: 3 };
        let admission = Admission::new(limits);
        // Address 2 takes its three, the fourth is refused by the per-address cap.
        let mut flood: Vec<_> = (0..3).map(|_| admission.admit(ip(2)).unwrap()).collect();
        assert_eq!(admission.admit(ip(2)).unwrap_err(), Rejection::Address);
        // Address 3 takes the last unauthenticated slot.
        let (other, _) = admission.admit(ip(3)).unwrap();
        assert_eq!((admission.open(), admission.unauthenticated()), (4, 4));
        // Full: a publisher from address 1 displaces address 2's oldest (3 >= 0 + 2).
        let (publisher, _) = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.evicted(), 1);
        let (_, mut oldest) = flood.remove(0);
        assert!(fired(&mut oldest), "the oldest of the most represented address goes");
        assert!(flood.iter_mut().all(|(_, e)| !fired(e)));
        // Now 2 holds two, 3 and 1 one each: address 3 may not displace anyone (2 < 1 + 2).
        assert_eq!(admission.admit(ip(3)).unwrap_err(), Rejection::Unauthenticated);
        // The publisher authenticates: it leaves the budget, which has room again.
        publisher.authenticate();
        assert_eq!((admission.open(), admission.unauthenticated()), (4, 3));
        let (late, _) = admission.admit(ip(4)).unwrap();
        let rejected = [Rejection::Full, Rejection::Unauthenticated, Rejection::Address].map(|r| admission.rejected(r));
        assert_eq!(rejected, [0, 1, 1]);
        assert_eq!((admission.open(), admission.unauthenticated()), (5, 4));
        drop(other);
        drop(late);
        assert_eq!((admission.open(), admission.unauthenticated()), (3, 2));
        publisher.authenticate();
        drop(publisher);
        assert_eq!((admission.open(), admission.unauthenticated()), (2, 2));
    }

    #[test]
    fn authenticated_connections_are_never_displaced() {
        let admission = Admission::new(Limits { total: 2, unauthenticated: 2, per_address: 2 });
        let (a, mut ea) = admission.admit(ip(2)).unwrap();
        let (b, mut eb) = admission.admit(ip(2)).unwrap();
        a.authenticate();
        b.authenticate();
        assert_eq!(admission.admit(ip(1)).unwrap_err(), Rejection::Full);
        assert!(!fired(&mut ea) && !fired(&mut eb));
        drop(a);
        let (_c, _) = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.admit(ip(3)).unwrap_err(), Rejection::Full, "one unauthenticated each is even");
        drop(b);
        assert_eq!(admission.open(), 1);
    }

    #[test]
    fn a_displaced_ticket_frees_nothing_twice() {
        let admission = Admission::new(Limits { total: 8, unauthenticated: 2, per_address: 2 });
        let (old, _) = admission.admit(ip(2)).unwrap();
        let (_young, _) = admission.admit(ip(2)).unwrap();
        let (_newcomer, _) = admission.admit(ip(1)).unwrap();
        assert_eq!((admission.open(), admission.unauthenticated()), (2, 2));
        drop(old);
        assert_eq!((admission.open(), admission.unauthenticated()), (2, 2));
        assert_eq!(admission.state.lock().unwrap().pending_per_address.len(), 2);
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let admission = Admission::new(Limits { total: 8, unauthenticated: 8, per_address: 2 });
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = admission.admit(v6("2001:db8::1")).unwrap();
        let _b = admission.admit(v6("2001:db8::2:3")).unwrap();
        assert_eq!(admission.admit(v6("2001:db8::ffff")).unwrap_err(), Rejection::Address);
        assert!(admission.admit(v6("2001:db8:0:1::1")).is_ok());
    }
}
