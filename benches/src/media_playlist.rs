//! What a player reads from an LL-HLS media playlist (full or delta): the
//! parts with their media sequence numbers, the preload hint, the part
//! target, the init segment and whether the stream ended. Lenient: a line it
//! does not know is skipped, as players do.

/// One `EXT-X-PART`, placed by its segment's media sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    pub msn: u64,
    pub index: u32,
    pub uri: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaylistView {
    pub part_target: Option<f64>,
    pub map_uri: Option<String>,
    pub parts: Vec<ListedPart>,
    pub preload_hint: Option<String>,
    pub ended: bool,
    /// The media sequence number of the segment being filled (after the last listed one).
    pub open_msn: u64,
}

/// The files a media playlist names (init, parts, segments), in order without
/// repeats, as absolute paths under `dir` (the playlist's folder, no trailing `/`).
pub fn media_paths(playlist: &str, dir: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in playlist.lines() {
        if line.starts_with("#EXT-X-MAP:") || line.starts_with("#EXT-X-PART:") {
            if let Some(uri) = line.split("URI=\"").nth(1).and_then(|rest| rest.split('"').next()) {
                uris.push(uri.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            uris.push(line.trim().to_string());
        }
    }
    uris.dedup();
    uris.into_iter().map(|uri| format!("{dir}/{uri}")).collect()
}

fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], after[end..].trim_start_matches(','))
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

impl PlaylistView {
    pub fn parse(text: &str) -> Option<PlaylistView> {
        let mut lines = text.lines();
        if lines.next()? != "#EXTM3U" {
            return None;
        }
        let mut view = PlaylistView::default();
        let mut msn = 0u64;
        let mut index = 0u32;
        for line in lines {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                msn = v.trim().parse().ok()?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                msn += attribute(v, "SKIPPED-SEGMENTS")?.parse::<u64>().ok()?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
                view.part_target = attribute(v, "PART-TARGET").and_then(|t| t.parse().ok());
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                view.map_uri = attribute(v, "URI").map(String::from);
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                view.parts.push(ListedPart { msn, index, uri: attribute(v, "URI")?.to_string() });
                index += 1;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                view.preload_hint = attribute(v, "URI").map(String::from);
            } else if line == "#EXT-X-ENDLIST" {
                view.ended = true;
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                // A segment URI closes the segment.
                msn += 1;
                index = 0;
            }
        }
        view.open_msn = msn;
        Some(view)
    }

    /// The newest part as (msn, index).
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.parts.last().map(|p| (p.msn, p.index))
    }

    /// The part to block on next, as hls.js computes it: the one after the
    /// newest listed part, or the next segment's first when that part closed
    /// its segment. `None` before the first part.
    pub fn next_part(&self) -> Option<(u64, u32)> {
        let (msn, index) = self.last_part()?;
        Some(if msn < self.open_msn { (self.open_msn, 0) } else { (msn, index + 1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXT-X-MAP:URI=\"init0.mp4\"\n#EXTINF:1.0,\nseg7.m4s\n#EXT-X-PART:DURATION=0.2,URI=\"part8.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.2,URI=\"part8.1.m4s\"\n#EXTINF:0.4,\nseg8.m4s\n#EXT-X-PART:DURATION=0.2,URI=\"part9.0.m4s\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.1.m4s\"\n";

    #[test]
    fn reads_parts_hint_and_end() {
        let view = PlaylistView::parse(FULL).unwrap();
        assert_eq!(view.part_target, Some(0.2));
        assert_eq!(view.map_uri.as_deref(), Some("init0.mp4"));
        assert_eq!(view.parts.iter().map(|p| (p.msn, p.index)).collect::<Vec<_>>(), [(8, 0), (8, 1), (9, 0)]);
        assert_eq!(view.last_part(), Some((9, 0)));
        assert_eq!(view.next_part(), Some((9, 1)));
        assert!(!view.ended);

        let delta = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n\
            #EXT-X-PART:DURATION=0.2,URI=\"part9.0.m4s\"\n#EXTINF:0.2,\nseg9.m4s\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part10.0.m4s\"\n";
        let view = PlaylistView::parse(delta).unwrap();
        assert_eq!(view.last_part(), Some((9, 0)));
        assert_eq!(view.next_part(), Some((10, 0)), "the hint names the next segment's first part");

        let ended = PlaylistView::parse(&format!("{FULL}#EXT-X-ENDLIST\n")).unwrap();
        assert!(ended.ended);
        assert_eq!(PlaylistView::parse("not a playlist"), None);
        assert_eq!(PlaylistView::parse("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n"), None);
        assert_eq!(PlaylistView::parse("#EXTM3U\n").unwrap().next_part(), None);
    }
}
