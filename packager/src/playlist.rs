//! Typed HLS playlists (RFC 8216bis) and their rendering to text: the media
//! playlist with LL-HLS parts, preload hints, server control, delta updates and
//! rendition reports, and the multivariant playlist.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

/// A media playlist as it is about to be rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub target_duration: u64,
    /// `Some` in LL-HLS mode: the declared part target in seconds.
    pub part_target: Option<f64>,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// Segments skipped by a delta update (`EXT-X-SKIP`); 0 for a full playlist.
    pub skipped_segments: u64,
    /// Allow delta updates of segments this far from the live edge (seconds).
    pub can_skip_until: Option<f64>,
    pub segments: Vec<SegmentEntry>,
    /// URI of the next part, in LL-HLS mode while the stream is live.
    pub preload_hint: Option<String>,
    pub rendition_reports: Vec<RenditionReport>,
    pub ended: bool,
}

/// One media segment (complete, or the one in progress with only parts).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub map_uri: String,
    /// Whether the `EXT-X-MAP` must be (re)stated before this segment.
    pub map_changed: bool,
    pub discontinuity: bool,
    pub program_date_time: Option<SystemTime>,
    pub parts: Vec<PartEntry>,
    /// `Some` once the segment is complete.
    pub complete: Option<CompleteSegment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompleteSegment {
    pub duration: f64,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartEntry {
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// `EXT-X-RENDITION-REPORT` for a sibling rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    pub uri: String,
    pub last_msn: u64,
    pub last_part: Option<u64>,
}

impl MediaPlaylist {
    /// HOLD-BACK: three target durations, the minimum RFC 8216bis allows.
    pub fn hold_back(&self) -> f64 {
        3.0 * self.target_duration as f64
    }

    /// PART-HOLD-BACK: three part targets (the spec's minimum is two; three plays without stalls).
    pub fn part_hold_back(&self) -> Option<f64> {
        self.part_target.map(|t| 3.0 * t)
    }

    pub fn render(&self) -> String {
        self.render_as(false)
    }

    /// The playlist of a finished recording (catchup): `EXT-X-PLAYLIST-TYPE:VOD`;
    /// give it every segment, no parts, and `ended`.
    pub fn render_vod(&self) -> String {
        self.render_as(true)
    }

    fn render_as(&self, vod: bool) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 160);
        out.push_str("#EXTM3U\n");
        // Version 9 for EXT-X-SKIP; 6 covers parts and EXT-X-MAP in fMP4 without skip.
        let version = if self.can_skip_until.is_some() { 9 } else { 6 };
        let _ = writeln!(out, "#EXT-X-VERSION:{version}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        if vod {
            out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        if let Some(part_target) = self.part_target {
            let _ = write!(out, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES");
            if let Some(until) = self.can_skip_until {
                let _ = write!(out, ",CAN-SKIP-UNTIL={}", decimal(until));
            }
            let _ =
                writeln!(out, ",PART-HOLD-BACK={},HOLD-BACK={}", decimal(3.0 * part_target), decimal(self.hold_back()));
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", decimal(part_target));
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        if self.skipped_segments > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={}", self.skipped_segments);
        }
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.discontinuity && !(i == 0 && self.skipped_segments == 0) {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if i == 0 || segment.map_changed {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", segment.map_uri);
            }
            if let Some(pdt) = segment.program_date_time {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_millis(pdt));
            }
            for part in &segment.parts {
                let _ = write!(out, "#EXT-X-PART:DURATION={},URI=\"{}\"", decimal(part.duration), part.uri);
                out.push_str(if part.independent { ",INDEPENDENT=YES\n" } else { "\n" });
            }
            if let Some(complete) = &segment.complete {
                let _ = writeln!(out, "#EXTINF:{},", decimal(complete.duration));
                out.push_str(&complete.uri);
                out.push('\n');
            }
        }
        if let Some(hint) = &self.preload_hint {
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
        }
        for report in &self.rendition_reports {
            let _ = write!(out, "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}", report.uri, report.last_msn);
            match report.last_part {
                Some(part) => {
                    let _ = writeln!(out, ",LAST-PART={part}");
                }
                None => out.push('\n'),
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// One variant of the multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second, including container overhead.
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    pub codecs: Vec<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// Renders the multivariant playlist.
pub fn render_multivariant(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth);
        if let Some(avg) = v.average_bandwidth {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={avg}");
        }
        if !v.codecs.is_empty() {
            let _ = write!(out, ",CODECS=\"{}\"", v.codecs.join(","));
        }
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(fps) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={fps:.3}");
        }
        let _ = writeln!(out, "\n{}", v.uri);
    }
    out
}

/// Decimal seconds with up to five fractional digits, trailing zeros trimmed.
fn decimal(value: f64) -> String {
    let mut s = format!("{value:.5}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `EXT-X-PROGRAM-DATE-TIME`.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() as i64;
    let millis = since.subsec_millis();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(d: f64, uri: &str, independent: bool) -> PartEntry {
        PartEntry { duration: d, uri: uri.into(), independent }
    }

    #[test]
    fn renders_ll_hls_media_playlist() {
        let pdt = SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_123);
        let playlist = MediaPlaylist {
            target_duration: 2,
            part_target: Some(0.2),
            media_sequence: 7,
            discontinuity_sequence: 0,
            skipped_segments: 0,
            can_skip_until: Some(12.0),
            segments: vec![
                SegmentEntry {
                    map_uri: "init0.mp4".into(),
                    map_changed: false,
                    discontinuity: false,
                    program_date_time: Some(pdt),
                    parts: vec![],
                    complete: Some(CompleteSegment { duration: 2.0, uri: "seg7.m4s".into() }),
                },
                SegmentEntry {
                    map_uri: "init0.mp4".into(),
                    map_changed: false,
                    discontinuity: false,
                    program_date_time: Some(pdt + Duration::from_secs(2)),
                    parts: vec![part(0.2, "part8.0.m4s", true), part(0.19, "part8.1.m4s", false)],
                    complete: None,
                },
            ],
            preload_hint: Some("part8.2.m4s".into()),
            rendition_reports: vec![RenditionReport {
                uri: "../low/index.m3u8".into(),
                last_msn: 8,
                last_part: Some(1),
            }],
            ended: false,
        };
        let want = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=0.6,HOLD-BACK=6
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:20.123Z
#EXTINF:2,
seg7.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:22.123Z
#EXT-X-PART:DURATION=0.2,URI=\"part8.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.19,URI=\"part8.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part8.2.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\",LAST-MSN=8,LAST-PART=1
";
        assert_eq!(playlist.render(), want);
    }

    #[test]
    fn renders_skip_discontinuity_and_endlist() {
        let seg = |uri: &str, disc: bool, map: &str, changed: bool| SegmentEntry {
            map_uri: map.into(),
            map_changed: changed,
            discontinuity: disc,
            program_date_time: None,
            parts: vec![],
            complete: Some(CompleteSegment { duration: 5.97, uri: uri.into() }),
        };
        let playlist = MediaPlaylist {
            target_duration: 6,
            part_target: None,
            media_sequence: 3,
            discontinuity_sequence: 1,
            skipped_segments: 2,
            can_skip_until: None,
            segments: vec![seg("seg5.m4s", false, "init1.mp4", false), seg("seg6.m4s", true, "init2.mp4", true)],
            preload_hint: None,
            rendition_reports: vec![],
            ended: true,
        };
        let want = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-SKIP:SKIPPED-SEGMENTS=2
#EXT-X-MAP:URI=\"init1.mp4\"
#EXTINF:5.97,
seg5.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init2.mp4\"
#EXTINF:5.97,
seg6.m4s
#EXT-X-ENDLIST
";
        assert_eq!(playlist.render(), want);
    }

    #[test]
    fn renders_multivariant() {
        let text = render_multivariant(&[Variant {
            uri: "42/source/index.m3u8".into(),
            bandwidth: 1_200_000,
            average_bandwidth: Some(1_000_000),
            codecs: vec!["avc1.64001e".into(), "mp4a.40.2".into()],
            resolution: Some((640, 360)),
            frame_rate: Some(29.97),
        }]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=1000000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=29.970\n42/source/index.m3u8\n"
        );
    }

    #[test]
    fn formats_dates_and_decimals() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_999, "2000-02-29T00:00:00.999Z"),
            (4_102_444_799_000, "2099-12-31T23:59:59.000Z"),
        ];
        for (millis, want) in cases {
            assert_eq!(rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(millis)), want);
        }
        assert_eq!(decimal(0.33366), "0.33366");
        assert_eq!(decimal(2.0), "2");
        assert_eq!(decimal(0.123456), "0.12346");
    }
}
