//! Signed playback tokens of private channels: the compact text
//! `{key id}.{payload}.{mac}` (base64url without padding, so it needs no
//! escaping in a query string), where the payload is
//! `{channel}\n{expires, unix seconds}\n{viewer network or empty}` and the
//! MAC is HMAC-SHA256 with the named signing key over `{key id}.{payload}`
//! as sent. Pure (std, hmac, sha2, base64, ipnet): the fuzz target
//! `playback_token` compiles this file alone.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;

/// The query parameter that carries a token.
pub const PARAM: &str = "token";
/// Longest token text accepted (a payload of a 64-byte channel name and an IPv6 network fits well).
pub const MAX_LEN: usize = 512;
/// Bytes of a signing key's secret.
pub const SECRET_LEN: usize = 32;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The channel it plays.
    pub channel: String,
    /// Unix seconds after which it is refused.
    pub expires: u64,
    /// The viewers' network; `None`: any address.
    pub network: Option<IpNet>,
}

/// A token as parsed, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub key_id: &'a str,
    /// `{key id}.{payload}`: what the MAC covers.
    signed: &'a str,
    pub claims: Claims,
    mac: [u8; 32],
}

/// Why a token does not open a channel (the 403's detail names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    /// No signing key of that id is valid now (unknown, or retired).
    UnknownKey,
    /// The MAC does not match: forged or altered.
    BadSignature,
    Expired,
    OtherChannel,
    OutsideNetwork,
}

impl Refusal {
    /// The problem's detail.
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::Missing => "this channel is private: a playback token is required (query parameter `token`)",
            Refusal::Malformed => "the playback token is malformed",
            Refusal::UnknownKey => "the playback token's signing key is unknown or retired",
            Refusal::BadSignature => "the playback token's signature does not match",
            Refusal::Expired => "the playback token has expired",
            Refusal::OtherChannel => "the playback token is for another channel",
            Refusal::OutsideNetwork => "the playback token is not valid from this address",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac_of(secret: &[u8], signed: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(signed.as_bytes());
    mac
}

/// Whether `id` may name a key: 1 to 32 of a-z, 0-9 and `_`.
pub fn is_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_channel_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The token text of `claims`, signed with the key `key_id` (`secret`).
pub fn sign(claims: &Claims, key_id: &str, secret: &[u8]) -> String {
    let network = claims.network.map(|n| n.to_string()).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(format!("{}\n{}\n{network}", claims.channel, claims.expires));
    let signed = format!("{key_id}.{payload}");
    let mac = mac_of(secret, &signed).finalize().into_bytes();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// Parses a token's text (no key needed; nothing is trusted until `verify`).
pub fn parse(text: &str) -> Result<Parsed<'_>, Refusal> {
    if text.is_empty() {
        return Err(Refusal::Missing);
    }
    if text.len() > MAX_LEN {
        return Err(Refusal::Malformed);
    }
    let (signed, mac_text) = text.rsplit_once('.').ok_or(Refusal::Malformed)?;
    let (key_id, payload) = signed.split_once('.').ok_or(Refusal::Malformed)?;
    if !is_key_id(key_id) {
        return Err(Refusal::Malformed);
    }
    let mac: [u8; 32] =
        URL_SAFE_NO_PAD.decode(mac_text).ok().and_then(|m| m.try_into().ok()).ok_or(Refusal::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Refusal::Malformed)?;
    let payload = String::from_utf8(payload).map_err(|_| Refusal::Malformed)?;
    let mut fields = payload.split('\n');
    let (Some(channel), Some(expires), Some(network), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Refusal::Malformed);
    };
    if !is_channel_name(channel) || expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Malformed);
    }
    let expires = expires.parse().map_err(|_| Refusal::Malformed)?;
    let network = match network {
        "" => None,
        text => Some(parse_network(text).ok_or(Refusal::Malformed)?),
    };
    Ok(Parsed { key_id, signed, claims: Claims { channel: channel.to_string(), expires, network }, mac })
}

/// A CIDR network, or one address (a /32 or /128), its host bits cleared.
pub fn parse_network(text: &str) -> Option<IpNet> {
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => IpNet::from(text.parse::<IpAddr>().ok()?),
    };
    Some(net.trunc())
}

impl Parsed<'_> {
    /// Whether the MAC is the one `secret` makes (constant time).
    pub fn verify(&self, secret: &[u8]) -> bool {
        mac_of(secret, self.signed).verify_slice(&self.mac).is_ok()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Checks `text` for playing `channel` at `now` (unix seconds) from
/// `client`; `secret_of` gives the secret of a key valid now.
pub fn check<'k>(
    text: Option<&str>,
    channel: &str,
    now: u64,
    client: IpAddr,
    secret_of: impl FnOnce(&str) -> Option<&'k [u8]>,
) -> Result<Claims, Refusal> {
    let parsed = parse(text.unwrap_or(""))?;
    let secret = secret_of(parsed.key_id).ok_or(Refusal::UnknownKey)?;
    if !parsed.verify(secret) {
        return Err(Refusal::BadSignature);
    }
    check_claims(&parsed.claims, channel, now, client)?;
    Ok(parsed.claims)
}

