//! The fixed pool of threads that hash passwords. One argon2id run takes
//! 19 MiB and tens of milliseconds of a core; run on a thread of its own per
//! attempt (`spawn_blocking`), 200 concurrent sign-ins took the process to
//! 3.3 GB. Here at most `workers` hashes run at once and at most `queue`
//! wait; a job beyond that is refused at once (`Busy`: the caller answers
//! 429), so the memory of password hashing is bounded by `workers` x 19 MiB
//! whatever the load. Every argon2 use of the running server goes through
//! it: the console's sign-in and the API's password change.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// Hashes at once: two, or one on a single core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(2)
}

/// Jobs waiting for a worker, at most.
pub const DEFAULT_QUEUE: usize = 8;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordWorkError {
    #[error("every password worker is busy and the queue is full")]
    Busy,
    #[error("the password worker stopped before finishing the job")]
    Stopped,
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool; its threads end when it is dropped.
#[derive(Debug)]
pub struct PasswordWorkers {
    jobs: SyncSender<Job>,
    workers: usize,
}

impl PasswordWorkers {
    /// Starts `workers` threads with room for `queue` jobs waiting.
    pub fn start(workers: usize, queue: usize) -> std::io::Result<PasswordWorkers> {
        let (jobs, waiting) = sync_channel::<Job>(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        for index in 0..workers.max(1) {
            let waiting = waiting.clone();
            std::thread::Builder::new().name(format!("password-{index}")).spawn(move || work(&waiting))?;
        }
        Ok(PasswordWorkers { jobs, workers: workers.max(1) })
    }

    /// Hashes run at once at most.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `job`, or refuses it at once when the queue is full; the
    /// returned future resolves to its result.
    pub fn try_run<T, J>(&self, job: J) -> Result<Queued<T>, PasswordWorkError>
    where
        T: Send + 'static,
        J: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(Queued(result)),
            Err(TrySendError::Full(_)) => Err(PasswordWorkError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(PasswordWorkError::Stopped),
        }
    }
}

/// A job queued on the workers: resolves to its result.
#[derive(Debug)]
pub struct Queued<T>(oneshot::Receiver<T>);

impl<T> Future for Queued<T> {
    type Output = Result<T, PasswordWorkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|result| result.map_err(|_| PasswordWorkError::Stopped))
    }
}

/// A worker: takes jobs until the pool is dropped. A job that panics ends
/// only itself (its caller sees `Stopped`).
fn work(waiting: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let queue = waiting.lock().unwrap_or_else(|e| e.into_inner());
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn at_most_workers_run_and_queue_wait_then_jobs_are_refused_at_once() {
        let pool = PasswordWorkers::start(2, 3).unwrap();
        // Two jobs hold both workers until released.
        let release = Arc::new(Barrier::new(3));
        let started = Arc::new(Barrier::new(3));
        let running: Vec<_> = (0..2)
            .map(|i| {
                let (release, started) = (release.clone(), started.clone());
                pool.try_run(move || {
                    started.wait();
                    release.wait();
                    i
                })
                .unwrap()
            })
            .collect();
        tokio::task::spawn_blocking({
            let started = started.clone();
            move || started.wait()
        })
        .await
        .unwrap();
        let queued: Vec<_> = (10..13).map(|i| pool.try_run(move || i).expect("room in the queue")).collect();
        assert_eq!(pool.try_run(|| 99).err(), Some(PasswordWorkError::Busy), "refused at once, not queued");
        tokio::task::spawn_blocking(move || release.wait()).await.unwrap();
        let mut results = Vec::new();
        for job in running.into_iter().chain(queued) {
            results.push(tokio::time::timeout(Duration::from_secs(10), job).await.unwrap().unwrap());
        }
        assert_eq!(results, [0, 1, 10, 11, 12]);
        let after = pool.try_run(|| 7).expect("room again");
        assert_eq!(after.await, Ok(7));
    }

    #[tokio::test]
    async fn a_job_that_panics_ends_only_itself() {
        let pool = PasswordWorkers::start(1, 1).unwrap();
        let panicked = pool.try_run(|| -> u8 { panic!("a bug in a job") }).unwrap();
        assert_eq!(panicked.await, Err(PasswordWorkError::Stopped));
        assert_eq!(pool.try_run(|| 5).unwrap().await, Ok(5), "the worker goes on");
        assert!(default_workers() >= 1 && default_workers() <= 2);
    }
}
