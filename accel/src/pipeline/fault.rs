//! Fault injection into a running pipeline, for tests and failover drills:
//! a flag in memory that makes one rung encoder fail as a real encoder error
//! or device loss would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// A failure to inject into a running pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The encoder returns an error (`AccelError::Encode`).
    Encoder,
    /// The device is lost (`AccelError::DeviceLost`; the supervisor takes a hardware device out of service).
    DeviceLost,
}

/// Fault injection for tests and drills, harmless in production: it is a
/// flag in memory that nothing outside the process can set, and tripping it
/// makes the first rung encoder to take a frame fail exactly as a real
/// encoder error or device loss would, once, handing the ladder back for a
/// move. Clones share the flag, so it survives `Pipeline::resume`.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<AtomicU8>);

impl FaultSwitch {
    const NONE: u8 = 0;
    const ENCODER: u8 = 1;
    const DEVICE_LOST: u8 = 2;

    /// Arms `fault`: the next encoded frame of any rung fails with it.
    pub fn trip(&self, fault: Fault) {
        let code = match fault {
            Fault::Encoder => Self::ENCODER,
            Fault::DeviceLost => Self::DEVICE_LOST,
        };
        self.0.store(code, Ordering::SeqCst);
    }

    /// Whether a fault is armed and not yet taken by an encoder.
    pub fn is_armed(&self) -> bool {
        self.0.load(Ordering::SeqCst) != Self::NONE
    }

    /// Takes the armed fault (one rung takes it; the others carry on).
    pub(super) fn take(&self) -> Option<Fault> {
        match self.0.swap(Self::NONE, Ordering::SeqCst) {
            Self::ENCODER => Some(Fault::Encoder),
            Self::DEVICE_LOST => Some(Fault::DeviceLost),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tripped_fault_is_taken_once_by_one_clone() {
        let switch = FaultSwitch::default();
        let rung = switch.clone();
        assert_eq!(rung.take(), None);
        switch.trip(Fault::DeviceLost);
        assert!(switch.is_armed());
        assert_eq!(rung.take(), Some(Fault::DeviceLost));
        assert!(!switch.is_armed());
        assert_eq!(switch.take(), None, "once");
        switch.trip(Fault::Encoder);
        assert_eq!(switch.take(), Some(Fault::Encoder));
    }
}
