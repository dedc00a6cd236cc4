//! Adds a query parameter (a private channel's playback token) to every URI
//! of a rendered playlist: the URI lines (variants, segments) and every
//! `URI="..."` attribute (maps, parts, preload hints, rendition reports,
//! media). One pass over the cached text, so the playlist is rendered (and
//! its blocking reloads answered) once for every viewer, whatever token each
//! carries; a URI that has a query already gets `&`, a fragment stays last.

/// `text` with `param` (`name=value`, query-safe) added to each URI.
pub fn with_query(text: &str, param: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 24 * (param.len() + 1) + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let newline = &line[body.len()..];
        if body.starts_with('#') {
            push_tag(&mut out, body, param);
        } else if body.trim().is_empty() {
            out.push_str(body);
        } else {
            push_uri(&mut out, body, param);
        }
        out.push_str(newline);
    }
    out
}

/// A tag line with `param` added inside each `URI="..."` attribute.
fn push_tag(out: &mut String, mut line: &str, param: &str) {
    const ATTRIBUTE: &str = "URI=\"";
    let mut at = 0;
    while let Some(found) = line[at..].find(ATTRIBUTE).map(|i| at + i) {
        // An attribute starts after the tag's `:` or a `,` (not `XURI="` inside another value).
        let starts_attribute = matches!(line.as_bytes().get(found.wrapping_sub(1)), Some(b':' | b','));
        let value_start = found + ATTRIBUTE.len();
        let Some(value_len) = line[value_start..].find('"') else { break };
        if !starts_attribute {
            at = value_start + value_len + 1;
            continue;
        }
        out.push_str(&line[..value_start]);
        push_uri(out, &line[value_start..value_start + value_len], param);
        line = &line[value_start + value_len..];
        at = 1;
    }
    out.push_str(line);
}

/// `uri` with `param` added to its query (before any fragment).
pub fn uri_with_query(uri: &str, param: &str) -> String {
    let mut out = String::with_capacity(uri.len() + param.len() + 1);
    push_uri(&mut out, uri, param);
    out
}

/// `uri` with `param` in its query, before any fragment.
fn push_uri(out: &mut String, uri: &str, param: &str) {
    let (path, fragment) = match uri.find('#') {
        Some(i) => uri.split_at(i),
        None => (uri, ""),
    };
    out.push_str(path);
    out.push(if path.contains('?') { '&' } else { '?' });
    out.push_str(param);
    out.push_str(fragment);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_of_a_media_playlist_gets_the_parameter() {
        let playlist = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=0.6,HOLD-BACK=6
#EXT-X-SKIP:SKIPPED-SEGMENTS=2
#EXT-X-MAP:URI=\"init0.mp4\"
#EXTINF:2,
seg7.m4s
#EXT-X-PART:DURATION=0.2,URI=\"part8.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part8.1.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\",LAST-MSN=8,LAST-PART=1
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"a.m3u8?lang=en\"
../../recordings/s/r/seg1.m4s#t=1
";
        let want = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=0.6,HOLD-BACK=6
#EXT-X-SKIP:SKIPPED-SEGMENTS=2
#EXT-X-MAP:URI=\"init0.mp4?token=t.k\"
#EXTINF:2,
seg7.m4s?token=t.k
#EXT-X-PART:DURATION=0.2,URI=\"part8.0.m4s?token=t.k\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part8.1.m4s?token=t.k\"
#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8?token=t.k\",LAST-MSN=8,LAST-PART=1
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"a.m3u8?lang=en&token=t.k\"
../../recordings/s/r/seg1.m4s?token=t.k#t=1
";
        assert_eq!(with_query(playlist, "token=t.k"), want);
    }

    #[test]
    fn multivariant_crlf_and_lookalike_attributes() {
        let text = "#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"x\"\r\n42/source/index.m3u8\r\n\r\n#EXT-X-FOO:XURI=\"no\"\n";
        let want = "#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"x\"\r\n42/source/index.m3u8?t=1\r\n\r\n#EXT-X-FOO:XURI=\"no\"\n";
        assert_eq!(with_query(text, "t=1"), want);
        assert_eq!(with_query("", "t=1"), "");
        assert_eq!(with_query("seg1.m4s", "t=1"), "seg1.m4s?t=1", "no final newline");
    }
}
