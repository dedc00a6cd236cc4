//! An independent parse of LL-HLS media playlists (not the packager's own
//! model), for checking our output against RFC 8216bis.

use std::collections::HashMap;

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// One media segment as listed (complete, or the trailing one with only parts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    pub msn: u64,
    pub duration: Option<f64>,
    pub uri: Option<String>,
    pub parts: Vec<Part>,
    pub program_date_time: Option<String>,
    pub map: Option<String>,
    pub discontinuity: bool,
}

/// An independent parse of a media playlist, for checking our output against the RFC.
#[derive(Debug, Clone, Default)]
pub struct MediaPlaylist {
    pub version: Option<u32>,
    pub target_duration: Option<u64>,
    pub media_sequence: u64,
    pub part_target: Option<f64>,
    pub server_control: HashMap<String, String>,
    pub segments: Vec<Segment>,
    pub preload_hint: Option<String>,
    pub skipped: u64,
    pub rendition_reports: Vec<String>,
    pub ended: bool,
}

/// Splits `A=B,C="D,E"` attribute lists.
pub fn attributes(list: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted[end..].trim_start_matches('"'))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key.trim().to_string(), value.to_string());
        rest = next.strip_prefix(',').unwrap_or(next);
    }
    out
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> MediaPlaylist {
        assert!(text.starts_with("#EXTM3U\n"), "playlist must start with #EXTM3U: {text}");
        let mut p = MediaPlaylist::default();
        let mut current = Segment::default();
        let mut map = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
                p.version = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target_duration = Some(v.parse().expect("integer TARGETDURATION"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.media_sequence = v.parse().expect("integer MEDIA-SEQUENCE");
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                p.part_target = attributes(v).get("PART-TARGET").map(|t| t.parse().expect("decimal PART-TARGET"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                p.server_control = attributes(v);
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                p.skipped = attributes(v)["SKIPPED-SEGMENTS"].parse().expect("integer SKIPPED-SEGMENTS");
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                map = attributes(v).get("URI").cloned();
            } else if line == "#EXT-X-DISCONTINUITY" {
                current.discontinuity = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                current.program_date_time = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let a = attributes(v);
                current.parts.push(Part {
                    duration: a["DURATION"].parse().expect("decimal part DURATION"),
                    uri: a["URI"].clone(),
                    independent: a.get("INDEPENDENT").is_some_and(|v| v == "YES"),
                });
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                current.duration =
                    Some(v.trim_end_matches(',').split(',').next().unwrap().parse().expect("decimal EXTINF"));
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                p.preload_hint = attributes(v).get("URI").cloned();
            } else if let Some(v) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
                p.rendition_reports.push(v.to_string());
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if !line.starts_with('#') && !line.is_empty() {
                current.uri = Some(line.to_string());
                current.map = map.clone();
                current.msn = p.media_sequence + p.skipped + p.segments.len() as u64;
                p.segments.push(std::mem::take(&mut current));
            }
        }
        if !current.parts.is_empty() {
            current.map = map;
            current.msn = p.media_sequence + p.skipped + p.segments.len() as u64;
            p.segments.push(current);
        }
        p
    }

    /// The last listed part as (msn, index).
    pub fn last_part(&self) -> Option<(u64, usize)> {
        self.segments.iter().rev().find(|s| !s.parts.is_empty()).map(|s| (s.msn, s.parts.len() - 1))
    }

    /// Asserts every RFC 8216bis rule the appliance promises for ultra-low mode.
    pub fn assert_ll_hls_rules(&self) {
        let td = self.target_duration.expect("EXT-X-TARGETDURATION") as f64;
        let pt = self.part_target.expect("EXT-X-PART-INF:PART-TARGET");
        let sc = &self.server_control;
        assert_eq!(sc.get("CAN-BLOCK-RELOAD").map(String::as_str), Some("YES"), "CAN-BLOCK-RELOAD");
        let num = |k: &str| sc.get(k).unwrap_or_else(|| panic!("SERVER-CONTROL lacks {k}")).parse::<f64>().unwrap();
        assert!(num("PART-HOLD-BACK") >= 3.0 * pt - 1e-9, "PART-HOLD-BACK {} < 3 x {pt}", num("PART-HOLD-BACK"));
        assert!(num("HOLD-BACK") >= 3.0 * td, "HOLD-BACK {} < 3 x {td}", num("HOLD-BACK"));
        assert!(num("CAN-SKIP-UNTIL") >= 6.0 * td, "CAN-SKIP-UNTIL {} < 6 x {td}", num("CAN-SKIP-UNTIL"));
        assert!(self.version.is_some_and(|v| v >= 6), "EXT-X-VERSION");
        let last_segment = self.segments.len().saturating_sub(1);
        for (i, s) in self.segments.iter().enumerate() {
            assert!(s.map.is_some(), "segment {} without EXT-X-MAP", s.msn);
            assert!(s.program_date_time.is_some(), "segment {} without EXT-X-PROGRAM-DATE-TIME", s.msn);
            if let Some(d) = s.duration {
                assert!(d.round() <= td, "EXTINF {d} of segment {} rounds above TARGETDURATION {td}", s.msn);
            }
            if let Some(first) = s.parts.first() {
                assert!(first.independent, "segment {} does not start with an independent part", s.msn);
            }
            let final_segment = i == last_segment && self.ended;
            for (j, part) in s.parts.iter().enumerate() {
                assert!(part.duration <= pt + 1e-9, "part {}.{j} lasts {} > PART-TARGET {pt}", s.msn, part.duration);
                let last_of_segment = j + 1 == s.parts.len() && (s.duration.is_some() || final_segment);
                if !part.independent && !last_of_segment {
                    assert!(
                        part.duration >= 0.85 * pt - 1e-9,
                        "part {}.{j} lasts {} < 85% of {pt}",
                        s.msn,
                        part.duration
                    );
                }
            }
        }
        if self.ended {
            assert!(self.preload_hint.is_none(), "an ended playlist has no preload hint");
        } else {
            assert!(self.preload_hint.is_some(), "a live LL-HLS playlist has EXT-X-PRELOAD-HINT");
        }
    }
}

/// The directory of a media playlist path, for resolving its relative URIs.
pub fn base(path: &str) -> &str {
    &path[..path.rfind('/').map_or(0, |i| i + 1)]
}
