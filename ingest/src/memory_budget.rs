//! One byte budget shared by many connections (the unfinished messages of
//! every connection that has not published yet), and the account through
//! which one connection charges it. What an account holds is given back when
//! it is released or dropped, so a connection that ends any way returns it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes that may be held at once by all accounts together.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// The most ever held at once, for tests and reports.
    peak: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { limit, used: AtomicUsize::new(0), peak: AtomicUsize::new(0) })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// An empty account on this budget.
    pub fn account(self: &Arc<Self>) -> Account {
        Account { budget: self.clone(), held: 0 }
    }

    fn try_take(&self, bytes: usize) -> bool {
        let taken = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(bytes).filter(|&after| after <= self.limit)
        });
        match taken {
            Ok(before) => {
                self.peak.fetch_max(before + bytes, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What one connection holds of a `MemoryBudget`.
#[derive(Debug)]
pub(crate) struct Account {
    budget: Arc<MemoryBudget>,
    held: usize,
}

impl Account {
    /// Takes `bytes` more; `false` (nothing taken) when the budget has no room.
    pub fn charge(&mut self, bytes: usize) -> bool {
        if !self.budget.try_take(bytes) {
            return false;
        }
        self.held += bytes;
        true
    }

    /// Gives back up to `bytes` of what this account holds.
    pub fn release(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        self.held -= bytes;
        self.budget.give_back(bytes);
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_share_the_limit_and_give_back_on_drop() {
        let budget = MemoryBudget::new(100);
        assert_eq!(budget.limit(), 100);
        let mut a = budget.account();
        let mut b = budget.account();
        assert!(a.charge(60));
        assert!(!b.charge(41), "over the shared limit");
        assert!(b.charge(40));
        assert_eq!((budget.used(), budget.peak()), (100, 100));
        a.release(1000);
        assert_eq!(budget.used(), 40, "an account gives back only what it holds");
        assert!(a.charge(10));
        drop(b);
        assert_eq!(budget.used(), 10);
        drop(a);
        assert_eq!((budget.used(), budget.peak()), (0, 100));
    }
}