/// Checks what a genuine token claims against a request for `channel` at `now` from `client`.
pub fn check_claims(claims: &Claims, channel: &str, now: u64, client: IpAddr) -> Result<(), Refusal> {
    if claims.channel != channel {
        return Err(Refusal::OtherChannel);
    }
    if now >= claims.expires {
        return Err(Refusal::Expired);
    }
    if claims.network.is_some_and(|n| !n.contains(&canonical(client))) {
        return Err(Refusal::OutsideNetwork);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = &[7; SECRET_LEN];
    const NOW: u64 = 1_800_000_000;

    fn claims(network: Option<&str>) -> Claims {
        Claims { channel: "studio".into(), expires: NOW + 60, network: network.map(|n| parse_network(n).unwrap()) }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn keys(id: &str) -> Option<&'static [u8]> {
        (id == "pk_a").then_some(KEY)
    }

    #[test]
    fn a_signed_token_opens_its_channel_until_it_expires() {
        let token = sign(&claims(None), "pk_a", KEY);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "query-safe: {token}");
        assert_eq!(check(Some(&token), "studio", NOW, ip("192.0.2.1"), keys), Ok(claims(None)));
        assert_eq!(check(Some(&token), "studio", NOW + 59, ip("::1"), keys).map(|_| ()), Ok(()));
        assert_eq!(check(Some(&token), "studio", NOW + 60, ip("192.0.2.1"), keys), Err(Refusal::Expired));
        assert_eq!(check(Some(&token), "studio-2", NOW, ip("192.0.2.1"), keys), Err(Refusal::OtherChannel));
    }

    #[test]
    fn a_network_limits_the_viewers_address_v4_and_v6() {
        let cases = [
            ("10.1.0.0/16", "10.1.200.3", true),
            ("10.1.0.0/16", "10.2.0.1", false),
            ("10.1.0.0/16", "::ffff:10.1.0.9", true),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("2001:db8::/32", "10.1.2.3", false),
            ("10.1.2.99/24", "10.1.2.7", true),
        ];
        for (network, client, opens) in cases {
            let token = sign(&claims(Some(network)), "pk_a", KEY);
            let got = check(Some(&token), "studio", NOW, ip(client), keys);
            let want = if opens { Ok(()) } else { Err(Refusal::OutsideNetwork) };
            assert_eq!(got.map(|_| ()), want, "{network} from {client}");
        }
    }

    #[test]
    fn another_key_or_an_altered_token_is_refused() {
        let token = sign(&claims(None), "pk_a", KEY);
        let other_key = sign(&claims(None), "pk_a", &[8; SECRET_LEN]);
        assert_eq!(check(Some(&other_key), "studio", NOW, ip("::1"), keys), Err(Refusal::BadSignature));
        let unknown = sign(&claims(None), "pk_b", KEY);
        assert_eq!(check(Some(&unknown), "studio", NOW, ip("::1"), keys), Err(Refusal::UnknownKey));
        // A longer expiry spliced into a genuine token: the MAC no longer matches.
        let (kid, rest) = token.split_once('.').unwrap();
        let (_, mac) = rest.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(format!("studio\n{}\n", NOW + 86_400));
        let forged = format!("{kid}.{forged_payload}.{mac}");
        assert_eq!(check(Some(&forged), "studio", NOW, ip("::1"), keys), Err(Refusal::BadSignature));
        // Every single-character change is refused.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert!(check(Some(&altered), "studio", NOW, ip("::1"), keys).is_err(), "{altered}");
        }
    }

    #[test]
    fn garbage_is_malformed_and_nothing_is_missing() {
        assert_eq!(check(None, "studio", NOW, ip("::1"), keys), Err(Refusal::Missing));
        assert_eq!(check(Some(""), "studio", NOW, ip("::1"), keys), Err(Refusal::Missing));
        let long = "a".repeat(MAX_LEN + 1);
        for text in ["x", "a.b", "a.b.c", "PK.e30.AAAA", "pk_a..", &long, "pk_a.c3R1ZGlv.AAAA"] {
            assert_eq!(parse(text).map(|_| ()), Err(Refusal::Malformed), "{text}");
        }
        let mac = URL_SAFE_NO_PAD.encode([0u8; 32]);
        for payload in
            ["studio\n1", "studio\n1\n\n", "Studio\n1\n", "studio\n-1\n", "studio\n1\nnot-a-net", "studio\n\n"]
        {
            let text = format!("pk_a.{}.{mac}", URL_SAFE_NO_PAD.encode(payload));
            assert_eq!(parse(&text).map(|_| ()), Err(Refusal::Malformed), "{payload:?}");
        }
    }
}
