//! One RTMP connection driven to its end: the handshake (scuffle-rtmp), our
//! chunk reader, the messages a publisher sends (connect, createStream,
//! publish, deleteStream, chunk size, window size, ping), acknowledgements.
//! At `publish` it asks the `IngestHandler`; a granted publish feeds its
//! `Demuxer` and the events go to the granted sink; a refusal gets an RTMP
//! error status. Every granted publish ends exactly once.
//!
//! Until a publish is granted the connection is unauthenticated: it must send
//! `connect` and `publish` in time, may send only small commands (no media),
//! and its unfinished messages are charged to the budget shared by every
//! unauthenticated connection; a newer connection may displace it.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use media::{Arrival, SendError, StreamEvent, UnitSender};
use scuffle_rtmp::chunk::Chunk;
use scuffle_rtmp::chunk::writer::ChunkWriter;
use scuffle_rtmp::command_messages::netconnection::{NetConnectionCommand, NetConnectionCommandConnectResult};
use scuffle_rtmp::command_messages::on_status::{OnStatus, OnStatusCode};
use scuffle_rtmp::command_messages::{Command, CommandResultLevel, CommandType};
use scuffle_rtmp::handshake::{HandshakeServer, RTMP_HANDSHAKE_SIZE};
use scuffle_rtmp::messages::MessageType;
use scuffle_rtmp::protocol_control_messages::{
    ProtocolControlMessageAcknowledgement, ProtocolControlMessageSetChunkSize, ProtocolControlMessageSetPeerBandwidth,
    ProtocolControlMessageSetPeerBandwidthLimitType, ProtocolControlMessageWindowAcknowledgementSize,
};
use scuffle_rtmp::user_control_messages::EventMessageStreamBegin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::admission::{Eviction, Ticket};
use crate::chunk::{ChunkReader, Message};
use crate::command::{self, ClientCommand};
use crate::connect_result;
use crate::demuxer::Demuxer;
use crate::error::IngestError;
use crate::handler::{IngestHandler, PublishRequest, Refusal, RefusalKind, key_prefix, stream_key};
use crate::ingest_config::IngestConfig;
use crate::metadata;
use crate::server_state::Shared;
use crate::warnings::{Warning, Warnings};

/// How long the consumer may take to accept a track announcement.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a refused publisher gets to read its error status before the socket closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// The chunk size we send with, announced right after the handshake.
const OUR_CHUNK_SIZE: usize = 4096;
/// Acknowledgement window: ours for the client, and the client's until it sets one.
const ACK_WINDOW: u32 = 2_500_000;
/// The message stream `createStream` hands out (one publish per connection).
const PUBLISH_STREAM_ID: u32 = 1;
/// Room made in the read buffer before each read while publishing.
const READ_RESERVE: usize = 64 * 1024;
/// The same before a publish is granted: commands are small, and an idle
/// unauthenticated connection should hold little memory.
const PRE_PUBLISH_READ_RESERVE: usize = 4 * 1024;

/// How a connection ended, for the server's aggregated counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client closed or unpublished.
    Closed,
    Refused,
    /// Garbage, unsupported requests, or too slow (deadlines).
    ClientFault,
    /// Closed to protect the server (pre-publish memory budget, displaced by a newer connection).
    Shed,
    ConsumerGone,
    Shutdown,
    Other,
}

/// One accepted connection's admission: its slot, and the signal that it was displaced.
pub(crate) struct Admitted {
    pub ticket: Ticket,
    pub eviction: Eviction,
}

