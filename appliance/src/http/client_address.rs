//! The address of the client behind an HTTP request: the TCP peer, or, when
//! the peer is a reverse proxy the operator trusts (`http.trusted_proxies`,
//! e.g. a TLS terminator in front of the console and API), the nearest
//! address in `X-Forwarded-For` that is not itself a trusted proxy. Rate
//! limits, the sign-in limit and the viewer count all key on it, so clients
//! behind a proxy are not one client. An untrusted peer's `X-Forwarded-For`
//! is ignored: anyone can write that header.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// The client's address, put in every request's extensions by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// One trusted proxy network (an address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(text: &str) -> Result<Network, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = address.trim().parse().map_err(|_| format!("{text:?} is not an address or CIDR network"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?,
        };
        Ok(Network { base, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.base, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[Network]>);

impl TrustedProxies {
    /// Parses addresses and CIDR networks (`10.0.0.0/8`, `::1`).
    pub fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        let networks = list.iter().map(|s| Network::parse(s)).collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(networks.into()))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Whether a TCP peer is one of the trusted proxies.
    pub fn trusts_peer(&self, peer: IpAddr) -> bool {
        self.trusts(canonical(peer))
    }

    /// The client of a request that reached us from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        // Walk the chain from the nearest hop back; the first address we do not
        // trust is the client (anything before it could be forged by it).
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else { return client };
            for hop in value.rsplit(',') {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else { return client };
                client = canonical(ip);
                if !self.trusts(client) {
                    return client;
                }
            }
        }
        client
    }
}

/// Middleware: resolves the client's address once per request.
pub async fn resolve(State(proxies): State<TrustedProxies>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip());
    if let Some(peer) = peer {
        let client = proxies.client(peer, request.headers());
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

/// The client's address of a request that went through [`resolve`] (else its
/// TCP peer; unspecified when the server runs without connect info).
pub fn of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ClientAddress>()
        .map(|ClientAddress(ip)| *ip)
        .or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| canonical(a.ip())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // (peer, X-Forwarded-For values, client)
        let cases: &[(&str, &[&str], &str)] = &[
            ("192.0.2.7", &["198.51.100.1"], "192.0.2.7"), // untrusted peer: header ignored
            ("10.1.2.3", &["198.51.100.1"], "198.51.100.1"), // trusted proxy
            ("10.1.2.3", &["203.0.113.9, 198.51.100.1, 10.9.9.9"], "198.51.100.1"), // nearest untrusted hop
            ("10.1.2.3", &["203.0.113.9", "198.51.100.1"], "198.51.100.1"), // repeated headers, last nearest
            ("10.1.2.3", &[], "10.1.2.3"),                 // no header: the proxy itself
            ("10.1.2.3", &["garbage, 198.51.100.1"], "198.51.100.1"),
            ("10.1.2.3", &["198.51.100.1, garbage"], "10.1.2.3"), // a broken nearest hop stops the walk
            ("::1", &["2001:db8::5"], "2001:db8::5"),
            ("::ffff:10.0.0.1", &["198.51.100.1"], "198.51.100.1"), // IPv4-mapped peer
        ];
        for (peer, forwarded, want) in cases {
            assert_eq!(proxies.client(ip(peer), &headers(forwarded)), ip(want), "{peer} {forwarded:?}");
        }
        assert_eq!(TrustedProxies::default().client(ip("10.1.2.3"), &headers(&["198.51.100.1"])), ip("10.1.2.3"));
    }

    #[test]
    fn bad_networks_are_refused_with_the_reason() {
        for (text, want) in [
            ("10.0.0.0/33", "prefix length must be 0..=32"),
            ("proxy.local", "not an address or CIDR network"),
            ("::/129", "prefix length must be 0..=128"),
        ] {
            let error = TrustedProxies::parse(&[text.into()]).unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
        }
        assert!(TrustedProxies::parse(&["0.0.0.0/0".into(), "fd00::/8".into()]).is_ok());
    }
}
