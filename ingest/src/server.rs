//! The RTMP listener (or RTMPS: the same after a TLS handshake, which must
//! finish within the connect deadline): admits connections within the limits (`admission`),
//! runs each in its own task with a tracing span, counts how connections end
//! (reported once a minute, never per connection), summarises publish
//! refusals (`refusal_log`), and shuts down on request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::admission::{Admission, Rejection};
use crate::client_address::ClientAddress;
use crate::handler::IngestHandler;
pub use crate::ingest_config::IngestConfig;
use crate::memory_budget::MemoryBudget;
use crate::server_state::Shared;
use crate::session::{self, Admitted, Ended};

/// Connection figures of a running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections being served now.
    pub open: usize,
    /// Of those, the ones that have not published with a valid key.
    pub unauthenticated: usize,
    /// Unauthenticated connections displaced by newer ones so far.
    pub displaced: u64,
    /// Connections closed on accept so far because their address held its
    /// share of unauthenticated connections.
    pub refused_per_address: u64,
    /// Connections closed on accept so far because every slot (or the whole
    /// unauthenticated budget) was taken and nobody could be displaced.
    pub refused_full: u64,
    /// Bytes of unfinished messages unauthenticated connections hold now,
    /// and the most they held at once.
    pub unauthenticated_buffered: usize,
    pub unauthenticated_buffered_peak: usize,
}

/// How often the counters of refused and failed connections are logged (when non-zero).
const REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// How long connections get to end after shutdown before their tasks are aborted.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// A bound RTMP listener, not yet serving.
pub struct RtmpServer<H> {
    listener: TcpListener,
    shared: Arc<Shared>,
    handler: Arc<H>,
    admission: Arc<Admission>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl<H: IngestHandler> RtmpServer<H> {
    /// Binds the listener (use port 0 for an ephemeral port).
    pub async fn bind(addr: impl ToSocketAddrs, config: IngestConfig, handler: Arc<H>) -> io::Result<Self> {
        config.validate().map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
        let listener = TcpListener::bind(addr).await?;
        let admission = Admission::new(config.limits());
        Ok(Self { listener, shared: Shared::new(config), handler, admission, tls: None })
    }

    /// A reader of this listener's connection counts that outlives `run` (for metrics).
    pub fn meter(&self) -> ConnectionMeter {
        ConnectionMeter { admission: self.admission.clone(), budget: self.shared.budget.clone() }
    }

    /// RTMPS: each connection's TLS handshake comes first.
    pub fn with_tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, closes every
    /// connection (each granted publish ends with `on_unpublish`) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { listener, shared, handler, admission, tls } = self;
        let config = &shared.config;
        let local = listener.local_addr().ok();
        tracing::info!(
            addr = ?local,
            max_connections = config.max_connections,
            max_unauthenticated = config.max_unauthenticated,
            max_unauthenticated_per_address = config.max_unauthenticated_per_address,
            tls = tls.is_some(),
            "RTMP ingest listening"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut counts = Counts::default();
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        report.tick().await;
        let mut refusal_report = tokio::time::interval(config.refusal_log_interval);
        refusal_report.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match admission.admit(peer.ip()) {
                        Ok((ticket, eviction)) => {
                            let _ = stream.set_nodelay(true);
                            let span = tracing::info_span!(
                                "rtmp",
                                %peer,
                                key = tracing::field::Empty,
                                label = tracing::field::Empty
                            );
                            let admitted = Admitted { ticket, eviction };
                            let (handler, shared, stop) = (handler.clone(), shared.clone(), stop_rx.clone());
                            let tls = tls.clone();
                            let task = async move {
                                let Some(tls) = tls else {
                                    return session::serve(stream, peer, handler, shared, admitted, stop).await;
                                };
                                let deadline = shared.config.connect_deadline;
                                match tokio::time::timeout(deadline, tls.accept(stream)).await {
                                    Ok(Ok(stream)) => session::serve(stream, peer, handler, shared, admitted, stop).await,
                                    Ok(Err(error)) => {
                                        tracing::debug!(%error, "rtmps: TLS handshake failed");
                                        Ended::ClientFault
                                    }
                                    Err(_) => {
                                        tracing::debug!("rtmps: no TLS handshake within the connect deadline");
                                        Ended::ClientFault
                                    }
                                }
                            };
                            tasks.spawn(task.instrument(span));
                        }
                        Err(rejection) => {
                            counts.reject(rejection, peer, config);
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
                _ = refusal_report.tick() => shared.refusals.report(),
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
        shared.refusals.report_all();
        tracing::info!(addr = ?local, "RTMP ingest stopped");
    }

    /// Serves on a task of its own. Dropping the handle (or calling
    /// `shutdown`) stops accepting and closes every connection.
    pub fn spawn(self) -> io::Result<RtmpServerHandle> {
        let local_addr = self.local_addr()?;
        let meter = self.meter();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        Ok(RtmpServerHandle { local_addr, stop: Some(stop), task: Some(task), meter })
    }
}

/// A running server. Dropping it stops the server (in the background);
/// `shutdown` stops it and waits until every connection has closed.
#[derive(Debug)]
pub struct RtmpServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    meter: ConnectionMeter,
}

/// Reads a listener's connection counts at any time, while it serves and after.
#[derive(Debug, Clone)]
pub struct ConnectionMeter {
    admission: Arc<Admission>,
    budget: Arc<MemoryBudget>,
}

impl ConnectionMeter {
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.admission.open(),
            unauthenticated: self.admission.unauthenticated(),
            displaced: self.admission.evicted(),
            refused_per_address: self.admission.rejected(Rejection::Address),
            refused_full: self.admission.rejected(Rejection::Full)
                + self.admission.rejected(Rejection::Unauthenticated),
            unauthenticated_buffered: self.budget.used(),
            unauthenticated_buffered_peak: self.budget.peak(),
        }
    }
}