/// Serves one accepted connection (a TCP stream, or an in-memory one for the
/// fuzzer) to its end.
pub(crate) async fn serve<S, H>(
    stream: S,
    peer: SocketAddr,
    handler: Arc<H>,
    shared: Arc<Shared>,
    admitted: Admitted,
    mut shutdown: watch::Receiver<bool>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: IngestHandler,
{
    let Admitted { ticket, eviction } = admitted;
    let config = &shared.config;
    let deadline = Arc::new(Deadline::new(config.connect_deadline, config.publish_deadline));
    let mut session = Session {
        stream,
        peer,
        handler,
        chunks: ChunkReader::before_publish(shared.budget.account()),
        shared: shared.clone(),
        ticket,
        deadline: deadline.clone(),
        span: tracing::Span::current(),
        read_buf: BytesMut::new(),
        write_buf: Vec::new(),
        writer: ChunkWriter::default(),
        bytes_in: 0,
        ack_window: ACK_WINDOW,
        next_ack: ACK_WINDOW as u64,
        app: None,
        publish: None,
        refusal: None,
        warnings: Warnings::default(),
        events: Vec::new(),
    };
    let outcome = tokio::select! {
        result = session.run() => result,
        err = deadline.expired() => Err(err),
        () = eviction.wait() => Err(IngestError::Overloaded(
            "displaced by a newer connection while the budget of connections that have not published was full",
        )),
        _ = shutdown.wait_for(|stop| *stop) => Err(IngestError::Shutdown),
    };
    session.finish(outcome).await
}

struct Session<S, H: IngestHandler> {
    stream: S,
    peer: SocketAddr,
    handler: Arc<H>,
    shared: Arc<Shared>,
    /// The connection's slot; authenticated when a publish is granted.
    ticket: Ticket,
    deadline: Arc<Deadline>,
    span: tracing::Span,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    chunks: ChunkReader,
    writer: ChunkWriter,
    /// Bytes received, for acknowledgements.
    bytes_in: u64,
    ack_window: u32,
    next_ack: u64,
    app: Option<String>,
    publish: Option<Publish<H>>,
    refusal: Option<Refusal>,
    warnings: Warnings,
    events: Vec<StreamEvent>,
}

/// A granted publish in progress.
struct Publish<H: IngestHandler> {
    grant: Grant<H>,
    demuxer: Demuxer,
    started: Instant,
    dropped_units: u64,
}

/// Ends a granted publish exactly once, whatever ends it (return, error,
/// cancellation, panic): drops the sink, then calls `on_unpublish`.
struct Grant<H: IngestHandler> {
    handler: Arc<H>,
    publish_id: u64,
    sink: Option<UnitSender>,
}

impl<H: IngestHandler> Drop for Grant<H> {
    fn drop(&mut self) {
        drop(self.sink.take());
        self.handler.on_unpublish(self.publish_id);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send, H: IngestHandler> Session<S, H> {
    fn config(&self) -> &IngestConfig {
        &self.shared.config
    }

    async fn run(&mut self) -> Result<(), IngestError> {
        self.handshake().await?;
        loop {
            self.read_buf.reserve(if self.publish.is_some() { READ_RESERVE } else { PRE_PUBLISH_READ_RESERVE });
            let n = self.stream.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Ok(());
            }
            let arrival = Arrival::now();
            self.count_bytes(n)?;
            while let Some(message) = self.chunks.read(&mut self.read_buf)? {
                self.message(message, arrival).await?;
            }
            self.flush().await?;
        }
    }

    /// C0+C1 in, S0+S1+S2 out, C2 in (scuffle-rtmp's handshake, simple or
    /// complex); then our chunk size.
    async fn handshake(&mut self) -> Result<(), IngestError> {
        let mut handshake = HandshakeServer::default();
        // An HTTP or TLS client is told apart by its first byte, not after 1.5 kB.
        self.fill(1).await?;
        if self.read_buf[0] != 3 {
            return Err(IngestError::NotRtmp(self.read_buf[0]));
        }
        self.fill(1 + RTMP_HANDSHAKE_SIZE).await?;
        let c0c1 = self.read_buf.split_to(1 + RTMP_HANDSHAKE_SIZE).freeze();
        handshake.handshake(&mut Cursor::new(c0c1), &mut self.write_buf)?;
        self.flush().await?;
        self.fill(RTMP_HANDSHAKE_SIZE).await?;
        let c2 = self.read_buf.split_to(RTMP_HANDSHAKE_SIZE).freeze();
        handshake.handshake(&mut Cursor::new(c2), &mut self.write_buf)?;
        ProtocolControlMessageSetChunkSize { chunk_size: OUR_CHUNK_SIZE as u32 }
            .write(&mut self.write_buf, &self.writer)?;
        self.writer.set_chunk_size(OUR_CHUNK_SIZE);
        self.flush().await
    }

    /// Reads until `read_buf` holds at least `len` bytes.
    async fn fill(&mut self, len: usize) -> Result<(), IngestError> {
        while self.read_buf.len() < len {
            self.read_buf.reserve(len - self.read_buf.len());
            let n = self.stream.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Err(IngestError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.count_bytes(n)?;
        }
        Ok(())
    }

    /// Counts received bytes and acknowledges each window's worth.
    fn count_bytes(&mut self, n: usize) -> Result<(), IngestError> {
        self.bytes_in += n as u64;
        if self.bytes_in >= self.next_ack {
            ProtocolControlMessageAcknowledgement { sequence_number: self.bytes_in as u32 }
                .write(&mut self.write_buf, &self.writer)?;
            self.next_ack = self.bytes_in + self.ack_window as u64;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), IngestError> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&self.write_buf))
            .await
            .map_err(|_| IngestError::Io(std::io::ErrorKind::TimedOut.into()))??;
        self.write_buf.clear();
        Ok(())
    }

    async fn message(&mut self, message: Message, arrival: Arrival) -> Result<(), IngestError> {
        let payload = &message.payload;
        let u32_at = |at: usize| payload.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match MessageType(message.type_id) {
            MessageType::SetChunkSize => {
                self.chunks.set_chunk_size(u32_at(0).ok_or(IngestError::Chunk("short Set Chunk Size"))?)?;
            }
            MessageType::Abort => self.chunks.abort(u32_at(0).ok_or(IngestError::Chunk("short Abort"))?),
            MessageType::WindowAcknowledgementSize => {
                let window = u32_at(0).ok_or(IngestError::Chunk("short Window Acknowledgement Size"))?;
                self.ack_window = window.max(4096);
                self.next_ack = self.bytes_in + self.ack_window as u64;
            }
            MessageType::UserControlEvent => self.user_control(payload)?,
            MessageType::Acknowledgement | MessageType::SetPeerBandwidth => {}
            MessageType::Video | MessageType::Audio | MessageType::DataAMF0 => {
                self.media(message.type_id, message.timestamp, &message.payload, arrival).await?;
            }
            MessageType::CommandAMF0 => self.command(payload).await?,
            // AMF3 commands are a format byte (0: AMF0) and an AMF0 command.
            MessageType::CommandAMF3 if payload.first() == Some(&0) => self.command(&payload[1..]).await?,
            _ => self
                .warnings
                .note(Warning::StrayMessage, format_args!("ignoring RTMP message type {}", message.type_id)),
        }
        Ok(())
    }

    /// Answers a ping request (event 6) with a ping response (event 7).
    fn user_control(&mut self, payload: &[u8]) -> Result<(), IngestError> {
        if payload.len() >= 6 && payload[..2] == [0, 6] {
            let response = Bytes::from([&[0, 7][..], &payload[2..6]].concat());
            self.writer
                .write_chunk(&mut self.write_buf, Chunk::new(2, 0, MessageType::UserControlEvent, 0, response))?;
        }
        Ok(())
    }

    async fn command(&mut self, payload: &[u8]) -> Result<(), IngestError> {
        match command::read(payload)? {
            ClientCommand::Connect { transaction_id, app, four_cc_list } => {
                ProtocolControlMessageWindowAcknowledgementSize { acknowledgement_window_size: ACK_WINDOW }
                    .write(&mut self.write_buf, &self.writer)?;
                ProtocolControlMessageSetPeerBandwidth {
                    acknowledgement_window_size: ACK_WINDOW,
                    limit_type: ProtocolControlMessageSetPeerBandwidthLimitType::Dynamic,
                }
                .write(&mut self.write_buf, &self.writer)?;
                match four_cc_list {
                    // An Enhanced RTMP client hears which of its codecs we take.
                    Some(offered) => {
                        connect_result::write_enhanced(&mut self.write_buf, &self.writer, transaction_id, &offered)?
                    }
                    None => {
                        let result = NetConnectionCommand::ConnectResult(NetConnectionCommandConnectResult::default());
                        Command { transaction_id, command_type: CommandType::NetConnection(result) }
                            .write(&mut self.write_buf, &self.writer)?;
                    }
                }
                self.app = Some(app);
                self.deadline.connected(self.config().publish_deadline);
            }
            ClientCommand::CreateStream { transaction_id } => {
                let result = NetConnectionCommand::CreateStreamResult { stream_id: PUBLISH_STREAM_ID as f64 };
                Command { transaction_id, command_type: CommandType::NetConnection(result) }
                    .write(&mut self.write_buf, &self.writer)?;
            }
            ClientCommand::Publish { transaction_id, name } => self.publish(transaction_id, &name).await?,
            ClientCommand::Unpublish => self.end_publish(&Ok(())),
            ClientCommand::Play { transaction_id } => {
                self.status(
                    transaction_id,
                    "NetStream.Play.Failed",
                    CommandResultLevel::Error,
                    "this server only accepts publishers",
                )?;
                return Err(IngestError::PlayNotSupported);
            }
            ClientCommand::Other(name) => tracing::debug!(command = %name, "ignoring command"),
        }
        Ok(())
    }

    /// Writes an `onStatus`.
    fn status(
        &mut self,
        transaction_id: f64,
        code: &'static str,
        level: CommandResultLevel,
        description: &str,
    ) -> Result<(), IngestError> {
        Command {
            transaction_id,
            command_type: CommandType::OnStatus(OnStatus {
                code: OnStatusCode(code),
                description: Some(description.into()),
                level,
                others: None,
            }),
        }
        .write(&mut self.write_buf, &self.writer)?;
        Ok(())
    }

    async fn publish(&mut self, transaction_id: f64, publishing_name: &str) -> Result<(), IngestError> {
        let Some(app) = self.app.clone() else { return Err(IngestError::Command("publish before connect")) };
        if self.publish.is_some() {
            return Err(IngestError::DoublePublish);
        }
        self.deadline.pause();
        let key = stream_key(publishing_name).to_owned();
        let prefix = key_prefix(&key);
        self.span.record("key", prefix.as_str());
        let request = PublishRequest { peer: self.peer, app: app.clone(), stream_key: key };
        let answer = tokio::time::timeout(self.config().publish_deadline, self.handler.on_publish(request))
            .await
            .unwrap_or_else(|_| Err(Refusal::new(RefusalKind::Unavailable, "the server did not decide in time")));
        let grant = match answer {
            Ok(grant) => grant,
            Err(refusal) => {
                let kind = refusal.kind;
                self.status(transaction_id, kind.status_code(), CommandResultLevel::Error, &refusal.reason)?;
                self.refusal = Some(refusal);
                // The publisher may already be gone; the refusal is logged either way.
                let _ = self.flush().await;
                return Err(IngestError::Refused(kind));
            }
        };
        self.ticket.authenticate();
        self.chunks.authenticated();
        self.span.record("label", grant.label.as_str());
        tracing::info!(app, publish_id = grant.publish_id, "publish started");
        EventMessageStreamBegin { stream_id: PUBLISH_STREAM_ID }.write(&self.writer, &mut self.write_buf)?;
        self.status(
            transaction_id,
            "NetStream.Publish.Start",
            CommandResultLevel::Status,
            &format!("{prefix} is now published"),
        )?;
        self.deadline.extend(self.config().idle_timeout);
        self.publish = Some(Publish {
            grant: Grant { handler: self.handler.clone(), publish_id: grant.publish_id, sink: Some(grant.sink) },
            demuxer: Demuxer::default(),
            started: Instant::now(),
            dropped_units: 0,
        });
        Ok(())
    }

    async fn media(
        &mut self,
        type_id: u8,
        timestamp: u32,
        payload: &Bytes,
        arrival: Arrival,
    ) -> Result<(), IngestError> {
        let idle_timeout = self.config().idle_timeout;
        let Some(publish) = self.publish.as_mut() else {
            if matches!(MessageType(type_id), MessageType::Video | MessageType::Audio) {
                return Err(IngestError::BeforePublish("audio or video"));
            }
            self.warnings.note(Warning::StrayMessage, "metadata outside a publish; ignored");
            return Ok(());
        };
        match MessageType(type_id) {
            MessageType::Video => {
                self.deadline.extend(idle_timeout);
                publish.demuxer.push_video(timestamp, payload, arrival, &mut self.events);
            }
            MessageType::Audio => {
                self.deadline.extend(idle_timeout);
                publish.demuxer.push_audio(timestamp, payload, arrival, &mut self.events);
            }
            _ => match metadata::read(payload) {
                Ok(Some(meta)) => {
                    tracing::info!(
                        encoder = meta.encoder.as_deref().unwrap_or("?"),
                        width = meta.width,
                        height = meta.height,
                        framerate = meta.framerate,
                        videocodecid = meta.videocodecid,
                        audiocodecid = meta.audiocodecid,
                        "stream metadata"
                    );
                    self.handler.on_metadata(publish.grant.publish_id, &meta);
                    publish.demuxer.set_metadata(&meta, &mut self.events);
                }
                Ok(None) => {}
                Err(err) => self.warnings.note(Warning::StrayMessage, format_args!("unreadable data message: {err}")),
            },
        }
        self.deliver().await
    }

    /// Sends what the demuxer produced to the sink.
    async fn deliver(&mut self) -> Result<(), IngestError> {
        if self.events.is_empty() {
            return Ok(());
        }
        let Some(publish) = self.publish.as_mut() else { return Ok(()) };
        let Some(sink) = publish.grant.sink.as_mut() else { return Ok(()) };
        let mut events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for event in events.drain(..) {
            let sent = match event {
                StreamEvent::Tracks(tracks) => {
                    match tokio::time::timeout(ANNOUNCE_TIMEOUT, sink.send_tracks(tracks)).await {
                        Ok(sent) => sent,
                        Err(_) => {
                            result = Err(IngestError::ConsumerStalled(ANNOUNCE_TIMEOUT));
                            break;
                        }
                    }
                }
                StreamEvent::Unit(unit) => sink.send_unit(unit).map(|delivered| {
                    if !delivered {
                        publish.dropped_units += 1;
                    }
                }),
            };
            if let Err(SendError::Closed) = sent {
                result = Err(IngestError::ConsumerGone);
                break;
            }
        }
        events.clear();
        self.events = events;
        result
    }

    /// Ends the publish (if any): logs its summary, drops the sink, calls `on_unpublish`.
    fn end_publish(&mut self, reason: &Result<(), IngestError>) {
        let Some(publish) = self.publish.take() else { return };
        let stats = publish.demuxer.stats;
        let why = match reason {
            Ok(()) => "the publisher stopped".to_owned(),
            Err(err) if err.is_client_closed() => "the publisher disconnected".to_owned(),
            Err(err) => err.to_string(),
        };
        tracing::info!(
            publish_id = publish.grant.publish_id,
            seconds = publish.started.elapsed().as_secs(),
            video_units = stats.video_units,
            audio_units = stats.audio_units,
            dropped_units = publish.dropped_units,
            announcements = stats.announcements,
            "publish ended: {why}"
        );
        if !publish.demuxer.warnings.is_empty() {
            tracing::info!(publish_id = publish.grant.publish_id, "stream warnings: {}", publish.demuxer.warnings);
        }
        drop(publish);
        self.deadline.restart(self.config().publish_deadline);
    }

    /// Ends what is left, closes the socket and says how the connection ended.
    async fn finish(mut self, outcome: Result<(), IngestError>) -> Ended {
        if let Some(refusal) = self.refusal.take() {
            self.shared.refusals.refused(self.peer, &refusal);
            self.linger().await;
            return Ended::Refused;
        }
        let published = self.publish.is_some();
        self.end_publish(&outcome);
        if !self.warnings.is_empty() {
            tracing::debug!("connection warnings: {}", self.warnings);
        }
        match &outcome {
            Ok(()) => Ended::Closed,
            Err(err) if err.is_client_closed() => {
                tracing::debug!(%err, "client closed the connection");
                Ended::Closed
            }
            Err(IngestError::Shutdown) => Ended::Shutdown,
            Err(err) if err.is_consumer_gone() => Ended::ConsumerGone,
            Err(err) if err.is_overload() => {
                tracing::debug!(%err, "connection closed");
                Ended::Shed
            }
            Err(err) if err.is_protocol_error() || err.is_timeout() => {
                if !published {
                    tracing::debug!(%err, "connection closed");
                }
                Ended::ClientFault
            }
            Err(err) => {
                if !published {
                    tracing::info!(%err, "connection closed");
                }
                Ended::Other
            }
        }
    }

    /// Closes our side and drains the client's for a moment, so that it
    /// reads our last status instead of a reset.
    async fn linger(&mut self) {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.stream.shutdown()).await;
        let drain = async {
            let mut sink = [0u8; 4096];
            let mut left = 64 * 1024usize;
            while left > 0 {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
    }
}

/// The connection's one deadline: reach `connect`, then `publish`, in time
/// (both counted from accept), then keep sending media. Updated by the
/// session, watched by `expired`.
struct Deadline {
    /// tokio's clock, so tests can run it paused.
    start: tokio::time::Instant,
    /// Milliseconds after `start`; `u64::MAX` while paused.
    at_ms: AtomicU64,
    /// `CONNECT_DEADLINE`, `PUBLISH_DEADLINE` or `IDLE_DEADLINE`.
    kind: AtomicU64,
    /// The span the current deadline was set with, for the error.
    span_ms: AtomicU64,
}

const PUBLISH_DEADLINE: u64 = 0;
const IDLE_DEADLINE: u64 = 1;
const CONNECT_DEADLINE: u64 = 2;

fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u64::MAX as u128 / 2) as u64
}

