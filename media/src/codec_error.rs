//! Why a codec configuration or codec header from the outside could not be read.

/// Why a codec configuration could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("avcC record truncated")]
    AvcTruncated,
    #[error("avcC version {0} is not 1")]
    AvcVersion(u8),
    #[error("avcC has no sequence parameter set")]
    AvcNoSps,
    #[error("SPS could not be parsed: {0}")]
    Sps(&'static str),
    #[error("AudioSpecificConfig truncated")]
    AacTruncated,
    #[error("AAC sampling frequency index {0} is invalid")]
    AacSampleRate(u8),
    #[error("hvcC record truncated")]
    HevcTruncated,
    #[error("hvcC version {0} is not 1")]
    HevcVersion(u8),
    #[error("hvcC has no sequence parameter set")]
    HevcNoSps,
    #[error("MPEG audio frame header: {0}")]
    MpegAudio(&'static str),
    #[error("OpusHead: {0}")]
    OpusHead(&'static str),
    #[error("AV1: {0}")]
    Av1(&'static str),
}
