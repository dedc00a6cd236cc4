//! Per-channel latency modes and the delivery settings each one implies.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a channel trades latency for buffer (see ARCHITECTURE.md, "Latency modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyMode {
    /// LL-HLS: parts, blocking reload, preload hints; under 2 s glass to glass.
    #[default]
    UltraLow,
    /// HLS with 2 s segments.
    Low,
    /// HLS with 6 s segments and the most buffer.
    Normal,
}

impl LatencyMode {
    pub const ALL: [LatencyMode; 3] = [LatencyMode::UltraLow, LatencyMode::Low, LatencyMode::Normal];

    /// Whether playlists carry LL-HLS parts.
    pub fn has_parts(self) -> bool {
        self == LatencyMode::UltraLow
    }

    /// Default segment duration to aim for (segments are cut on the first keyframe after it).
    pub fn segment_target(self) -> Duration {
        match self {
            LatencyMode::UltraLow => Duration::from_secs(1),
            LatencyMode::Low => Duration::from_secs(2),
            LatencyMode::Normal => Duration::from_secs(6),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LatencyMode::UltraLow => "ultra-low",
            LatencyMode::Low => "low",
            LatencyMode::Normal => "normal",
        }
    }
}

impl fmt::Display for LatencyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LatencyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LatencyMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown latency mode {s:?} (expected ultra-low, low or normal)"))
    }
}
