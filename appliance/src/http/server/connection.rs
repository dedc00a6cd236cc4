//! One HTTP connection served by hyper, HTTP/1.1 (plain or over TLS) or
//! HTTP/2 (over TLS, by ALPN): every request reaches the app with the peer's
//! `ConnectInfo<SocketAddr>` (as `axum::serve` gives it) and whether it came
//! over TLS (`OverTls`), and the connection closes when its activity's
//! deadline passes (header or idle timeout), when the registry sheds it to
//! make room, or, at shutdown, once its requests in progress are answered.
//! On HTTP/2 only requests count as activity (frames between them, pings
//! and window updates, do not start a header timeout).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tower::ServiceExt;

use super::activity::{Activity, Busy, Timeouts};
use super::body_deadline::Deadlined;
use super::registry::Admitted;

/// A request's head and the response's buffered bytes, at most (hyper's
/// default is about 400 KiB, which a thousand dribbling clients multiply).
const MAX_BUFFER: usize = 64 * 1024;
/// How long a connection closed while idle gets to flush what it was writing.
const CLOSING_GRACE: Duration = Duration::from_secs(1);
/// Requests at once on one HTTP/2 connection (a player needs a few: a held
/// playlist reload, a part in progress, the next part).
const MAX_STREAMS: u32 = 100;

/// Which HTTP a connection speaks: HTTP/2 when TLS's ALPN chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// A request's extension: whether it came over TLS (the console's cookies are then `Secure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls(pub bool);

/// A request's extension: the box's own address the client reached (WHIP
/// offers the same address as its ICE candidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// The two ends of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// Why a connection was closed by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Deadline,
    Shed,
    Shutdown,
}

/// Serves `stream` until the client or one of our reasons closes it.
#[allow(clippy::too_many_arguments)]
pub async fn serve<S>(
    stream: S,
    ends: Ends,
    app: Router,
    admitted: Admitted,
    timeouts: Timeouts,
    shutdown: watch::Receiver<bool>,
    protocol: Protocol,
    over_tls: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The ticket keeps the connection counted until this function returns.
    let Admitted { activity, shed, ticket: _ticket } = admitted;
    let Ends { peer, local } = ends;
    let service = Dispatch {
        app,
        peer,
        local: LocalAddr(local),
        activity: activity.clone(),
        body_timeout: timeouts.body,
        over_tls: OverTls(over_tls),
    };
    let ending = Ending { peer, activity: &activity, timeouts, shed, shutdown };
    match protocol {
        Protocol::Http1 => {
            let io = TokioIo::new(Observed { stream, activity: activity.clone() });
            let mut builder = http1::Builder::new();
            builder.header_read_timeout(None).max_buf_size(MAX_BUFFER);
            ending.drive(builder.serve_connection(io, service)).await;
        }
        Protocol::Http2 => {
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder
                .max_concurrent_streams(MAX_STREAMS)
                .max_header_list_size(MAX_BUFFER as u32)
                .max_send_buf_size(MAX_BUFFER);
            ending.drive(builder.serve_connection(TokioIo::new(stream), service)).await;
        }
    }
}

/// A hyper connection that can be asked to finish what it has and close.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn close_gracefully(self: Pin<&mut Self>);
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Graceful
    for http1::Connection<TokioIo<Observed<S>>, Dispatch>
{
    fn close_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Graceful
    for http2::Connection<TokioIo<S>, Dispatch, TokioExecutor>
{
    fn close_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// What ends a connection besides its client.
struct Ending<'a> {
    peer: SocketAddr,
    activity: &'a Arc<Activity>,
    timeouts: Timeouts,
    shed: tokio::sync::oneshot::Receiver<()>,
    shutdown: watch::Receiver<bool>,
}

impl Ending<'_> {
    /// Runs `connection` until it ends or one of our reasons closes it.
    async fn drive(mut self, connection: impl Graceful) {
        let (peer, activity, timeouts) = (self.peer, self.activity, self.timeouts);
        tokio::pin!(connection);
        let closing = loop {
            let deadline = activity.deadline(&timeouts);
            let sleep_until = tokio::time::Instant::from_std(deadline.unwrap_or_else(far_future));
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "http: connection ended with an error");
                    }
                    return;
                }
                () = activity.changed() => {}
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                    if activity.deadline(&timeouts).is_some_and(|d| d <= Instant::now()) {
                        break Closing::Deadline;
                    }
                }
                _ = &mut self.shed => break Closing::Shed,
                _ = self.shutdown.wait_for(|stop| *stop) => break Closing::Shutdown,
            }
        };
        tracing::debug!(%peer, ?closing, reading_head = activity.is_reading_head(), "http: closing the connection");
        if activity.is_reading_head() {
            // Part of a head and no response in progress: nothing to lose.
            return;
        }
        connection.as_mut().close_gracefully();
        if activity.is_idle() {
            // Idle: hyper closes at once, after flushing what it was writing.
            let _ = tokio::time::timeout(CLOSING_GRACE, connection).await;
        } else {
            // Requests in progress (only at shutdown) are answered first; the server's drain deadline bounds it.
            let _ = connection.await;
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The app as hyper's service, for one connection.
#[derive(Clone)]
struct Dispatch {
    app: Router,
    peer: SocketAddr,
    local: LocalAddr,
    activity: Arc<Activity>,
    body_timeout: Duration,
    over_tls: OverTls,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Dispatch {
    type Response = hyper::Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = self.activity.begin_request();
        let mut request = request.map(|body| Body::new(Deadlined::new(body, self.body_timeout)));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(self.over_tls);
        request.extensions_mut().insert(self.local);
        let app = self.app.clone();
        Box::pin(async move {
            let Ok(response) = app.oneshot(request).await;
            Ok(response.map(|body| Tracked { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its request in progress until it is handed over in full (or dropped).
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling the activity when bytes arrive.
struct Observed<S> {
    stream: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Observed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read(Instant::now());
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Observed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
