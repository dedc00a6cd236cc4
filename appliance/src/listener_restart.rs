//! Keeps a listener serving: when it stops on its own before shutdown (a
//! bug a client can reach inside a third-party protocol stack, such as
//! srt-tokio's listener task panicking on a malformed encrypted handshake,
//! which ends its stream of callers), it is bound and started again after a
//! pause, and each restart is logged as an alert.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// The pause before a stopped listener is started again (a client repeating
/// what stopped it cannot spin the box).
const PAUSE: Duration = Duration::from_secs(1);

/// Runs `serve(attempt)` (which returns when its listener stops, on its own
/// or at shutdown) again and again until `shutdown` turns true; returns how
/// many times it was restarted.
pub async fn keep_serving<F, Fut>(name: &'static str, mut serve: F, mut shutdown: watch::Receiver<bool>) -> u32
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut restarts = 0;
    loop {
        serve(restarts).await;
        if *shutdown.borrow() {
            return restarts;
        }
        restarts += 1;
        tracing::error!(
            alert = "listener-restarted",
            listener = name,
            restarts,
            "the {name} listener stopped on its own; starting it again in {} s",
            PAUSE.as_secs()
        );
        tokio::select! {
            () = tokio::time::sleep(PAUSE) => {}
            _ = shutdown.wait_for(|stop| *stop) => return restarts,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_listener_that_stops_on_its_own_is_started_again_until_shutdown() {
        let (stop, shutdown) = watch::channel(false);
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let listener_shutdown = shutdown.clone();
        let serving = tokio::spawn(keep_serving(
            "test",
            move |attempt| {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut shutdown = listener_shutdown.clone();
                async move {
                    // The first two stop on their own at once; the third serves until shutdown.
                    if attempt >= 2 {
                        let _ = shutdown.wait_for(|s| *s).await;
                    }
                }
            },
            shutdown.clone(),
        ));
        test_tools::eventually(Duration::from_secs(30), || async { (calls.load(Ordering::SeqCst) == 3).then_some(()) })
            .await
            .expect("started three times");
        stop.send(true).unwrap();
        assert_eq!(serving.await.unwrap(), 2, "two restarts, then shutdown ended it");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
