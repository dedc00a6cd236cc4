//! The figures of a session's inputs while it is in progress: what is on
//! air, the switches so far, and each connected input's meter (its own
//! units, bytes and rates, on air or not). The port is the only writer: a
//! unit costs the meter's atomic stores; connecting, leaving and switching
//! take a lock the API's readers share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use media::DropStats;

use crate::live::figures::{InputFigure, InputMeter};
use crate::state::{InputRole, OnAir};

/// One connected input's figures.
#[derive(Debug, Clone)]
struct Connected {
    role: InputRole,
    peer: SocketAddr,
    meter: Arc<InputMeter>,
    queue: Arc<DropStats>,
}

#[derive(Debug, Default)]
struct State {
    on_air: Option<OnAir>,
    switches: u32,
    inputs: Vec<Connected>,
}

/// The inputs of one session, as the API reads them.
#[derive(Debug, Default)]
pub struct InputMeters {
    state: Mutex<State>,
}

impl InputMeters {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `role` connected from `peer`; returns the meter its units are counted on.
    pub fn connected(&self, role: InputRole, peer: SocketAddr, queue: Arc<DropStats>) -> Arc<InputMeter> {
        let meter = Arc::new(InputMeter::new(Instant::now()));
        let mut state = self.state();
        state.inputs.retain(|i| i.role != role);
        state.inputs.push(Connected { role, peer, meter: meter.clone(), queue });
        state.inputs.sort_by_key(|i| i.role != InputRole::Primary);
        meter
    }

    pub fn disconnected(&self, role: InputRole) {
        self.state().inputs.retain(|i| i.role != role);
    }

    /// `on_air` went on air (`switched`: by a switch, not at the start).
    pub fn on_air(&self, on_air: OnAir, switched: bool) {
        let mut state = self.state();
        state.on_air = Some(on_air);
        state.switches += u32::from(switched);
    }

    /// Switches so far.
    pub fn switches(&self) -> u32 {
        self.state().switches
    }

    /// (what is on air, switches so far, each connected input now).
    pub fn figures(&self, now: Instant) -> (Option<OnAir>, u32, Vec<InputFigure>) {
        let state = self.state();
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let inputs = state
            .inputs
            .iter()
            .map(|i| {
                let rates = i.meter.rates(now);
                let (units, bytes) = i.meter.totals();
                InputFigure {
                    role: i.role,
                    on_air: state.on_air == Some(OnAir::input(i.role)),
                    peer: i.peer.to_string(),
                    bitrate_bps: rates.map(|r| r.bitrate_bps),
                    fps: rates.map(|r| round(r.fps)),
                    units,
                    bytes,
                    dropped_units: i.queue.dropped_units(),
                    srt: None,
                }
            })
            .collect();
        (state.on_air, state.switches, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::TrackKind;

    #[test]
    fn each_input_is_measured_on_its_own_and_the_one_on_air_is_marked() {
        let meters = InputMeters::default();
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let backup = meters.connected(InputRole::Backup, peer, Arc::default());
        let primary = meters.connected(InputRole::Primary, peer, Arc::default());
        meters.on_air(OnAir::Primary, false);
        primary.record(TrackKind::Video, 1000, Instant::now());
        backup.record(TrackKind::Video, 10, Instant::now());
        backup.record(TrackKind::Audio, 10, Instant::now());
        let (on_air, switches, inputs) = meters.figures(Instant::now());
        assert_eq!((on_air, switches), (Some(OnAir::Primary), 0));
        let shown: Vec<_> = inputs.iter().map(|i| (i.role, i.on_air, i.units, i.bytes)).collect();
        assert_eq!(shown, [(InputRole::Primary, true, 1, 1000), (InputRole::Backup, false, 2, 20)]);
        meters.on_air(OnAir::Backup, true);
        meters.disconnected(InputRole::Primary);
        let (on_air, switches, inputs) = meters.figures(Instant::now());
        assert_eq!((on_air, switches, inputs.len(), inputs[0].on_air), (Some(OnAir::Backup), 1, 1, true));
    }
}
