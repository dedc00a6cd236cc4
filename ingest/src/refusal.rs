//! Why a publish is refused: the kind chooses the RTMP status code the
//! publisher sees, the reason is its description and the log line.

/// Why a publish was refused; chooses the RTMP status code the publisher sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// No channel has this stream key.
    UnknownKey,
    /// The channel is already live from another publisher.
    AlreadyLive,
    /// The channel exists but cannot take a publish now (disabled, no capacity, shutting down).
    Unavailable,
}

impl RefusalKind {
    /// Every kind, in the order of their discriminants.
    pub const ALL: [RefusalKind; 3] = [RefusalKind::UnknownKey, RefusalKind::AlreadyLive, RefusalKind::Unavailable];

    /// The kind's name in logs.
    pub fn name(self) -> &'static str {
        match self {
            RefusalKind::UnknownKey => "unknown_key",
            RefusalKind::AlreadyLive => "already_live",
            RefusalKind::Unavailable => "unavailable",
        }
    }

    /// The `onStatus` code sent to the publisher. OBS's librtmp closes the
    /// connection and shows "code (description)" for all three; FFmpeg shows
    /// the description.
    pub fn status_code(self) -> &'static str {
        match self {
            RefusalKind::UnknownKey => "NetStream.Publish.Denied",
            RefusalKind::AlreadyLive => "NetStream.Publish.BadName",
            RefusalKind::Unavailable => "NetStream.Publish.Rejected",
        }
    }
}

/// A refused publish: the kind picks the status code, the reason is the
/// description the publisher sees and the text of the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub reason: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: reason.into() }
    }
}
