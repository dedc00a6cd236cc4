//! Encoder slot accounting: each device's capacity (sessions and MPix/s, with
//! per-backend defaults that `appliance bench transcode` can calibrate and
//! persist in a small file in the data directory) and the leases held on it.
//! A `Lease` gives its capacity back when dropped; it is taken for the
//! nominal demand at publish time and re-let for the real source's demand
//! once the first video announcement tells it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use media::{EncoderPolicy, VideoCodec};
use serde::{Deserialize, Serialize};

use crate::device::{Backend, DeviceId};
use crate::error::AccelError;
use crate::scheduler::{Demand, DeviceState, Load, Placement, place};

/// The calibration file in the data directory.
pub const CALIBRATION_FILE: &str = "accel-capacity.json";

/// Software pixel budget per CPU core when not calibrated: about half of what
/// x264 `veryfast` sustains per core on the development machines, leaving room
/// for decoding, packaging and the origin.
pub const SOFTWARE_MPIX_PER_CORE: f64 = 35.0;

/// Default capacity of a device of `backend` (`cores` for the CPU; `session_limit` from the probe when known).
pub fn default_capacity(backend: Backend, cores: usize, session_limit: Option<u32>) -> Load {
    match backend {
        Backend::Software => Load::new(16 * cores.max(1) as u32, SOFTWARE_MPIX_PER_CORE * cores.max(1) as f64),
        // An NVENC engine does roughly 1080p at 600+ fps with p3; a conservative share of that.
        Backend::Nvenc => Load::new(session_limit.unwrap_or(32), 600.0),
        Backend::Qsv | Backend::Vaapi => Load::new(session_limit.unwrap_or(16), 400.0),
    }
}

/// Measured capacities by device id, as persisted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub devices: BTreeMap<DeviceId, Load>,
}

impl Calibration {
    /// Reads the file in `data_dir`; a missing file is an empty calibration.
    pub fn load(data_dir: &Path) -> Result<Calibration, AccelError> {
        let path = data_dir.join(CALIBRATION_FILE);
        let fail = |reason: String| AccelError::File { path: path.display().to_string(), reason };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Calibration::default()),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn save(&self, data_dir: &Path) -> Result<PathBuf, AccelError> {
        let path = data_dir.join(CALIBRATION_FILE);
        let fail = |reason: String| AccelError::File { path: path.display().to_string(), reason };
        std::fs::create_dir_all(data_dir).map_err(|e| fail(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&tmp, json).map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| fail(e.to_string()))?;
        Ok(path)
    }
}

/// A device the pool schedules onto.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    pub id: DeviceId,
    pub backend: Backend,
    pub codecs: Vec<VideoCodec>,
    pub capacity: Load,
}

#[derive(Debug)]
struct PoolState {
    devices: Vec<DeviceState>,
    /// The probe's reasons for hardware that is absent.
    unavailable: Vec<String>,
}

/// Every device's capacity and what is leased on it.
#[derive(Debug, Clone)]
pub struct SlotPool {
    state: Arc<Mutex<PoolState>>,
}

/// Capacity held for one session's ladder; given back on drop.
#[derive(Debug)]
pub struct Lease {
    state: Arc<Mutex<PoolState>>,
    placement: Placement,
}

impl Lease {
    pub fn device(&self) -> &DeviceId {
        &self.placement.device
    }

    pub fn backend(&self) -> Backend {
        self.placement.backend
    }

    pub fn load(&self) -> Load {
        self.placement.load
    }

    /// Why hardware was not used when `prefer-hardware` fell back to the CPU.
    pub fn fallback(&self) -> Option<&str> {
        self.placement.fallback.as_deref()
    }

    /// Places the ladder again for `demand` under `policy` as if this lease
    /// had been given back first: it grows or shrinks where it is, moves to
    /// the device that now has the most headroom, falls back to the CPU
    /// (`fallback` says why), or is refused, in which case the lease is left
    /// as it was. For the real source's demand before the pipeline starts,
    /// and for a move after a failure (mark the failed device first).
    pub fn relet(&mut self, demand: &Demand, policy: EncoderPolicy) -> Result<(), AccelError> {
        let mut state = lock(&self.state);
        let old = self.placement.load;
        if let Some(device) = state.devices.iter_mut().find(|d| d.id == self.placement.device) {
            device.used = device.used.minus(old);
        }
        let placed = place(&state.devices, demand, policy, &state.unavailable);
        let (device, load) = match &placed {
            Ok(p) => (p.device.clone(), p.load),
            Err(_) => (self.placement.device.clone(), old),
        };
        if let Some(d) = state.devices.iter_mut().find(|d| d.id == device) {
            d.used = d.used.plus(load);
        }
        drop(state);
        self.placement = placed.map_err(AccelError::NoCapacity)?;
        Ok(())
    }

