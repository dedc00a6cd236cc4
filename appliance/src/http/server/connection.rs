//! One HTTP/1.1 connection served by hyper: every request reaches the app
//! with the peer's `ConnectInfo<SocketAddr>` (as `axum::serve` gives it),
//! and the connection closes when its activity's deadline passes (header or
//! idle timeout), when the registry sheds it to make room, or, at shutdown,
//! once its request in progress is answered.

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
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
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

/// Why a connection was closed by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Deadline,
    Shed,
    Shutdown,
}

/// Serves `stream` until the client or one of our reasons closes it.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    admitted: Admitted,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
) {
    // The ticket keeps the connection counted until this function returns.
    let Admitted { activity, mut shed, ticket: _ticket } = admitted;
    let io = TokioIo::new(Observed { stream, activity: activity.clone() });
    let service = Dispatch { app, peer, activity: activity.clone(), body_timeout: timeouts.body };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).max_buf_size(MAX_BUFFER);
    let connection = builder.serve_connection(io, service);
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
            _ = &mut shed => break Closing::Shed,
            _ = shutdown.wait_for(|stop| *stop) => break Closing::Shutdown,
        }
    };
    tracing::debug!(%peer, ?closing, reading_head = activity.is_reading_head(), "http: closing the connection");
    if activity.is_reading_head() {
        // Part of a head and no response in progress: nothing to lose.
        return;
    }
    connection.as_mut().graceful_shutdown();
    if activity.is_idle() {
        // Idle: hyper closes at once, after flushing what it was writing.
        let _ = tokio::time::timeout(CLOSING_GRACE, connection).await;
    } else {
        // A request in progress (only at shutdown) is answered first; the server's drain deadline bounds it.
        let _ = connection.await;
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
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Dispatch {
    type Response = hyper::Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = self.activity.begin_request();
        let mut request = request.map(|body| Body::new(Deadlined::new(body, self.body_timeout)));
        request.extensions_mut().insert(ConnectInfo(self.peer));
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
struct Observed {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Observed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read(Instant::now());
        }
        result
    }
}

impl AsyncWrite for Observed {
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
