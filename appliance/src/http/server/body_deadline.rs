//! A request body that must arrive in full within the body timeout of its
//! request's start. A request in progress is never idle (it has no deadline
//! of its own), so without this a client sending its body a byte at a time
//! would hold its connection, busy and never shed, for as long as it likes.
//! Past the deadline the body fails; the handler answers (axum: 400) and
//! the request ends. The timer is only made when the body is awaited and not
//! there yet, so bodiless requests cost nothing.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// `B` with a deadline.
pub struct Deadlined<B> {
    body: B,
    deadline: Instant,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> Deadlined<B> {
    /// `body`, due in full `timeout` from now.
    pub fn new(body: B, timeout: Duration) -> Deadlined<B> {
        Deadlined { body, deadline: Instant::now() + timeout, timeout, timer: None }
    }
}

impl<B> http_body::Body for Deadlined<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    #[tokio::test]
    async fn a_body_that_comes_in_time_passes_and_one_that_does_not_fails() {
        let whole = Deadlined::new(http_body_util::Full::new(Bytes::from_static(b"{}")), Duration::from_secs(1));
        assert_eq!(whole.collect().await.unwrap().to_bytes(), Bytes::from_static(b"{}"));

        // One frame now, then nothing: the deadline passes.
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        sender.send(Ok(Frame::data(Bytes::from_static(b"{")))).await.unwrap();
        let stream = tokio_stream_from(receiver);
        let slow = Deadlined::new(StreamBody::new(stream), Duration::from_millis(100));
        let error = tokio::time::timeout(Duration::from_secs(10), slow.collect()).await.unwrap().unwrap_err();
        assert!(error.is::<BodyTimedOut>(), "{error}");
        drop(sender);
    }

    /// A receiver as a stream of frames.
    fn tokio_stream_from(
        receiver: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Unpin {
        Box::pin(futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        }))
    }
}
