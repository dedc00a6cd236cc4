//! The RTMP listener: accepts connections up to a limit, runs each in its own
//! task with a tracing span, counts how connections end (reported once a
//! minute, never per connection), and shuts down on request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::handler::IngestHandler;
use crate::session::{self, Ended};

/// Limits of the RTMP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// From accept to `publish` (handshake, connect, createStream); also the
    /// time the handler has to decide. Stops slowloris handshakes from
    /// holding a slot (scuffle alone only times out a single silent read).
    pub handshake_deadline: Duration,
    /// A publisher that sends no audio or video for this long is dropped.
    pub idle_timeout: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { max_connections: 64, handshake_deadline: Duration::from_secs(10), idle_timeout: Duration::from_secs(10) }
    }
}

impl IngestConfig {
    /// Refuses limits that would close every connection.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("ingest: max_connections must be at least 1".to_owned());
        }
        if self.handshake_deadline.is_zero() {
            return Err("ingest: handshake_deadline must be longer than 0".to_owned());
        }
        if self.idle_timeout.is_zero() {
            return Err("ingest: idle_timeout must be longer than 0".to_owned());
        }
        Ok(())
    }
}

/// How often the counters of refused and failed connections are logged (when non-zero).
const REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// How long connections get to end after shutdown before their tasks are aborted.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// A bound RTMP listener, not yet serving.
pub struct RtmpServer<H> {
    listener: TcpListener,
    config: IngestConfig,
    handler: Arc<H>,
    slots: Arc<Semaphore>,
}

impl<H: IngestHandler> RtmpServer<H> {
    /// Binds the listener (use port 0 for an ephemeral port).
    pub async fn bind(addr: impl ToSocketAddrs, config: IngestConfig, handler: Arc<H>) -> io::Result<Self> {
        config.validate().map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
        let listener = TcpListener::bind(addr).await?;
        let slots = Arc::new(Semaphore::new(config.max_connections));
        Ok(Self { listener, config, handler, slots })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, closes every
    /// connection (each granted publish ends with `on_unpublish`) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { listener, config, handler, slots } = self;
        let config = Arc::new(config);
        let local = listener.local_addr().ok();
        tracing::info!(addr = ?local, max_connections = config.max_connections, "RTMP ingest listening");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut counts = Counts::default();
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        report.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let span = tracing::info_span!(
                                "rtmp",
                                %peer,
                                key = tracing::field::Empty,
                                label = tracing::field::Empty
                            );
                            let task = session::serve(stream, peer, handler.clone(), config.clone(), stop_rx.clone());
                            tasks.spawn(
                                async move {
                                    let ended = task.await;
                                    drop(slot);
                                    ended
                                }
                                .instrument(span),
                            );
                        }
                        Err(_) => {
                            if counts.over_limit == 0 {
                                tracing::warn!(%peer, limit = config.max_connections, "connection limit reached; closing new connections (further ones are counted)");
                            }
                            counts.over_limit += 1;
                            drop(stream);
                        }
                    },
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        if counts.accept_errors == 0 {
                            tracing::warn!(%err, "accept failed (further failures are counted)");
                        }
                        counts.accept_errors += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => counts.add(joined),
                _ = report.tick() => counts.report(),
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
            while let Some(joined) = tasks.join_next().await {
                counts.add(joined);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = tasks.len(), "connections did not close in time; aborting them");
            tasks.shutdown().await;
        }
        counts.report();
        tracing::info!(addr = ?local, "RTMP ingest stopped");
    }

    /// Serves on a task of its own. Dropping the handle (or calling
    /// `shutdown`) stops accepting and closes every connection.
    pub fn spawn(self) -> io::Result<RtmpServerHandle> {
        let local_addr = self.local_addr()?;
        let slots = self.slots.clone();
        let max_connections = self.config.max_connections;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        Ok(RtmpServerHandle { local_addr, stop: Some(stop), task: Some(task), slots, max_connections })
    }
}

/// A running server. Dropping it stops the server (in the background);
/// `shutdown` stops it and waits until every connection has closed.
#[derive(Debug)]
pub struct RtmpServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    slots: Arc<Semaphore>,
    max_connections: usize,
}

impl RtmpServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.max_connections - self.slots.available_permits()
    }

    /// Stops accepting, closes every connection and waits for them.
    pub async fn shutdown(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RtmpServerHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

/// How connections ended since the last report.
#[derive(Debug, Default)]
struct Counts {
    client_faults: u64,
    refused: u64,
    over_limit: u64,
    accept_errors: u64,
    other: u64,
}

impl Counts {
    fn add(&mut self, joined: Result<Ended, tokio::task::JoinError>) {
        match joined {
            Ok(Ended::ClientFault) => self.client_faults += 1,
            Ok(Ended::Refused) => self.refused += 1,
            Ok(Ended::Other) => self.other += 1,
            Ok(Ended::Closed | Ended::ConsumerGone | Ended::Shutdown) => {}
            Err(err) if err.is_panic() => {
                // Our bug, not the client's: the publish (if any) was still ended by its guard.
                tracing::error!(%err, "connection task panicked");
                self.other += 1;
            }
            Err(_) => {}
        }
    }

    fn report(&mut self) {
        let Counts { client_faults, refused, over_limit, accept_errors, other } = *self;
        if client_faults + refused + over_limit + accept_errors + other > 0 {
            tracing::info!(
                client_faults,
                refused,
                over_limit,
                accept_errors,
                other,
                "RTMP connections closed early since the last report"
            );
        }
        *self = Counts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors() {
        let ok = IngestConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (IngestConfig { max_connections: 0, ..ok.clone() }, "ingest: max_connections must be at least 1"),
            (
                IngestConfig { handshake_deadline: Duration::ZERO, ..ok.clone() },
                "ingest: handshake_deadline must be longer than 0",
            ),
            (IngestConfig { idle_timeout: Duration::ZERO, ..ok.clone() }, "ingest: idle_timeout must be longer than 0"),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate().unwrap_err(), want);
        }
    }
}
