//! A load generator for HTTP servers: `connections` clients loop over a list
//! of paths for a round, each on one keep-alive connection, or on a new
//! connection per request (the accept path); what a round achieved, and the
//! median of several.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http_client::HttpConnection;

/// The longest one request may take before it counts as an error.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// What one round of load achieved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Round {
    pub requests: u64,
    pub bytes: u64,
    pub errors: u64,
    pub seconds: f64,
}

impl Round {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }
}

/// How the clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// One keep-alive connection each, reopened only after an error.
    KeepAlive,
    /// A new connection for every request.
    PerRequest,
}

/// `clients` clients loop over `paths` for `round`.
pub async fn load(
    addr: SocketAddr,
    paths: Arc<Vec<String>>,
    clients: usize,
    round: Duration,
    how: Connections,
) -> Round {
    let started = Instant::now();
    let deadline = started + round;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let paths = paths.clone();
        tasks.spawn(async move {
            let mut round = Round::default();
            let mut connection = None;
            let mut next = client * paths.len() / clients; // spread the clients over the paths
            while Instant::now() < deadline {
                if connection.is_none() {
                    match HttpConnection::open(addr).await {
                        Ok(fresh) => connection = Some(fresh),
                        Err(_) => {
                            round.errors += 1;
                            return round;
                        }
                    }
                }
                let open = connection.as_mut().expect("opened above");
                match open.get(&paths[next % paths.len()], REQUEST_LIMIT).await {
                    Ok((200, body)) => {
                        round.requests += 1;
                        round.bytes += body.len() as u64;
                        if how == Connections::PerRequest {
                            connection = None;
                        }
                    }
                    _ => {
                        round.errors += 1;
                        connection = None;
                    }
                }
                next += 1;
            }
            round
        });
    }
    let mut total = Round::default();
    while let Some(Ok(round)) = tasks.join_next().await {
        total.requests += round.requests;
        total.bytes += round.bytes;
        total.errors += round.errors;
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

/// The round with the median request rate.
pub fn median(mut rounds: Vec<Round>) -> Round {
    rounds.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    rounds[rounds.len() / 2]
}
