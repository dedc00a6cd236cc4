//! What an encoding device is: its backend (software, NVENC, QSV, VAAPI) and
//! the id the probe, the slots and the scheduler know it by.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A family of encoders the appliance can drive through FFmpeg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// libx264 / libx265 on the CPU.
    Software,
    /// NVIDIA NVENC with NVDEC decode and CUDA scaling.
    Nvenc,
    /// Intel Quick Sync Video (Media SDK).
    Qsv,
    /// VA-API on a DRM render node (Intel, AMD).
    Vaapi,
}

impl Backend {
    pub const ALL: [Backend; 4] = [Backend::Nvenc, Backend::Qsv, Backend::Vaapi, Backend::Software];

    pub fn is_hardware(self) -> bool {
        self != Backend::Software
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Software => "software",
            Backend::Nvenc => "nvenc",
            Backend::Qsv => "qsv",
            Backend::Vaapi => "vaapi",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's stable id: `cpu`, `cuda:0`, `qsv:/dev/dri/renderD128`, `vaapi:/dev/dri/renderD128`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn cpu() -> Self {
        Self::new("cpu")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What FFmpeg's `av_hwdevice_ctx_create` takes as the device string: the
    /// part after the backend prefix (`0` for `cuda:0`, the node path for VAAPI).
    pub fn ffmpeg_device(&self) -> Option<&str> {
        self.0.split_once(':').map(|(_, device)| device)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
