//! `Cache-Control` of every origin response: how long browsers and shared
//! caches (CDNs, the reference nginx edge) may keep it. Lifetimes follow RFC
//! 8216bis Appendix B.1 in whole seconds, rounded down so a cache never holds
//! a live playlist longer than the appendix allows.
//!
//! - Media (init, segments, parts) never changes under its URI (the session
//!   is in every URI): immutable for a year.
//! - A live playlist without delivery directives changes with every part: a
//!   shared cache may keep it half a target duration (`s-maxage`; 0 s for
//!   1 s segments), a browser not at all (`max-age=0`: a player polls on its
//!   own clock and must see the newest one). The multivariant playlist too: a
//!   new publish changes its session.
//! - A blocking response (`_HLS_msn`) describes a moment that has passed; its
//!   query names it, so caches keep it six target durations.
//! - A playlist with ENDLIST no longer changes: six target durations too.
//! - Errors (a part asked for too early, a directive too far ahead, a stalled
//!   stream) describe a moment: nothing keeps them (`no-store`), or a cache
//!   would answer 404 for a part that exists a moment later.

use axum::http::HeaderValue;

/// Media is cached this long (a year, the most RFC 9111 suggests).
const MEDIA: &str = "public, max-age=31536000, immutable";
/// Errors are not stored anywhere.
pub const NO_STORE: &str = "no-store";

/// What a response is, as far as caching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Init segments, segments, parts.
    Media,
    /// A live media playlist without directives, or the multivariant playlist.
    LivePlaylist { target_duration: u64 },
    /// An answer to `_HLS_msn` (and `_HLS_part`).
    BlockingPlaylist { target_duration: u64 },
    /// A playlist with `EXT-X-ENDLIST`.
    FinalPlaylist { target_duration: u64 },
}

impl Freshness {
    /// The `Cache-Control` value.
    pub fn header(self) -> HeaderValue {
        match self {
            Freshness::Media => HeaderValue::from_static(MEDIA),
            Freshness::LivePlaylist { target_duration } => {
                header_value(format!("public, max-age=0, s-maxage={}", target_duration / 2))
            }
            Freshness::BlockingPlaylist { target_duration } | Freshness::FinalPlaylist { target_duration } => {
                header_value(format!("public, max-age={}", 6 * target_duration.max(1)))
            }
        }
    }
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("digits and ASCII words make a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_follow_the_appendix() {
        let cases = [
            (Freshness::Media, "public, max-age=31536000, immutable"),
            // Ultra-low latency, 1 s segments: half a target duration rounds down to nothing.
            (Freshness::LivePlaylist { target_duration: 1 }, "public, max-age=0, s-maxage=0"),
            (Freshness::LivePlaylist { target_duration: 2 }, "public, max-age=0, s-maxage=1"),
            (Freshness::LivePlaylist { target_duration: 6 }, "public, max-age=0, s-maxage=3"),
            (Freshness::LivePlaylist { target_duration: 7 }, "public, max-age=0, s-maxage=3"),
            (Freshness::BlockingPlaylist { target_duration: 1 }, "public, max-age=6"),
            (Freshness::BlockingPlaylist { target_duration: 6 }, "public, max-age=36"),
            (Freshness::FinalPlaylist { target_duration: 2 }, "public, max-age=12"),
            (Freshness::FinalPlaylist { target_duration: 0 }, "public, max-age=6"),
        ];
        for (freshness, want) in cases {
            assert_eq!(freshness.header(), want, "{freshness:?}");
        }
    }
}
