//! Retention: what keeps recordings from filling the data partition. A
//! channel may keep its recordings N days (after they end); globally, a
//! quota keeps a share of the partition free (default 10%) and, optionally,
//! caps the bytes of all recordings. The oldest finished, unlocked
//! recordings go first; a locked one or one still recording never goes.
//! Each deletion is logged and sent as `recording.deleted`. `plan` is pure;
//! `sweep` reads the disk, plans and deletes.

use std::collections::HashMap;
use std::path::Path;

use super::catalog::{Catalog, Recording, RecordingError};
use super::notify::Notifier;
use crate::state::clock;

const DAY_MS: u64 = 86_400_000;

/// The global quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Share of the data partition kept free, in percent (0 to 90).
    pub keep_free_percent: f64,
    /// Most bytes all recordings may take; none: only the free share counts.
    pub max_bytes: Option<u64>,
}

/// The data partition's size and room, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskSpace {
    pub total: u64,
    pub available: u64,
}

/// The file system holding `dir` (statvfs).
pub fn disk_space(dir: &Path) -> std::io::Result<DiskSpace> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(DiskSpace { total: stat.f_blocks * stat.f_frsize, available: stat.f_bavail * stat.f_frsize })
}

/// One deletion retention decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub channel: String,
    pub session: String,
    /// `retention-days` or `disk-quota`.
    pub reason: &'static str,
}

/// Which recordings to delete: `recordings` oldest first; `retain_days`
/// per channel (absent: kept until the quota needs room).
pub fn plan(
    recordings: &[Recording],
    retain_days: &HashMap<String, u32>,
    quota: Quota,
    disk: DiskSpace,
    now_ms: u64,
) -> Vec<Deletion> {
    let deletable = |r: &&Recording| !r.locked && r.meta.state.is_finished();
    let mut deletions = Vec::new();
    let mut freed = 0;
    for recording in recordings.iter().filter(deletable) {
        let Some(days) = retain_days.get(&recording.meta.channel) else { continue };
        let ended = recording.meta.ended_ms.unwrap_or(recording.meta.started_ms);
        if ended.saturating_add(u64::from(*days) * DAY_MS) <= now_ms {
            deletions.push(deletion(recording, "retention-days"));
            freed += recording.bytes;
        }
    }
    let total: u64 = recordings.iter().map(|r| r.bytes).sum();
    let over_cap = quota.max_bytes.map_or(0, |cap| total.saturating_sub(cap));
    let keep_free = (disk.total as f64 * quota.keep_free_percent / 100.0) as u64;
    let short_of_free = keep_free.saturating_sub(disk.available);
    let mut needed = over_cap.max(short_of_free).saturating_sub(freed);
    for recording in recordings.iter().filter(deletable) {
        if needed == 0 {
            break;
        }
        if deletions.iter().any(|d| d.session == recording.meta.session && d.channel == recording.meta.channel) {
            continue;
        }
        deletions.push(deletion(recording, "disk-quota"));
        needed = needed.saturating_sub(recording.bytes);
    }
    deletions
}

fn deletion(recording: &Recording, reason: &'static str) -> Deletion {
    Deletion { channel: recording.meta.channel.clone(), session: recording.meta.session.clone(), reason }
}

/// Plans and deletes (blocking: file system and state reads). Returns what was deleted.
pub fn sweep(
    catalog: &Catalog,
    notifier: &Notifier,
    retain_days: &HashMap<String, u32>,
    quota: Quota,
) -> Result<Vec<Deletion>, RecordingError> {
    let recordings = catalog.all()?;
    if recordings.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(catalog.layout().root())?;
    let disk = disk_space(catalog.layout().root())?;
    let deletions = plan(&recordings, retain_days, quota, disk, clock::now_ms());
    let mut done = Vec::new();
    for deletion in deletions {
        match catalog.delete(&deletion.channel, &deletion.session) {
            Ok(recording) => {
                tracing::info!(channel = %deletion.channel, session = %deletion.session, reason = deletion.reason, bytes = recording.bytes, "recording deleted by retention");
                let _ = notifier.deleted(&recording, deletion.reason);
                done.push(deletion);
            }
            // Locked or deleted meanwhile: it stays, or is gone anyway.
            Err(e) => {
                tracing::warn!(channel = %deletion.channel, session = %deletion.session, error = %e, "retention could not delete a recording")
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recordings::meta::RecordingMeta;
    use crate::state::RecordingState;

    fn recording(channel: &str, session: &str, ended_ms: u64, bytes: u64, locked: bool) -> Recording {
        Recording {
            meta: RecordingMeta {
                channel: channel.into(),
                session: session.into(),
                state: RecordingState::Ready,
                started_ms: ended_ms.saturating_sub(60_000),
                ended_ms: Some(ended_ms),
                renditions: Vec::new(),
                last_failure: None,
            },
            locked,
            bytes,
            renditions: Vec::new(),
        }
    }

    const ROOMY: DiskSpace = DiskSpace { total: 1000, available: 900 };
    const NO_CAP: Quota = Quota { keep_free_percent: 10.0, max_bytes: None };

    fn sessions(deletions: &[Deletion]) -> Vec<(&str, &str)> {
        deletions.iter().map(|d| (d.session.as_str(), d.reason)).collect()
    }

    #[test]
    fn the_quota_deletes_the_oldest_unlocked_first_and_never_a_locked_or_live_one() {
        let now = 100 * DAY_MS;
        let mut live = recording("a", "s5", now, 100, false);
        live.meta.state = RecordingState::Recording;
        let all = [
            recording("a", "s1", now - 5000, 100, true),
            recording("b", "s2", now - 4000, 100, false),
            recording("a", "s3", now - 3000, 100, false),
            recording("b", "s4", now - 2000, 100, false),
            live,
        ];
        let none = HashMap::new();
        assert!(plan(&all, &none, NO_CAP, ROOMY, now).is_empty(), "room enough: nothing goes");
        // Over the cap by 150: the two oldest unlocked go, the locked oldest stays.
        let cap = Quota { max_bytes: Some(350), ..NO_CAP };
        assert_eq!(sessions(&plan(&all, &none, cap, ROOMY, now)), [("s2", "disk-quota"), ("s3", "disk-quota")]);
        // Short of the free share: as much as is missing, oldest first.
        let tight = DiskSpace { total: 1000, available: 50 };
        assert_eq!(sessions(&plan(&all, &none, NO_CAP, tight, now)), [("s2", "disk-quota")]);
        // A cap of nothing: every finished unlocked recording, never s1 (locked) or s5 (recording).
        let zero = Quota { max_bytes: Some(0), ..NO_CAP };
        assert_eq!(sessions(&plan(&all, &none, zero, ROOMY, now)).len(), 3);
    }

    #[test]
    fn a_channel_keeps_its_recordings_its_days() {
        let now = 100 * DAY_MS;
        let all = [
            recording("a", "s1", now - 8 * DAY_MS, 10, false),
            recording("a", "s2", now - 8 * DAY_MS, 10, true),
            recording("b", "s3", now - 8 * DAY_MS, 10, false),
            recording("a", "s4", now - 6 * DAY_MS, 10, false),
        ];
        let days = HashMap::from([("a".to_string(), 7)]);
        assert_eq!(sessions(&plan(&all, &days, NO_CAP, ROOMY, now)), [("s1", "retention-days")]);
    }
}
