//! A UDP relay that loses a share of the datagrams a caller sends (every
//! n-th, so runs repeat): packet loss on loopback for SRT tests, without
//! network namespaces or root. Replies from the server pass untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A running relay; dropping it stops it.
pub struct LossyUdp {
    pub addr: SocketAddr,
    /// Datagrams from the caller that were dropped.
    pub dropped: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LossyUdp {
    /// Relays to `upstream`, dropping every `drop_every`-th datagram from the caller.
    pub async fn start(upstream: SocketAddr, drop_every: u64) -> LossyUdp {
        let front = UdpSocket::bind("127.0.0.1:0").await.expect("bind relay");
        let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind relay upstream");
        back.connect(upstream).await.expect("connect upstream");
        let addr = front.local_addr().unwrap();
        let dropped = Arc::new(AtomicU64::default());
        let counted = dropped.clone();
        let task = tokio::spawn(async move {
            let (mut from_caller, mut from_server) = (vec![0u8; 2048], vec![0u8; 2048]);
            let mut caller = None;
            let mut seen = 0u64;
            loop {
                tokio::select! {
                    Ok((n, peer)) = front.recv_from(&mut from_caller) => {
                        caller = Some(peer);
                        seen += 1;
                        if seen.is_multiple_of(drop_every) {
                            counted.fetch_add(1, Ordering::Relaxed);
                        } else {
                            let _ = back.send(&from_caller[..n]).await;
                        }
                    }
                    Ok(n) = back.recv(&mut from_server) => {
                        if let Some(caller) = caller {
                            let _ = front.send_to(&from_server[..n], caller).await;
                        }
                    }
                }
            }
        });
        LossyUdp { addr, dropped, task }
    }
}

impl Drop for LossyUdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
