//! Publish refusals logged without letting a scanner flood the journal: the
//! first refusal from a client address is logged at once; further ones from
//! it are counted and summarised in one line per interval (address, count,
//! kinds). An address with no refusal for a whole interval is forgotten. The
//! table holds at most `max_addresses`; refusals from addresses beyond it are
//! counted together in one line per interval.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client_address::ClientAddress;
use crate::handler::{Refusal, RefusalKind};

/// Client addresses tracked at once (each entry is a few dozen bytes).
pub(crate) const MAX_ADDRESSES: usize = 256;

/// Refusals by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally([u64; RefusalKind::ALL.len()]);

impl Tally {
    fn add(&mut self, kind: RefusalKind) {
        self.0[kind as usize] += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl fmt::Display for Tally {
    /// `kind=count` for every kind that occurred, e.g. `unknown_key=41 already_live=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for kind in RefusalKind::ALL {
            let count = self.0[kind as usize];
            if count > 0 {
                write!(f, "{sep}{}={count}", kind.name())?;
                sep = " ";
            }
        }
        Ok(())
    }
}

/// What `note` decided about one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    /// The first from its address lately: log it now.
    First,
    /// Counted for the address's summary.
    Counted,
    /// The table is full: counted with the other untracked addresses.
    Overflow,
}

/// One summary line: refusals counted since the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// `None` for addresses beyond the table.
    pub address: Option<ClientAddress>,
    pub tally: Tally,
}

#[derive(Debug)]
struct Entry {
    /// When the current interval of this address started.
    since: Instant,
    counted: Tally,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<ClientAddress, Entry>,
    overflow: Tally,
}

#[derive(Debug)]
pub(crate) struct RefusalLog {
    interval: Duration,
    max_addresses: usize,
    table: Mutex<Table>,
}

