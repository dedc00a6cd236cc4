//! The SRT streamid a caller sends, in the two conventions encoders use:
//! the access-control form `#!::r=<key>,m=publish` (SRT's
//! AccessControl.md; `m` left out counts as publish, as OBS and vMix send
//! it) and the short `publish:<key>`. Anything else is refused. A leading
//! `%23` is read as `#`: callers that percent-encode the URL (FFmpeg 5.1
//! passes `streamid=` through undecoded) still get in.

/// Why a streamid names no publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("the caller sent no streamid (expected #!::r=<stream key>,m=publish or publish:<stream key>)")]
    Missing,
    #[error("the streamid names no stream key (expected #!::r=<stream key>,m=publish or publish:<stream key>)")]
    NoKey,
    #[error("the streamid asks for mode {0:?}; this listener only takes publishers (m=publish)")]
    WrongMode(String),
}

impl StreamIdError {
    /// Mode errors are the caller asking for something we do not offer, not a bad key.
    pub fn is_wrong_mode(&self) -> bool {
        matches!(self, StreamIdError::WrongMode(_))
    }
}

/// The stream key a publishing caller's streamid names.
pub fn parse_stream_id(stream_id: Option<&str>) -> Result<String, StreamIdError> {
    let id = stream_id.map(str::trim).filter(|s| !s.is_empty()).ok_or(StreamIdError::Missing)?;
    if let Some(list) = id.strip_prefix("#!::").or_else(|| id.strip_prefix("%23!::")) {
        let mut key = None;
        let mut mode = None;
        for entry in list.split(',') {
            match entry.split_once('=') {
                Some(("r", value)) => key = Some(value),
                Some(("m", value)) => mode = Some(value),
                _ => {}
            }
        }
        if let Some(mode) = mode.filter(|m| *m != "publish") {
            return Err(StreamIdError::WrongMode(mode.to_owned()));
        }
        return key.filter(|k| !k.is_empty()).map(str::to_owned).ok_or(StreamIdError::NoKey);
    }
    match id.split_once(':') {
        Some(("publish", key)) if !key.is_empty() => Ok(key.to_owned()),
        Some((mode @ ("request" | "play" | "read"), _)) => Err(StreamIdError::WrongMode(mode.to_owned())),
        _ => Err(StreamIdError::NoKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        let ok = [
            ("#!::r=sk_abc,m=publish", "sk_abc"),
            ("#!::m=publish,r=sk_abc", "sk_abc"),
            ("#!::r=sk_abc", "sk_abc"),
            ("%23!::r=sk_abc,m=publish", "sk_abc"),
            ("#!::u=studio,r=sk_abc,m=publish,s=123", "sk_abc"),
            ("publish:sk_abc", "sk_abc"),
            (" publish:sk_abc ", "sk_abc"),
        ];
        for (id, key) in ok {
            assert_eq!(parse_stream_id(Some(id)).as_deref(), Ok(key), "{id}");
        }
        let bad = [
            (None, StreamIdError::Missing),
            (Some(""), StreamIdError::Missing),
            (Some("#!::m=publish"), StreamIdError::NoKey),
            (Some("#!::r=,m=publish"), StreamIdError::NoKey),
            (Some("#!::r=sk_abc,m=request"), StreamIdError::WrongMode("request".into())),
            (Some("request:sk_abc"), StreamIdError::WrongMode("request".into())),
            (Some("publish:"), StreamIdError::NoKey),
            (Some("sk_abc"), StreamIdError::NoKey),
        ];
        for (id, err) in bad {
            assert_eq!(parse_stream_id(id), Err(err), "{id:?}");
        }
    }
}