    /// Counts `demand` on the device the ladder runs on (a running pipeline
    /// cannot move without a restart), even beyond its capacity, so later
    /// leases see the truth. Returns why it does not fit, when it does not.
    pub fn resize(&mut self, demand: &Demand) -> Option<String> {
        let mut state = lock(&self.state);
        let device = state.devices.iter_mut().find(|d| d.id == self.placement.device)?;
        device.used = device.used.minus(self.placement.load);
        let misfit = device.misfit(demand);
        let load = demand.load_on(device.backend);
        device.used = device.used.plus(load);
        self.placement.load = load;
        misfit
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if let Some(device) = state.devices.iter_mut().find(|d| d.id == self.placement.device) {
            device.used = device.used.minus(self.placement.load);
        }
    }
}

fn lock(state: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// One device's capacity and use, for status pages and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceUsage {
    pub id: DeviceId,
    pub backend: Backend,
    pub capacity: Load,
    pub used: Load,
    pub healthy: bool,
}

impl SlotPool {
    /// The pool of every available backend in `report`, with calibrated
    /// capacities where `calibration` has them and per-backend defaults otherwise.
    pub fn from_probe(report: &crate::probe::ProbeReport, calibration: &Calibration) -> Self {
        let devices = report
            .backends
            .iter()
            .filter_map(|b| match &b.status {
                crate::probe::ProbeStatus::Available { encoders, session_limit, .. } => Some(DeviceSpec {
                    id: b.device.clone(),
                    backend: b.backend,
                    codecs: encoders.clone(),
                    capacity: calibration
                        .devices
                        .get(&b.device)
                        .copied()
                        .unwrap_or_else(|| default_capacity(b.backend, report.cpu_cores, *session_limit)),
                }),
                crate::probe::ProbeStatus::Unavailable { .. } => None,
            })
            .collect();
        Self::new(devices, report.unavailable_reasons())
    }

    pub fn new(devices: Vec<DeviceSpec>, unavailable: Vec<String>) -> Self {
        let devices = devices
            .into_iter()
            .map(|d| DeviceState {
                id: d.id,
                backend: d.backend,
                codecs: d.codecs,
                capacity: d.capacity,
                used: Load::default(),
                healthy: true,
            })
            .collect();
        Self { state: Arc::new(Mutex::new(PoolState { devices, unavailable })) }
    }

    /// Leases capacity for a whole ladder under `policy`, or says precisely why not.
    pub fn lease(&self, demand: &Demand, policy: EncoderPolicy) -> Result<Lease, AccelError> {
        let mut state = lock(&self.state);
        let placement = place(&state.devices, demand, policy, &state.unavailable).map_err(AccelError::NoCapacity)?;
        if let Some(device) = state.devices.iter_mut().find(|d| d.id == placement.device) {
            device.used = device.used.plus(placement.load);
        }
        drop(state);
        Ok(Lease { state: self.state.clone(), placement })
    }

    /// Takes a device out of service after a failure (until the next probe rebuilds the pool).
    pub fn mark_failed(&self, device: &DeviceId) {
        if let Some(d) = lock(&self.state).devices.iter_mut().find(|d| &d.id == device) {
            d.healthy = false;
        }
    }

    pub fn usage(&self) -> Vec<DeviceUsage> {
        lock(&self.state)
            .devices
            .iter()
            .map(|d| DeviceUsage {
                id: d.id.clone(),
                backend: d.backend,
                capacity: d.capacity,
                used: d.used,
                healthy: d.healthy,
            })
            .collect()
    }