impl RefusalLog {
    pub fn new(interval: Duration, max_addresses: usize) -> Self {
        Self { interval, max_addresses, table: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a refusal from `peer`.
    pub fn note(&self, peer: SocketAddr, kind: RefusalKind, now: Instant) -> Noted {
        let address = ClientAddress::of(peer.ip());
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(&address) {
            entry.counted.add(kind);
            return Noted::Counted;
        }
        if table.entries.len() >= self.max_addresses {
            table.overflow.add(kind);
            return Noted::Overflow;
        }
        table.entries.insert(address, Entry { since: now, counted: Tally::default() });
        Noted::First
    }

    /// The summaries due at `now`: every address whose interval has passed
    /// with refusals counted (its next interval starts), and the untracked
    /// ones. Addresses whose interval passed quietly are forgotten.
    pub fn due(&self, now: Instant) -> Vec<Summary> {
        let mut table = self.lock();
        let mut due = Vec::new();
        table.entries.retain(|address, entry| {
            if now.duration_since(entry.since) < self.interval {
                return true;
            }
            if entry.counted.total() == 0 {
                return false;
            }
            due.push(Summary { address: Some(*address), tally: std::mem::take(&mut entry.counted) });
            entry.since = now;
            true
        });
        if table.overflow.total() > 0 {
            due.push(Summary { address: None, tally: std::mem::take(&mut table.overflow) });
        }
        due
    }

    /// Every count not yet summarised, whatever its age (at shutdown).
    fn drain(&self) -> Vec<Summary> {
        let mut table = self.lock();
        let mut left: Vec<Summary> = table
            .entries
            .drain()
            .filter(|(_, entry)| entry.counted.total() > 0)
            .map(|(address, entry)| Summary { address: Some(address), tally: entry.counted })
            .collect();
        if table.overflow.total() > 0 {
            left.push(Summary { address: None, tally: std::mem::take(&mut table.overflow) });
        }
        left
    }

    /// Notes a refusal and logs it if it is the first from its address lately.
    pub fn refused(&self, peer: SocketAddr, refusal: &Refusal) {
        if self.note(peer, refusal.kind, Instant::now()) == Noted::First {
            tracing::warn!(
                %peer,
                kind = %refusal.kind.name(),
                reason = %refusal.reason,
                "publish refused (further refusals from this address are counted, one line per {:?})",
                self.interval
            );
        }
    }

    /// Logs the summaries due now.
    pub fn report(&self) {
        self.log(self.due(Instant::now()));
    }

    /// Logs every count left (the server is stopping).
    pub fn report_all(&self) {
        self.log(self.drain());
    }

    fn log(&self, summaries: Vec<Summary>) {
        for Summary { address, tally } in summaries {
            let refusals = tally.total();
            match address {
                Some(address) => {
                    tracing::warn!(%address, refusals, kinds = %tally, "publish refusals from one address since its last line")
                }
                None => tracing::warn!(
                    refusals,
                    kinds = %tally,
                    tracked = self.max_addresses,
                    "publish refusals from addresses beyond the tracked ones since the last such line"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], port))
    }

    #[test]
    fn first_logged_rest_counted_per_interval() {
        let log = RefusalLog::new(Duration::from_secs(60), 8);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(log.note(peer(1, 1000), RefusalKind::UnknownKey, t0), Noted::First);
        for port in 0..40 {
            assert_eq!(log.note(peer(1, port), RefusalKind::UnknownKey, t0 + s(1)), Noted::Counted);
        }
        assert_eq!(log.note(peer(1, 9), RefusalKind::AlreadyLive, t0 + s(2)), Noted::Counted);
        assert_eq!(log.note(peer(2, 9), RefusalKind::UnknownKey, t0 + s(3)), Noted::First, "another address");
        assert_eq!(log.due(t0 + s(59)), [], "nothing before the interval");

        let due = log.due(t0 + s(60));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].address, Some(ClientAddress::of(peer(1, 0).ip())));
        assert_eq!(due[0].tally.to_string(), "unknown_key=40 already_live=1");
        assert_eq!(due[0].tally.total(), 41);

        // Address 1 keeps going: counted into the next interval, never logged singly.
        assert_eq!(log.note(peer(1, 1), RefusalKind::Unavailable, t0 + s(70)), Noted::Counted);
        // Address 2 had nothing after its first: forgotten once its interval passed.
        assert_eq!(log.due(t0 + s(119)), []);
        assert_eq!(log.note(peer(2, 1), RefusalKind::UnknownKey, t0 + s(119)), Noted::First);
        let due = log.due(t0 + s(120));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].tally.to_string(), "unavailable=1");
        // A quiet interval forgets address 1 too.
        assert_eq!(log.due(t0 + s(180)), []);
        assert_eq!(log.note(peer(1, 1), RefusalKind::UnknownKey, t0 + s(181)), Noted::First);
    }

    #[test]
    fn the_table_is_bounded() {
        let log = RefusalLog::new(Duration::from_secs(60), 4);
        let t0 = Instant::now();
        let noted: Vec<Noted> = (0..200u8).map(|last| log.note(peer(last, 5), RefusalKind::UnknownKey, t0)).collect();
        assert_eq!(noted.iter().filter(|n| **n == Noted::First).count(), 4);
        assert_eq!(noted.iter().filter(|n| **n == Noted::Overflow).count(), 196);
        assert_eq!(log.lock().entries.len(), 4);
        let due = log.due(t0 + Duration::from_secs(60));
        assert_eq!(due, [Summary { address: None, tally: Tally([196, 0, 0]) }]);
        assert!(log.lock().entries.is_empty(), "quiet addresses are forgotten, making room");
        assert_eq!(log.note(peer(250, 5), RefusalKind::UnknownKey, t0 + Duration::from_secs(61)), Noted::First);
    }

    #[test]
    fn drain_reports_what_is_left() {
        let log = RefusalLog::new(Duration::from_secs(60), 1);
        let t0 = Instant::now();
        log.note(peer(1, 1), RefusalKind::UnknownKey, t0);
        log.note(peer(1, 2), RefusalKind::UnknownKey, t0);
        log.note(peer(2, 2), RefusalKind::AlreadyLive, t0);
        let left = log.drain();
        assert_eq!(left.len(), 2);
        assert_eq!(left.iter().map(|s| s.tally.total()).sum::<u64>(), 2);
        assert!(log.drain().is_empty());
    }
}
