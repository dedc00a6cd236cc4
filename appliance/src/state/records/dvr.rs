//! A channel's DVR window: how far back viewers can rewind its live session
//! (`/hls/{channel}/dvr.m3u8`). Its old part is read from the session's
//! recording, so it applies to the renditions the channel records.

use serde::{Deserialize, Serialize};

use crate::state::error::StoreError;

/// The DVR window of channels that do not set one (and of records written before DVR existed).
pub const DEFAULT_DVR_SECONDS: u64 = 2 * 3600;
/// The longest DVR window a channel may set (24 h).
pub const MAX_DVR_SECONDS: u64 = 24 * 3600;

/// Seconds of a live session a viewer can rewind; 0: no DVR window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DvrWindow(pub u64);

impl Default for DvrWindow {
    fn default() -> DvrWindow {
        DvrWindow(DEFAULT_DVR_SECONDS)
    }
}

impl DvrWindow {
    pub fn validate(self) -> Result<(), StoreError> {
        if self.0 > MAX_DVR_SECONDS {
            return Err(StoreError::invalid(
                "dvr_window_seconds",
                format!("{} is outside 0..={MAX_DVR_SECONDS}", self.0),
            ));
        }
        Ok(())
    }

    /// The window, `None` when off.
    pub fn duration(self) -> Option<std::time::Duration> {
        (self.0 > 0).then(|| std::time::Duration::from_secs(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_range_and_reads_old_records_as_the_default() {
        assert!(DvrWindow(0).validate().is_ok() && DvrWindow(MAX_DVR_SECONDS).validate().is_ok());
        let error = DvrWindow(MAX_DVR_SECONDS + 1).validate().unwrap_err().to_string();
        assert_eq!(error, "dvr_window_seconds: 86401 is outside 0..=86400");
        assert_eq!(DvrWindow(0).duration(), None);
        #[derive(Deserialize)]
        struct Old {
            #[serde(default)]
            dvr_window_seconds: DvrWindow,
        }
        let old: Old = serde_json::from_str("{}").unwrap();
        assert_eq!(old.dvr_window_seconds, DvrWindow(7200));
    }
}
