//! The SRT listener: one UDP port for every channel. Each caller's request
//! is decided on a task of its own (streamid, the channel's passphrase, the
//! handler's grant), so a slow decision never holds up other callers.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{ListenerOptions, SocketOptions};
use srt_tokio::{SrtIncoming, SrtListener};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::connection;
use super::srt_config::SrtConfig;
use crate::handler::IngestHandler;
use crate::refusal_log::{MAX_ADDRESSES, RefusalLog};

/// How long connections get to end after shutdown before they are aborted.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// An SRT listener bound to its port, not yet serving.
pub struct SrtServer<H: IngestHandler> {
    listener: SrtListener,
    incoming: SrtIncoming,
    local_addr: SocketAddr,
    handler: Arc<H>,
    config: Arc<SrtConfig>,
}

impl<H: IngestHandler> SrtServer<H> {
    pub async fn bind(addr: SocketAddr, config: SrtConfig, handler: Arc<H>) -> io::Result<Self> {
        let mut socket = SocketOptions::default();
        socket.receiver.latency = config.latency;
        socket.sender.peer_latency = config.latency;
        socket.session.peer_idle_timeout = config.idle_timeout;
        // Bound first, so that port 0 (tests) works: srt-tokio's options refuse it.
        socket.connect.local = addr;
        let udp = srt_tokio::bind_socket(&socket).await?;
        let local_addr = udp.local_addr()?;
        let options = ListenerOptions::with(local_addr, socket)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let (listener, incoming) = SrtListener::bind_with_socket(options, udp).await?;
        Ok(Self { listener, incoming, local_addr, handler, config: Arc::new(config) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops taking callers, ends every
    /// connection (each granted publish ends with `on_unpublish`) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { mut listener, mut incoming, local_addr, handler, config } = self;
        tracing::info!(addr = %local_addr, latency_ms = config.latency.as_millis() as u64, "SRT ingest listening");
        let refusals = Arc::new(RefusalLog::new(config.refusal_log_interval, MAX_ADDRESSES));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut refusal_report = tokio::time::interval(config.refusal_log_interval);
        refusal_report.tick().await;
        let mut over_limit = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                request = incoming.incoming().next() => {
                    let Some(request) = request else {
                        tracing::error!("the SRT listener stopped; SRT callers are not taken until a restart");
                        break;
                    };
                    let peer = request.remote();
                    if tasks.len() >= config.max_connections {
                        if over_limit == 0 {
                            tracing::warn!(%peer, max = config.max_connections, "SRT connection limit reached; rejecting callers (further ones are counted)");
                        }
                        over_limit += 1;
                        tasks.spawn(async move {
                            let _ = request.reject(RejectReason::Server(ServerRejectReason::Overload)).await;
                        });
                        continue;
                    }
                    let span = tracing::info_span!("srt", %peer, key = tracing::field::Empty, label = tracing::field::Empty);
                    let task = connection::serve(request, handler.clone(), config.clone(), refusals.clone(), stop_rx.clone());
                    tasks.spawn(task.instrument(span));
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(err) = joined
                        && err.is_panic()
                    {
                        tracing::error!(%err, "SRT connection task panicked");
                    }
                }
                _ = refusal_report.tick() => {
                    refusals.report();
                    if over_limit > 0 {
                        tracing::warn!(rejected = over_limit, "SRT callers rejected at the connection limit since the last report");
                        over_limit = 0;
                    }
                }
            }
        }
        let _ = stop_tx.send(true);
        if tokio::time::timeout(DRAIN_DEADLINE, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!(left = tasks.len(), "SRT connections did not close in time; aborting them");
            tasks.shutdown().await;
        }
        refusals.report_all();
        let _ = tokio::time::timeout(DRAIN_DEADLINE, listener.close()).await;
        tracing::info!(addr = %local_addr, "SRT ingest stopped");
    }

    /// Serves on a task of its own. Dropping the handle (or calling
    /// `shutdown`) stops the listener and ends every connection.
    pub fn spawn(self) -> SrtServerHandle {
        let local_addr = self.local_addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        SrtServerHandle { local_addr, stop: Some(stop), task: Some(task) }
    }
}

/// A running SRT listener.
#[derive(Debug)]
pub struct SrtServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SrtServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops taking callers, ends every connection and waits for them.
    pub async fn shutdown(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SrtServerHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}