impl Deadline {
    fn new(connect: Duration, publish: Duration) -> Self {
        let deadline = Self {
            start: tokio::time::Instant::now(),
            at_ms: AtomicU64::new(u64::MAX),
            kind: AtomicU64::new(CONNECT_DEADLINE),
            span_ms: AtomicU64::new(0),
        };
        let connect = connect.min(publish);
        deadline.set_at(CONNECT_DEADLINE, millis(connect), connect);
        deadline
    }

    fn set(&self, kind: u64, after: Duration) {
        self.set_at(kind, self.now_ms().saturating_add(millis(after)), after);
    }

    fn set_at(&self, kind: u64, at_ms: u64, span: Duration) {
        self.kind.store(kind, Ordering::Relaxed);
        self.span_ms.store(millis(span), Ordering::Relaxed);
        self.at_ms.store(at_ms, Ordering::Relaxed);
    }

    /// `connect` arrived: `publish` is due `publish` after accept.
    fn connected(&self, publish: Duration) {
        if self.kind.load(Ordering::Relaxed) == CONNECT_DEADLINE {
            self.set_at(PUBLISH_DEADLINE, millis(publish), publish);
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// No deadline while the handler decides (it has its own timeout).
    fn pause(&self) {
        self.at_ms.store(u64::MAX, Ordering::Relaxed);
    }

    /// Media arrived: the publisher may stay quiet for `idle` from now.
    fn extend(&self, idle: Duration) {
        self.set(IDLE_DEADLINE, idle);
    }

    /// The publish ended but the connection stays: it must publish again or go.
    fn restart(&self, handshake: Duration) {
        self.set(PUBLISH_DEADLINE, handshake);
    }

    /// Resolves when the deadline passes without having been moved.
    async fn expired(&self) -> IngestError {
        loop {
            let at = self.at_ms.load(Ordering::Relaxed);
            let now = self.now_ms();
            if at != u64::MAX && now >= at {
                let span = Duration::from_millis(self.span_ms.load(Ordering::Relaxed));
                return match self.kind.load(Ordering::Relaxed) {
                    IDLE_DEADLINE => IngestError::Idle(span),
                    CONNECT_DEADLINE => IngestError::ConnectDeadline(span),
                    _ => IngestError::PublishDeadline(span),
                };
            }
            let wait = if at == u64::MAX { 1_000 } else { at - now };
            tokio::time::sleep(Duration::from_millis(wait.min(1_000))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadline_fires_unless_moved() {
        let secs = Duration::from_secs;
        let deadline = Deadline::new(secs(5), secs(10));
        let err = tokio::time::timeout(secs(6), deadline.expired()).await.unwrap();
        assert!(matches!(err, IngestError::ConnectDeadline(d) if d == secs(5)), "{err:?}");

        // `connect` after 3 s: `publish` is due 10 s after accept, not after connect.
        let deadline = Deadline::new(secs(5), secs(10));
        tokio::time::advance(secs(3)).await;
        deadline.connected(secs(10));
        assert!(tokio::time::timeout(secs(6), deadline.expired()).await.is_err());
        let err = tokio::time::timeout(secs(2), deadline.expired()).await.unwrap();
        assert!(matches!(err, IngestError::PublishDeadline(d) if d == secs(10)), "{err:?}");

        // A connect deadline longer than the publish deadline is cut to it.
        let deadline = Deadline::new(secs(30), secs(10));
        let err = tokio::time::timeout(secs(11), deadline.expired()).await.unwrap();
        assert!(matches!(err, IngestError::ConnectDeadline(d) if d == secs(10)), "{err:?}");

        let deadline = Deadline::new(secs(5), secs(10));
        deadline.pause();
        assert!(tokio::time::timeout(Duration::from_secs(60), deadline.expired()).await.is_err());
        deadline.extend(Duration::from_secs(3));
        let err = tokio::time::timeout(Duration::from_secs(4), deadline.expired()).await.unwrap();
        assert!(matches!(err, IngestError::Idle(d) if d == Duration::from_secs(3)), "{err:?}");
    }
}
