//! Aggregated warnings of one connection: the first of each kind is logged,
//! the rest are counted and summarised in one line when the connection ends.
//! Never a log line per frame.

use std::fmt;

/// Something wrong with a publisher's stream that we work around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warning {
    /// A tag shorter than its header says, or an empty frame: skipped.
    BadTag,
    /// A codec configuration that could not be parsed: ignored.
    BadCodecConfig,
    /// A frame before its track's sequence header: skipped.
    FrameBeforeConfig,
    /// A video codec we do not carry: the track is ignored.
    UnsupportedVideo,
    /// An audio codec we do not carry: the track is ignored.
    UnsupportedAudio,
    /// The source clock jumped; the timeline was rebased.
    Discontinuity,
    /// A decode time that did not increase was moved one tick forward.
    ClampedTimestamp,
    /// Audio drifted from the RTMP clock by more than half a frame and was re-synced.
    AudioResync,
    /// The track set was announced before every declared track arrived.
    IncompleteTracks,
    /// Media or metadata outside a publish, or AMF0 data we could not read.
    StrayMessage,
    /// MPEG-TS packets lost or damaged (a continuity counter skipped): the
    /// unit they belonged to was dropped.
    LostPackets,
}

impl Warning {
    const ALL: [Warning; 11] = [
        Warning::BadTag,
        Warning::BadCodecConfig,
        Warning::FrameBeforeConfig,
        Warning::UnsupportedVideo,
        Warning::UnsupportedAudio,
        Warning::Discontinuity,
        Warning::ClampedTimestamp,
        Warning::AudioResync,
        Warning::IncompleteTracks,
        Warning::StrayMessage,
        Warning::LostPackets,
    ];

    fn name(self) -> &'static str {
        match self {
            Warning::BadTag => "bad_tags",
            Warning::BadCodecConfig => "bad_codec_configs",
            Warning::FrameBeforeConfig => "frames_before_config",
            Warning::UnsupportedVideo => "unsupported_video",
            Warning::UnsupportedAudio => "unsupported_audio",
            Warning::Discontinuity => "discontinuities",
            Warning::ClampedTimestamp => "clamped_timestamps",
            Warning::AudioResync => "audio_resyncs",
            Warning::IncompleteTracks => "incomplete_track_sets",
            Warning::StrayMessage => "stray_messages",
            Warning::LostPackets => "lost_packets",
        }
    }
}

/// Counts per kind; logs the first of each.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    counts: [u64; Warning::ALL.len()],
}

impl Warnings {
    /// Counts one occurrence; the first of its kind is logged with `detail`.
    pub fn note(&mut self, kind: Warning, detail: impl fmt::Display) {
        let count = &mut self.counts[kind as usize];
        *count += 1;
        if *count == 1 {
            match kind {
                Warning::Discontinuity | Warning::AudioResync | Warning::LostPackets => {
                    tracing::info!(kind = kind.name(), "{detail} (further ones are counted)");
                }
                // Anyone can send these before publishing: not worth a warning per connection.
                Warning::StrayMessage => tracing::debug!(kind = kind.name(), "{detail} (further ones are counted)"),
                _ => tracing::warn!(kind = kind.name(), "{detail} (further ones are counted)"),
            }
        }
    }

    pub fn count(&self, kind: Warning) -> u64 {
        self.counts[kind as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }
}

impl fmt::Display for Warnings {
    /// `name=count` for every kind that occurred.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in Warning::ALL {
            let count = self.count(kind);
            if count > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{}={count}", kind.name())?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_summarises() {
        let mut w = Warnings::default();
        assert!(w.is_empty());
        for _ in 0..1000 {
            w.note(Warning::BadTag, "truncated video tag");
        }
        w.note(Warning::UnsupportedAudio, "MP3");
        assert_eq!(w.count(Warning::BadTag), 1000);
        assert_eq!(w.to_string(), "bad_tags=1000 unsupported_audio=1");
        for (i, kind) in Warning::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i);
        }
    }
}
