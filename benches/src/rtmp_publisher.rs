//! A minimal RTMP publisher for the memory bench's publish cycles: the
//! handshake, `connect`, `createStream`, `publish` (waiting for the server's
//! verdict), FLV tags as RTMP messages, `deleteStream`. Thousands of publishes
//! a minute, which the `ffmpeg` program (a process per publish) cannot do on
//! a small machine; the soak uses the `ffmpeg` program itself.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use scuffle_amf0::{Amf0Encoder, Amf0Object, Amf0Value};
use scuffle_rtmp::chunk::Chunk;
use scuffle_rtmp::chunk::writer::ChunkWriter;
use scuffle_rtmp::messages::MessageType;
use scuffle_rtmp::protocol_control_messages::ProtocolControlMessageSetChunkSize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Tag;

const HANDSHAKE_SIZE: usize = 1536;
const CHUNK_SIZE: usize = 4096;
/// The message stream `createStream` hands out (the appliance gives 1, as every server does for the first).
const STREAM_ID: u32 = 1;
/// Server replies read while waiting for the verdict.
const MAX_REPLY: usize = 64 * 1024;

/// Why a publish did not start.
#[derive(Debug)]
pub enum PublishError {
    /// The server answered with this `NetStream.Publish.*` error code.
    Refused(&'static str),
    Io(std::io::Error),
    /// No verdict in time, or the connection closed without one.
    NoAnswer,
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Refused(code) => write!(f, "refused: {code}"),
            PublishError::Io(e) => write!(f, "i/o: {e}"),
            PublishError::NoAnswer => write!(f, "no answer to publish"),
        }
    }
}

impl From<std::io::Error> for PublishError {
    fn from(e: std::io::Error) -> Self {
        PublishError::Io(e)
    }
}

/// A publish the server accepted.
pub struct RtmpPublisher {
    stream: TcpStream,
    writer: ChunkWriter,
    out: Vec<u8>,
}

/// The error codes a refusal carries (see `ingest::RefusalKind`).
const REFUSALS: [&str; 3] = ["NetStream.Publish.BadName", "NetStream.Publish.Denied", "NetStream.Publish.Rejected"];

impl RtmpPublisher {
    /// Connects to `addr` and publishes `key` on `app`; returns once the server said yes.
    pub async fn publish(addr: SocketAddr, app: &str, key: &str, limit: Duration) -> Result<Self, PublishError> {
        tokio::time::timeout(limit, Self::start(addr, app, key)).await.unwrap_or(Err(PublishError::NoAnswer))
    }

    async fn start(addr: SocketAddr, app: &str, key: &str) -> Result<Self, PublishError> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        // Simple handshake: C0+C1, read S0+S1+S2, echo S1 as C2.
        let mut c0c1 = vec![3u8; 1 + HANDSHAKE_SIZE];
        c0c1[1..9].fill(0);
        stream.write_all(&c0c1).await?;
        let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
        stream.read_exact(&mut s0s1s2).await?;
        stream.write_all(&s0s1s2[1..1 + HANDSHAKE_SIZE]).await?;
        let mut publisher = RtmpPublisher { stream, writer: ChunkWriter::default(), out: Vec::new() };
        ProtocolControlMessageSetChunkSize { chunk_size: CHUNK_SIZE as u32 }
            .write(&mut publisher.out, &publisher.writer)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        publisher.writer.set_chunk_size(CHUNK_SIZE);
        let connect: Amf0Object = [
            ("app".into(), Amf0Value::String(app.to_owned().into())),
            ("type".into(), Amf0Value::String("nonprivate".into())),
            ("tcUrl".into(), Amf0Value::String(format!("rtmp://{addr}/{app}").into())),
        ]
        .into_iter()
        .collect();
        publisher
            .command(0, &[Amf0Value::String("connect".into()), Amf0Value::Number(1.0), Amf0Value::Object(connect)])?;
        publisher.command(0, &[Amf0Value::String("createStream".into()), Amf0Value::Number(2.0), Amf0Value::Null])?;
        publisher.command(
            STREAM_ID,
            &[
                Amf0Value::String("publish".into()),
                Amf0Value::Number(3.0),
                Amf0Value::Null,
                Amf0Value::String(key.to_owned().into()),
                Amf0Value::String("live".into()),
            ],
        )?;
        publisher.flush().await?;
        publisher.verdict().await?;
        Ok(publisher)
    }

    /// Reads the server's replies until the publish's status: AMF0 strings are
    /// plain bytes, so the status code is found in the raw replies.
    async fn verdict(&mut self) -> Result<(), PublishError> {
        let mut replies = Vec::new();
        let mut buf = [0u8; 4096];
        while replies.len() < MAX_REPLY {
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            replies.extend_from_slice(&buf[..n]);
            if contains(&replies, b"NetStream.Publish.Start") {
                return Ok(());
            }
            if let Some(code) = REFUSALS.into_iter().find(|code| contains(&replies, code.as_bytes())) {
                return Err(PublishError::Refused(code));
            }
        }
        Err(PublishError::NoAnswer)
    }

    fn command(&mut self, stream_id: u32, values: &[Amf0Value<'_>]) -> Result<(), PublishError> {
        let mut payload = Vec::new();
        let mut encoder = Amf0Encoder::new(&mut payload);
        for value in values {
            value.encode(&mut encoder).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        self.message(MessageType::CommandAMF0, stream_id, 0, Bytes::from(payload))
    }

    fn message(
        &mut self,
        kind: MessageType,
        stream_id: u32,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        let chunk_stream = match kind {
            MessageType::Video => 6,
            MessageType::Audio => 4,
            _ => 3,
        };
        self.writer.write_chunk(&mut self.out, Chunk::new(chunk_stream, timestamp, kind, stream_id, payload))?;
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }

    /// Sends one FLV tag (audio, video or script data) at `timestamp` (ms).
    pub async fn send(&mut self, tag: &Tag, timestamp: u32) -> Result<(), PublishError> {
        let kind = match tag.kind {
            8 => MessageType::Audio,
            9 => MessageType::Video,
            _ => MessageType::DataAMF0,
        };
        self.message(kind, STREAM_ID, timestamp, tag.data.clone())?;
        if self.out.len() >= 64 * 1024 || kind == MessageType::Video {
            self.flush().await?;
        }
        Ok(())
    }

    /// Ends the publish as encoders do (`deleteStream`) and closes the connection.
    pub async fn unpublish(mut self) -> Result<(), PublishError> {
        self.command(
            0,
            &[
                Amf0Value::String("deleteStream".into()),
                Amf0Value::Number(4.0),
                Amf0Value::Null,
                Amf0Value::Number(STREAM_ID as f64),
            ],
        )?;
        self.flush().await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