    pub fn unavailable(&self) -> Vec<String> {
        lock(&self.state).unavailable.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> SlotPool {
        SlotPool::new(
            vec![
                DeviceSpec {
                    id: DeviceId::cpu(),
                    backend: Backend::Software,
                    codecs: vec![VideoCodec::H264],
                    capacity: Load::new(32, 40.0),
                },
                DeviceSpec {
                    id: DeviceId::new("cuda:0"),
                    backend: Backend::Nvenc,
                    codecs: vec![VideoCodec::H264],
                    capacity: Load::new(2, 600.0),
                },
            ],
            Vec::new(),
        )
    }

    fn demand(sessions: u32, mpix: f64) -> Demand {
        Demand { sessions, encode_mpix_per_sec: mpix, decode_mpix_per_sec: 0.0, codecs: vec![VideoCodec::H264] }
    }

    #[test]
    fn a_lease_frees_its_capacity_on_drop() {
        let pool = pool();
        let a = pool.lease(&demand(2, 100.0), EncoderPolicy::PreferHardware).unwrap();
        assert_eq!(a.device().as_str(), "cuda:0");
        assert_eq!(pool.usage()[1].used, Load::new(2, 100.0));
        // The GPU's sessions are spent: the next ladder falls back to the CPU, with the reason.
        let b = pool.lease(&demand(1, 30.0), EncoderPolicy::PreferHardware).unwrap();
        assert_eq!(b.device().as_str(), "cpu");
        assert!(b.fallback().unwrap().contains("0 of 2 encoder sessions free"), "{:?}", b.fallback());
        // And then the CPU budget is spent too: refused.
        let refused = pool.lease(&demand(1, 30.0), EncoderPolicy::PreferHardware).unwrap_err();
        assert!(refused.is_capacity(), "{refused}");
        drop(a);
        assert_eq!(pool.usage()[1].used, Load::default());
        assert_eq!(pool.lease(&demand(1, 30.0), EncoderPolicy::HardwareOnly).unwrap().device().as_str(), "cuda:0");
        drop(b);
        assert_eq!(pool.usage()[0].used, Load::default());
    }

    /// (sessions, MPix/s) in use on the CPU and on cuda:0.
    fn used(pool: &SlotPool) -> [(u32, f64); 2] {
        let usage = pool.usage();
        [0, 1].map(|i| (usage[i].used.sessions, (usage[i].used.mpix_per_sec * 1e6).round() / 1e6))
    }

    #[test]
    fn a_lease_is_relet_for_the_real_source() {
        use media::RenditionSpec;
        let rung = |height| RenditionSpec {
            height,
            bitrate_kbps: 1000,
            codec: VideoCodec::H264,
            max_fps: None,
            when: Default::default(),
        };
        let ladder = [rung(1080), rung(720), rung(360)];
        let nominal = Demand::for_rungs(&ladder, crate::scheduler::NOMINAL_FPS);
        // The CPU holds 300 MPix/s, the GPU 3 sessions and 150 MPix/s.
        let pool = || {
            SlotPool::new(
                vec![
                    DeviceSpec {
                        id: DeviceId::cpu(),
                        backend: Backend::Software,
                        codecs: vec![VideoCodec::H264],
                        capacity: Load::new(32, 300.0),
                    },
                    DeviceSpec {
                        id: DeviceId::new("cuda:0"),
                        backend: Backend::Nvenc,
                        codecs: vec![VideoCodec::H264],
                        capacity: Load::new(3, 150.0),
                    },
                ],
                Vec::new(),
            )
        };
        let nominal_on_gpu = [(0, 0.0), (3, 96.768)]; // 1080p + 720p + 360p at 30 fps
        let uhd = [rung(2160), rung(1080)];
        // (name, real demand, policy, want device or error text, want fallback)
        type Case<'a> = (&'a str, Demand, EncoderPolicy, Result<&'a str, &'a str>, bool);
        let cases: [Case; 6] = [
            (
                "1080p30 is the nominal demand",
                Demand::for_source(&ladder, (1920, 1080), 30.0),
                EncoderPolicy::HardwareOnly,
                Ok("cuda:0"),
                false,
            ),
            (
                "720p30 drops a rung and shrinks",
                Demand::for_source(&ladder, (1280, 720), 30.0),
                EncoderPolicy::HardwareOnly,
                Ok("cuda:0"),
                false,
            ),
            (
                "1080p60 doubles it: hardware-only refuses",
                Demand::for_source(&ladder, (1920, 1080), 60.0),
                EncoderPolicy::HardwareOnly,
                Err("hardware-only: cuda:0 has 150.0 of 150.0 MPix/s free, the ladder needs 193.5"),
                false,
            ),
            (
                "1080p60 under prefer-hardware falls back to the CPU",
                Demand::for_source(&ladder, (1920, 1080), 60.0),
                EncoderPolicy::PreferHardware,
                Ok("cpu"),
                true,
            ),
            (
                "4K60 with a 4K rung fits nowhere",
                Demand::for_source(&uhd, (3840, 2160), 60.0),
                EncoderPolicy::PreferHardware,
                Err("and the CPU budget is spent: cpu has 300.0 of 300.0 MPix/s free, the ladder needs 746.5"),
                false,
            ),
            (
                "software counts the 4K decode",
                Demand::for_source(&[rung(360)], (3840, 2160), 60.0),
                EncoderPolicy::Software,
                Ok("cpu"),
                false,
            ),
        ];
        for (name, real, policy, want, want_fallback) in cases {
            let pool = pool();
            let mut lease = pool.lease(&nominal, policy).unwrap();
            let before = used(&pool);
            if policy != EncoderPolicy::Software {
                assert_eq!(before, nominal_on_gpu, "{name}");
            }
            match (want, lease.relet(&real, policy)) {
                (Ok(device), Ok(())) => {
                    assert_eq!(lease.device().as_str(), device, "{name}");
                    assert_eq!(lease.fallback().is_some(), want_fallback, "{name}: {:?}", lease.fallback());
                    let load = real.load_on(lease.backend());
                    assert_eq!(lease.load(), load, "{name}");
                    for usage in pool.usage() {
                        let want = if usage.id == *lease.device() { load } else { Load::default() };
                        assert_eq!(usage.used, want, "{name}: {} counts the real demand once", usage.id);
                    }
                }
                (Err(text), Err(e)) => {
                    assert!(e.is_capacity() && e.to_string().contains(text), "{name}: {e}");
                    assert_eq!(used(&pool), before, "{name}: a refused relet leaves the lease as it was");
                }
                (want, got) => panic!("{name}: got {got:?}, want {want:?}"),
            }
            drop(lease);
            assert_eq!(used(&pool), [(0, 0.0), (0, 0.0)], "{name}: all given back");
        }
    }

