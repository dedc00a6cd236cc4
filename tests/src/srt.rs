//! SRT publish URLs for the real `ffmpeg` program as an SRT caller.

use crate::TestAppliance;

/// `srt://` URL of the appliance's SRT listener with `streamid` and, when
/// given, `passphrase` with a 128-bit key. Both go in as they are (FFmpeg 5.1
/// does not percent-decode them; `#`, `!`, `:`, `,` and `=` pass through
/// its option parser), so they must not hold `&` or spaces.
pub fn srt_url(app: &TestAppliance, streamid: &str, passphrase: Option<&str>) -> String {
    let addr = app.appliance.srt_addr.expect("the test appliance runs its SRT listener");
    srt_url_to(addr, streamid, passphrase)
}

/// [`srt_url`] to another address (a relay in front of the listener).
pub fn srt_url_to(addr: std::net::SocketAddr, streamid: &str, passphrase: Option<&str>) -> String {
    assert!(!(streamid.contains(['&', ' ']) || passphrase.is_some_and(|p| p.contains(['&', ' ']))));
    let mut url = format!("srt://{addr}?mode=caller&latency=120000&streamid={streamid}");
    if let Some(passphrase) = passphrase {
        url.push_str(&format!("&passphrase={passphrase}&pbkeylen=16"));
    }
    url
}
