//! The one error type of the ingest crate, with classifiers that choose the
//! log level: a client's fault is never logged as an error.

use std::io;
use std::time::Duration;

use scuffle_rtmp::error::RtmpError;

use crate::refusal::RefusalKind;

/// Why a connection, a publish or a tag was not carried through.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A socket operation failed (binding, accepting, reading, writing).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// scuffle-rtmp failed (the handshake, writing a reply).
    #[error("rtmp: {0}")]
    Rtmp(#[from] RtmpError),
    /// The first byte was not RTMP version 3 (an HTTP or TLS client, a scanner).
    #[error("not RTMP (version byte {0:#04x})")]
    NotRtmp(u8),
    /// The client's chunk stream broke the protocol or our limits.
    #[error("chunk stream: {0}")]
    Chunk(&'static str),
    /// A command we act on lacked what it needs, or came out of order.
    #[error("command: {0}")]
    Command(&'static str),
    /// An AMF0 payload that would make the AMF0 decoder misbehave.
    #[error("AMF0 message rejected: {0}")]
    Amf0Rejected(&'static str),
    /// An AMF0 data message could not be decoded.
    #[error("AMF0: {0}")]
    Amf0(#[from] scuffle_amf0::Amf0Error),
    /// Before a publish is granted only small commands are taken.
    #[error("before publish: {0}")]
    BeforePublish(&'static str),
    /// Closed to protect the server: the budget of connections that have not
    /// published is spent (memory), or a newer connection displaced this one.
    #[error("server busy: {0}")]
    Overloaded(&'static str),
    /// The client did not send `connect` in time.
    #[error("no connect within {0:?} of connecting")]
    ConnectDeadline(Duration),
    /// The client did not reach `publish` in time.
    #[error("no publish within {0:?} of connecting")]
    PublishDeadline(Duration),
    /// A publisher sent no audio or video for too long.
    #[error("no media for {0:?}")]
    Idle(Duration),
    /// The handler refused the publish.
    #[error("publish refused ({0:?})")]
    Refused(RefusalKind),
    /// The client sent `play`; this server only accepts publishers.
    #[error("play is not supported")]
    PlayNotSupported,
    /// A second `publish` on a connection that is already publishing.
    #[error("a second publish on one connection")]
    DoublePublish,
    /// The consumer of the publish's units has gone.
    #[error("the consumer has gone")]
    ConsumerGone,
    /// The consumer did not take a track announcement in time.
    #[error("the consumer did not accept the track announcement within {0:?}")]
    ConsumerStalled(Duration),
    /// The server is shutting down.
    #[error("server shutting down")]
    Shutdown,
    /// An FLV tag body is shorter than its header says.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A codec configuration record could not be read.
    #[error("bad codec configuration: {0}")]
    CodecConfig(#[from] media::CodecError),
}

impl IngestError {
    /// The client went away (reset, EOF): routine, logged at debug.
    pub fn is_client_closed(&self) -> bool {
        match self {
            IngestError::Io(e) => is_closed_kind(e.kind()),
            IngestError::Rtmp(RtmpError::Io(e)) => is_closed_kind(e.kind()),
            _ => false,
        }
    }

    /// The client sent something this server cannot or will not parse: the
    /// client's fault, logged at debug and counted, never at error.
    pub fn is_protocol_error(&self) -> bool {
        match self {
            IngestError::Rtmp(RtmpError::Io(e)) => !is_closed_kind(e.kind()) && is_data_kind(e.kind()),
            IngestError::Rtmp(_) => true,
            IngestError::Io(e) => is_data_kind(e.kind()),
            IngestError::NotRtmp(_)
            | IngestError::Chunk(_)
            | IngestError::Command(_)
            | IngestError::Amf0Rejected(_)
            | IngestError::Amf0(_)
            | IngestError::BeforePublish(_)
            | IngestError::PlayNotSupported
            | IngestError::DoublePublish
            | IngestError::Truncated(_)
            | IngestError::CodecConfig(_) => true,
            _ => false,
        }
    }

    /// The client was too slow: no publish in time, or a silent publisher.
    pub fn is_timeout(&self) -> bool {
        matches!(self, IngestError::ConnectDeadline(_) | IngestError::PublishDeadline(_) | IngestError::Idle(_))
    }

    /// The server shed this connection to protect itself (not the client's fault alone).
    pub fn is_overload(&self) -> bool {
        matches!(self, IngestError::Overloaded(_))
    }

    /// The stage after ingest went away or stopped taking units; the publish ends cleanly.
    pub fn is_consumer_gone(&self) -> bool {
        matches!(self, IngestError::ConsumerGone | IngestError::ConsumerStalled(_))
    }
}

fn is_closed_kind(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

fn is_data_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifiers() {
        let cases: Vec<(IngestError, [bool; 5])> = vec![
            // (error, [client_closed, protocol, timeout, consumer_gone, overload])
            (IngestError::Io(io::ErrorKind::ConnectionReset.into()), [true, false, false, false, false]),
            (IngestError::Io(io::ErrorKind::UnexpectedEof.into()), [true, false, false, false, false]),
            (IngestError::Rtmp(RtmpError::Io(io::ErrorKind::UnexpectedEof.into())), [true, false, false, false, false]),
            (IngestError::Io(io::ErrorKind::PermissionDenied.into()), [false, false, false, false, false]),
            (IngestError::NotRtmp(b'G'), [false, true, false, false, false]),
            (IngestError::Chunk("x"), [false, true, false, false, false]),
            (IngestError::Command("x"), [false, true, false, false, false]),
            (IngestError::Amf0Rejected("x"), [false, true, false, false, false]),
            (IngestError::PlayNotSupported, [false, true, false, false, false]),
            (IngestError::Truncated("x"), [false, true, false, false, false]),
            (IngestError::PublishDeadline(Duration::from_secs(1)), [false, false, true, false, false]),
            (IngestError::Idle(Duration::from_secs(1)), [false, false, true, false, false]),
            (IngestError::ConsumerGone, [false, false, false, true, false]),
            (IngestError::ConsumerStalled(Duration::from_secs(1)), [false, false, false, true, false]),
            (IngestError::Shutdown, [false, false, false, false, false]),
            (IngestError::Refused(RefusalKind::UnknownKey), [false, false, false, false, false]),
            (IngestError::BeforePublish("x"), [false, true, false, false, false]),
            (IngestError::ConnectDeadline(Duration::from_secs(1)), [false, false, true, false, false]),
            (IngestError::Overloaded("x"), [false, false, false, false, true]),
        ];
        for (err, want) in cases {
            let got = [
                err.is_client_closed(),
                err.is_protocol_error(),
                err.is_timeout(),
                err.is_consumer_gone(),
                err.is_overload(),
            ];
            assert_eq!(got, want, "{err:?}");
        }
    }
}
