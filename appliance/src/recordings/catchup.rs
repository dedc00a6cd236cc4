//! The catchup of a finished recording as HLS VOD: a multivariant playlist
//! over its renditions and one media playlist per rendition, rendered from
//! the record and the indexes (`EXT-X-PLAYLIST-TYPE:VOD`, every segment,
//! `EXT-X-DISCONTINUITY` where the index says so, program date-time,
//! `EXT-X-ENDLIST`). Served under `/hls/{channel}/recordings/{session}/`.

use packager::playlist::{CompleteSegment, MediaPlaylist, SegmentEntry, Variant, render_multivariant};

use super::catalog::Recording;
use super::index::IndexEntry;
use super::layout::{init_file, segment_file};

/// Container overhead added to the measured bitrate for `BANDWIDTH` (as live).
const BANDWIDTH_HEADROOM: f64 = 1.1;

/// The multivariant playlist of `recording`, given each rendition's entries (same order).
pub fn multivariant(recording: &Recording, indexes: &[Vec<IndexEntry>]) -> String {
    let variants: Vec<Variant> = recording
        .meta
        .renditions
        .iter()
        .zip(indexes)
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(rendition, entries)| {
            let peak = entries
                .iter()
                .filter(|e| e.duration > 0.0)
                .map(|e| (e.bytes as f64 * 8.0 / e.duration) as u64)
                .max()
                .unwrap_or(0);
            let seconds: f64 = entries.iter().map(|e| e.duration).sum();
            let bytes: u64 = entries.iter().map(|e| e.bytes).sum();
            let average = if seconds > 0.0 { (bytes as f64 * 8.0 / seconds * BANDWIDTH_HEADROOM) as u64 } else { 0 };
            Variant {
                uri: format!("{}/index.m3u8", rendition.name),
                bandwidth: ((peak as f64 * BANDWIDTH_HEADROOM) as u64).max(average).max(1),
                average_bandwidth: (average > 0).then_some(average),
                codecs: rendition.codecs.clone(),
                resolution: rendition.resolution,
                frame_rate: rendition.frame_rate,
            }
        })
        .collect();
    render_multivariant(&variants)
}

/// The VOD media playlist of one rendition.
pub fn media_playlist(entries: &[IndexEntry]) -> String {
    let mut previous_init = None;
    let segments = entries
        .iter()
        .map(|entry| {
            let map_changed = previous_init.is_some_and(|v| v != entry.init);
            previous_init = Some(entry.init);
            SegmentEntry {
                map_uri: init_file(entry.init),
                map_changed,
                discontinuity: entry.discontinuity,
                program_date_time: Some(entry.program_date_time()),
                parts: Vec::new(),
                complete: Some(CompleteSegment { duration: entry.duration, uri: segment_file(entry.msn) }),
            }
        })
        .collect();
    let longest = entries.iter().map(|e| e.duration).fold(0.0, f64::max);
    MediaPlaylist {
        target_duration: (longest.round() as u64).max(1),
        part_target: None,
        media_sequence: entries.first().map_or(0, |e| e.msn),
        discontinuity_sequence: 0,
        skipped_segments: 0,
        can_skip_until: None,
        segments,
        preload_hint: None,
        rendition_reports: Vec::new(),
        ended: true,
    }
    .render_vod()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(msn: u64, discontinuity: bool, init: u32) -> IndexEntry {
        IndexEntry { msn, duration: 2.0, pdt_ms: 1_700_000_000_000 + msn * 2000, bytes: 250_000, discontinuity, init }
    }

    #[test]
    fn a_rendition_plays_as_vod_with_its_discontinuities_and_init_changes() {
        let entries = [entry(0, false, 0), entry(1, false, 0), entry(3, true, 0), entry(4, true, 1)];
        let text = media_playlist(&entries);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2,\nseg0.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n#EXTINF:2,\nseg1.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z\n#EXTINF:2,\nseg3.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z\n#EXTINF:2,\nseg4.m4s\n\
             #EXT-X-ENDLIST\n"
        );
    }
}
