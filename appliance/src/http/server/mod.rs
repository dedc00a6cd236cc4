//! The HTTP server of the TCP listener: our accept loop over hyper's HTTP/1.1
//! connections (in place of `axum::serve`, which has no timeouts and no
//! caps), so that idle and slow clients cannot hold the box: a header
//! timeout (slowloris), a body timeout, an idle keep-alive timeout, caps on connections in
//! total and per client address that shed the longest idle connection to
//! make room (`registry`), `accept` failures that back off and are logged as
//! counts (`accept_errors`), and TCP_NODELAY (parts are streamed frame by
//! frame; Nagle's algorithm would hold them back). The HTTPS listener is the
//! same server with a TLS handshake first (bounded by the header timeout;
//! ALPN picks HTTP/2 or HTTP/1.1). At shutdown it stops
//! accepting, closes idle connections, lets requests in progress finish,
//! and returns when every connection is gone.

pub mod accept_errors;
pub mod activity;
pub mod body_deadline;
pub mod connection;
pub mod registry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::http::client_address::TrustedProxies;
use accept_errors::{AcceptErrors, AfterFailure};
use activity::Timeouts;
use connection::Protocol;
use registry::{Caps, Refused, Registry};

/// How often connections shed or refused are summarised in the log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeouts: Timeouts,
    pub caps: Caps,
    /// Peers exempt from the per-address cap (the trusted reverse proxies).
    pub exempt: TrustedProxies,
}

/// The TCP listener's HTTP server, bound and not yet serving.
pub struct HttpServer {
    listener: TcpListener,
    timeouts: Timeouts,
    registry: Arc<Registry>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer").field("listener", &self.listener).field("tls", &self.tls.is_some()).finish()
    }
}

impl HttpServer {
    pub fn new(listener: TcpListener, limits: Limits) -> HttpServer {
        let registry = Arc::new(Registry::new(limits.caps, limits.exempt));
        HttpServer { listener, timeouts: limits.timeouts, registry, tls: None }
    }

    /// The same server speaking TLS first (HTTPS), with HTTP/2 where the client offers it.
    pub fn with_tls(mut self, identity: &crate::tls::TlsIdentity) -> HttpServer {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(identity.server_config.clone()));
        self
    }

    /// The open connections (for figures and tests).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Serves `app` until `shutdown` turns true, then drains (see the module's note).
    pub async fn run(self, app: Router, mut shutdown: watch::Receiver<bool>) {
        let HttpServer { listener, timeouts, registry, tls } = self;
        let local = listener.local_addr().unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        // Every connection task holds a clone; recv() returns None once all are gone.
        let (alive, mut all_gone) = mpsc::channel::<()>(1);
        let mut errors = AcceptErrors::default();
        let mut report = Report::default();
        let mut tick = tokio::time::interval(REPORT_EVERY);
        tick.tick().await;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = tick.tick() => {
                    report.log(&registry);
                    continue;
                }
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if let AfterFailure::Pause { pause, out_of_descriptors } = errors.failed(&error, Instant::now()) {
                        registry.note_accept_failure();
                        if out_of_descriptors {
                            registry.shed_longest_idle();
                        }
                        tokio::time::sleep(pause).await;
                    }
                    continue;
                }
            };
            errors.succeeded();
            match registry.admit(peer.ip(), Instant::now()) {
                Ok(admitted) => {
                    let _ = stream.set_nodelay(true);
                    let ends = connection::Ends { peer, local: stream.local_addr().unwrap_or(local) };
                    let (app, shutdown, alive, tls) = (app.clone(), shutdown.clone(), alive.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            None => {
                                connection::serve(
                                    stream,
                                    ends,
                                    app,
                                    admitted,
                                    timeouts,
                                    shutdown,
                                    Protocol::Http1,
                                    false,
                                )
                                .await
                            }
                            Some(tls) => {
                                // A client that does not finish its handshake in time is cut like a slow head.
                                let Ok(Ok(stream)) = tokio::time::timeout(timeouts.header, tls.accept(stream)).await
                                else {
                                    tracing::debug!(%peer, "https: no TLS handshake in time, or a failed one");
                                    return;
                                };
                                let protocol = match stream.get_ref().1.alpn_protocol() {
                                    Some(b"h2") => Protocol::Http2,
                                    _ => Protocol::Http1,
                                };
                                connection::serve(stream, ends, app, admitted, timeouts, shutdown, protocol, true).await
                            }
                        }
                        drop(alive);
                    });
                }
                // Over TLS a plain-text answer is noise: the client sees the connection close.
                Err(_) if tls.is_some() => drop(stream),
                Err(why) => refuse(stream, why),
            }
        }
        drop(listener);
        drop(alive);
        let _ = all_gone.recv().await;
        report.log(&registry);
    }
}

/// Answers 503 if the socket takes it at once, and closes.
fn refuse(stream: TcpStream, why: Refused) {
    const BUSY: &[u8] =
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    tracing::debug!(?why, "http: connection refused, every connection in its way is busy");
    // As a plain socket: tokio's `try_write` knows no readiness of a socket
    // just accepted. The answer fits an empty send buffer; half-closing after
    // it makes the client likelier to read it than a reset.
    if let Ok(mut stream) = stream.into_std() {
        let _ = std::io::Write::write(&mut stream, BUSY);
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

/// The counts of the last report, to log only what changed.
#[derive(Debug, Default)]
struct Report {
    shed: u64,
    refused: u64,
}

impl Report {
    fn log(&mut self, registry: &Registry) {
        let (shed, refused) = (registry.shed_count(), registry.refused_count());
        if (shed, refused) != (self.shed, self.refused) {
            tracing::warn!(
                open = registry.open(),
                shed = shed - self.shed,
                refused = refused - self.refused,
                "http: connection caps reached: idle connections shed and busy ones refused (counts since the last report)"
            );
            (self.shed, self.refused) = (shed, refused);
        }
    }
}
