//! The errors of `accel`, one enum for the crate, with the classifiers the
//! supervisor uses to choose its response (move the ladder, refuse, log level).

use crate::device::DeviceId;

/// What went wrong in probing, scheduling or transcoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccelError {
    /// FFmpeg could not be initialised at all (a broken installation).
    #[error("FFmpeg could not be initialised: {0}")]
    Init(String),
    /// The encoder FFmpeg knows by this name is not built into the linked libavcodec.
    #[error("encoder {0} is not built into this FFmpeg")]
    EncoderMissing(&'static str),
    /// Opening an encoder failed; `detail` is FFmpeg's error and log text.
    #[error("{encoder} could not be opened: {detail}")]
    EncoderOpen { encoder: &'static str, detail: String },
    /// An encoder failed while running.
    #[error("{encoder} failed on {device}: {detail}")]
    Encode { encoder: &'static str, device: DeviceId, detail: String },
    /// The device went away or its driver reset (GPU fell off the bus, context lost).
    #[error("device {device} was lost: {detail}")]
    DeviceLost { device: DeviceId, detail: String },
    /// Decoding the source failed in a way that is not the source's fault.
    #[error("decoder failed: {0}")]
    Decode(String),
    /// No decoder could be opened for the source's codec (missing from this
    /// FFmpeg, or a configuration it refuses); `detail` is FFmpeg's error and log text.
    #[error("{decoder} decoder could not be opened: {detail}")]
    DecoderOpen { decoder: String, detail: String },
    /// Converting decoded audio to the encoder's format, rate or channels failed.
    #[error("audio resampler failed: {0}")]
    Resample(String),
    /// The filter graph (split and scale) could not be built or run.
    #[error("filter graph failed: {0}")]
    Filter(String),
    /// The source cannot be transcoded (no video, unsupported size or rate).
    #[error("source not accepted: {0}")]
    Source(String),
    /// A ladder the pipeline cannot run as given: two rungs with one name, or
    /// outputs that do not match the rungs' names (a caller's mistake).
    #[error("ladder not usable: {0}")]
    Ladder(String),
    /// The consumer of every rendition has gone.
    #[error("every rendition's consumer has gone")]
    OutputsClosed,
    /// The scheduler found no capacity that the channel's policy allows.
    #[error("{0}")]
    NoCapacity(String),
    /// A file (capacity calibration, bench input) could not be read or written.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

impl AccelError {
    /// The device itself failed: move the ladder elsewhere and stop scheduling onto it.
    pub fn is_device_lost(&self) -> bool {
        match self {
            AccelError::DeviceLost { .. } => true,
            AccelError::Encode { detail, .. } => looks_like_device_loss(detail),
            _ => false,
        }
    }

    /// The ladder can be moved to another slot and carry on (device loss or an encoder fault).
    pub fn is_movable(&self) -> bool {
        matches!(self, AccelError::DeviceLost { .. } | AccelError::Encode { .. } | AccelError::EncoderOpen { .. })
    }

    /// A refusal by policy or capacity (no slot the policy allows, a spent
    /// budget): the operator should see it at warn level and the publisher
    /// gets an "unavailable" refusal; nothing is broken.
    pub fn is_capacity(&self) -> bool {
        matches!(self, AccelError::NoCapacity(_))
    }

    /// Ends normally: the consumers went away (the publish ended).
    pub fn is_closed(&self) -> bool {
        matches!(self, AccelError::OutputsClosed)
    }
}

/// FFmpeg's texts for a device that is gone rather than an encoder that refused a frame.
fn looks_like_device_loss(detail: &str) -> bool {
    const MARKS: [&str; 6] = [
        "CUDA_ERROR_LAUNCH_FAILED",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        "CUDA_ERROR_DEVICE_UNAVAILABLE",
        "NV_ENC_ERR_DEVICE_NOT_EXIST",
        "VA_STATUS_ERROR_HW_BUSY",
        "MFX_ERR_DEVICE_LOST",
    ];
    MARKS.iter().any(|m| detail.contains(m)) || detail.contains("device lost") || detail.contains("Input/output error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifiers() {
        let dev = DeviceId::new("cuda:0");
        // (error, is_device_lost, is_movable, is_capacity, is_closed)
        let cases: [(AccelError, bool, bool, bool, bool); 8] = [
            (AccelError::DeviceLost { device: dev.clone(), detail: "gone".into() }, true, true, false, false),
            (
                AccelError::Encode {
                    encoder: "h264_nvenc",
                    device: dev.clone(),
                    detail: "CUDA_ERROR_LAUNCH_FAILED".into(),
                },
                true,
                true,
                false,
                false,
            ),
            (
                AccelError::Encode { encoder: "libx264", device: dev, detail: "Invalid argument".into() },
                false,
                true,
                false,
                false,
            ),
            (
                AccelError::EncoderOpen { encoder: "h264_nvenc", detail: "unsupported device".into() },
                false,
                true,
                false,
                false,
            ),
            (AccelError::NoCapacity("full".into()), false, false, true, false),
            (AccelError::Source("no video".into()), false, false, false, false),
            (AccelError::Ladder("two rungs are named 360p".into()), false, false, false, false),
            (AccelError::OutputsClosed, false, false, false, true),
        ];
        for (error, lost, movable, capacity, closed) in cases {
            assert_eq!(error.is_device_lost(), lost, "{error}");
            assert_eq!(error.is_movable(), movable, "{error}");
            assert_eq!(error.is_capacity(), capacity, "{error}");
            assert_eq!(error.is_closed(), closed, "{error}");
        }
    }
}