    #[test]
    fn a_running_lease_is_resized_in_place() {
        let pool = pool();
        let mut lease = pool.lease(&demand(1, 100.0), EncoderPolicy::HardwareOnly).unwrap();
        assert_eq!(lease.resize(&demand(1, 300.0)), None);
        assert_eq!(pool.usage()[1].used, Load::new(1, 300.0));
        let over = lease.resize(&demand(1, 700.0)).expect("over the GPU's budget");
        assert_eq!(over, "cuda:0 has 600.0 of 600.0 MPix/s free, the ladder needs 700.0");
        assert_eq!(pool.usage()[1].used, Load::new(1, 700.0), "counted even beyond capacity");
        drop(lease);
        assert_eq!(pool.usage()[1].used, Load::default());
    }

    #[test]
    fn failed_devices_are_skipped() {
        let pool = pool();
        pool.mark_failed(&DeviceId::new("cuda:0"));
        let err = pool.lease(&demand(1, 10.0), EncoderPolicy::HardwareOnly).unwrap_err();
        assert!(err.is_capacity(), "a refusal, typed: {err:?}");
        assert_eq!(err.to_string(), "hardware-only: cuda:0 failed and is out of service");
        assert_eq!(pool.lease(&demand(1, 10.0), EncoderPolicy::PreferHardware).unwrap().device().as_str(), "cpu");
    }

    #[test]
    fn calibration_round_trips_through_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Calibration::load(dir.path()).unwrap(), Calibration::default());
        let mut c = Calibration::default();
        c.devices.insert(DeviceId::cpu(), Load::new(32, 123.5));
        let path = c.save(dir.path()).unwrap();
        assert!(path.ends_with(CALIBRATION_FILE));
        assert_eq!(Calibration::load(dir.path()).unwrap(), c);
        std::fs::write(&path, "{\"devices\":{},\"extra\":1}").unwrap();
        let err = Calibration::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
    }
}
