//! A keep-alive HTTP/1.1 connection (hyper's client connection) with a
//! deadline on every request: what the players and load generators use.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub type HttpError = Box<dyn std::error::Error + Send + Sync>;

/// One open connection to a server.
pub struct HttpConnection {
    sender: SendRequest<Empty<Bytes>>,
}

impl HttpConnection {
    pub async fn open(addr: SocketAddr) -> Result<HttpConnection, HttpError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(HttpConnection { sender })
    }

    /// GET `path`: the status and the whole body, or an error past `limit`.
    pub async fn get(&mut self, path: &str, limit: Duration) -> Result<(u16, Bytes), HttpError> {
        let exchange = async {
            self.sender.ready().await?;
            let request = Request::get(path).header(HOST, "127.0.0.1").body(Empty::new())?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            Ok::<_, HttpError>((status, response.into_body().collect().await?.to_bytes()))
        };
        tokio::time::timeout(limit, exchange).await.map_err(|_| format!("GET {path}: no answer in {limit:?}"))?
    }

    /// Whether the server closed the connection (a new one is needed).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}