impl RtmpServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.meter.stats().open
    }

    pub fn stats(&self) -> ConnectionStats {
        self.meter.stats()
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
    /// Closed on accept: every slot, or the unauthenticated budget, was taken.
    over_limit: u64,
    /// Closed on accept: the client address held its share of unauthenticated connections.
    over_address_limit: u64,
    /// Closed to protect the server: displaced, or over the pre-publish memory budget.
    shed: u64,
    accept_errors: u64,
    other: u64,
}

impl Counts {
    /// A connection closed on accept; the first of each kind per report is logged.
    fn reject(&mut self, rejection: Rejection, peer: SocketAddr, config: &IngestConfig) {
        match rejection {
            Rejection::Full | Rejection::Unauthenticated => {
                if self.over_limit == 0 {
                    tracing::warn!(
                        %peer,
                        max_connections = config.max_connections,
                        max_unauthenticated = config.max_unauthenticated,
                        full = ?rejection,
                        "connection limit reached; closing new connections (further ones are counted)"
                    );
                }
                self.over_limit += 1;
            }
            Rejection::Address => {
                if self.over_address_limit == 0 {
                    tracing::warn!(
                        address = %ClientAddress::of(peer.ip()),
                        limit = config.max_unauthenticated_per_address,
                        "a client address holds its most connections that have not published; closing new ones from it (further ones are counted)"
                    );
                }
                self.over_address_limit += 1;
            }
        }
    }

    fn add(&mut self, joined: Result<Ended, tokio::task::JoinError>) {
        match joined {
            Ok(Ended::ClientFault) => self.client_faults += 1,
            Ok(Ended::Refused) => self.refused += 1,
            Ok(Ended::Shed) => self.shed += 1,
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
        let Counts { client_faults, refused, over_limit, over_address_limit, shed, accept_errors, other } = *self;
        if client_faults + refused + over_limit + over_address_limit + shed + accept_errors + other > 0 {
            tracing::info!(
                client_faults,
                refused,
                over_limit,
                over_address_limit,
                shed,
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
                IngestConfig { max_unauthenticated: 65, ..ok.clone() },
                "ingest: max_unauthenticated must be between 1 and max_connections (64)",
            ),
            (
                IngestConfig { max_unauthenticated: 0, ..ok.clone() },
                "ingest: max_unauthenticated must be between 1 and max_connections (64)",
            ),
            (
                IngestConfig { max_unauthenticated_per_address: 33, ..ok.clone() },
                "ingest: max_unauthenticated_per_address must be between 1 and max_unauthenticated (32)",
            ),
            (
                IngestConfig { publish_deadline: Duration::ZERO, ..ok.clone() },
                "ingest: publish_deadline must be longer than 0",
            ),
            (
                IngestConfig { connect_deadline: Duration::ZERO, ..ok.clone() },
                "ingest: connect_deadline must be longer than 0",
            ),
            (IngestConfig { idle_timeout: Duration::ZERO, ..ok.clone() }, "ingest: idle_timeout must be longer than 0"),
            (
                IngestConfig { unauthenticated_buffer: 8191, ..ok.clone() },
                "ingest: unauthenticated_buffer must be at least 8192 bytes (one pre-publish message)",
            ),
            (
                IngestConfig { refusal_log_interval: Duration::ZERO, ..ok.clone() },
                "ingest: refusal_log_interval must be longer than 0",
            ),
        ];
        for (config, want) in cases {
            assert_eq!(config.validate().unwrap_err(), want);
        }
    }
}
