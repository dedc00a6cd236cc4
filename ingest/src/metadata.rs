//! The publisher's `onMetaData` (sent as `@setDataFrame` or as a plain
//! `onMetaData` data message), read with scuffle-amf0 into `StreamMetadata`.

use std::fmt::Write as _;

use scuffle_amf0::{Amf0Decoder, Amf0Object, Amf0Value};

use crate::amf0::check_amf0;
use crate::error::IngestError;

/// What an encoder declared about its stream. Numbers are as sent; use the
/// methods for converted values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMetadata {
    pub encoder: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub framerate: Option<f64>,
    /// Kilobits per second as declared (FFmpeg writes bits/1024, OBS kbps).
    pub videodatarate: Option<f64>,
    pub audiodatarate: Option<f64>,
    pub audiosamplerate: Option<u32>,
    /// FLV video codec id (7 = AVC) or an Enhanced RTMP FourCC as a number.
    pub videocodecid: Option<u32>,
    /// FLV sound format (10 = AAC) or an Enhanced RTMP FourCC as a number.
    pub audiocodecid: Option<u32>,
    /// Every key with its value rendered as text, sorted by key (at most
    /// `MAX_RAW_ENTRIES`, values cut at `MAX_RAW_VALUE` characters).
    pub raw: Vec<(String, String)>,
}

pub(crate) const MAX_RAW_ENTRIES: usize = 64;
pub(crate) const MAX_RAW_VALUE: usize = 256;

const AVC_ID: u32 = 7;
const AAC_ID: u32 = 10;
/// FLV sound formats of MP3, MP3 8 kHz, G.711 A-law and mu-law.
const MP3_ID: u32 = 2;
const MP3_8K_ID: u32 = 14;
const ALAW_ID: u32 = 7;
const MULAW_ID: u32 = 8;
const DOT_MP3: u32 = u32::from_be_bytes(*b".mp3");
const OPUS: u32 = u32::from_be_bytes(*b"Opus");
const AVC1: u32 = u32::from_be_bytes(*b"avc1");
const HVC1: u32 = u32::from_be_bytes(*b"hvc1");
const AV01: u32 = u32::from_be_bytes(*b"av01");
/// HEVC's unofficial legacy FLV codec id (see `flv`).
const HEVC_ID: u32 = 12;
const MP4A: u32 = u32::from_be_bytes(*b"mp4a");

impl StreamMetadata {
    /// The declared frame rate as a ratio; NTSC rates become n*1000/1001.
    pub fn frame_rate(&self) -> Option<(u32, u32)> {
        let fps = self.framerate.filter(|f| f.is_finite() && *f > 0.0 && *f <= 1000.0)?;
        for n in [24u32, 30, 48, 60, 120, 240] {
            if (fps - n as f64 * 1000.0 / 1001.0).abs() < 0.005 {
                return Some((n * 1000, 1001));
            }
        }
        if (fps - fps.round()).abs() < 0.001 {
            return Some((fps.round() as u32, 1));
        }
        let num = (fps * 1000.0).round() as u32;
        let g = gcd(num, 1000);
        Some((num / g, 1000 / g))
    }

    /// The declared video bitrate in bits per second.
    pub fn video_bitrate(&self) -> Option<u32> {
        kbps_to_bps(self.videodatarate)
    }

    /// The declared audio bitrate in bits per second.
    pub fn audio_bitrate(&self) -> Option<u32> {
        kbps_to_bps(self.audiodatarate)
    }

    /// Whether the metadata names the codecs at all.
    pub(crate) fn declares_codecs(&self) -> bool {
        self.videocodecid.is_some() || self.audiocodecid.is_some()
    }

    /// Whether it declares a video codec this server carries (AVC, HEVC, AV1).
    pub(crate) fn declares_video(&self) -> bool {
        matches!(self.videocodecid, Some(AVC_ID | AVC1 | HEVC_ID | HVC1 | AV01))
    }

    /// Whether it declares an audio codec this server carries (AAC, or MP3,
    /// G.711 and Opus, which the appliance transcodes to AAC).
    pub(crate) fn declares_audio(&self) -> bool {
        matches!(self.audiocodecid, Some(AAC_ID | MP4A | MP3_ID | MP3_8K_ID | ALAW_ID | MULAW_ID | DOT_MP3 | OPUS))
    }
}

fn kbps_to_bps(kbps: Option<f64>) -> Option<u32> {
    let kbps = kbps.filter(|k| k.is_finite() && *k > 0.0 && *k < 4_000_000.0)?;
    Some((kbps * 1000.0).round() as u32)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// Reads an AMF0 data message. `Ok(None)` for data messages other than
/// `onMetaData` (`onTextData`, `onCuePoint`, ...).
pub(crate) fn read(data: &[u8]) -> Result<Option<StreamMetadata>, IngestError> {
    check_amf0(data)?;
    let mut decoder = Amf0Decoder::from_slice(data);
    // Values are read one at a time: FFmpeg ends its ECMA array with an
    // object-end marker that scuffle-amf0 reads as the start of another value.
    let mut name = decoder.decode_value()?;
    if matches!(&name, Amf0Value::String(s) if s.as_str() == "@setDataFrame") {
        name = decoder.decode_value()?;
    }
    if !matches!(&name, Amf0Value::String(s) if s.as_str() == "onMetaData") {
        return Ok(None);
    }
    match decoder.decode_value()? {
        Amf0Value::Object(object) => Ok(Some(from_object(&object))),
        _ => Ok(Some(StreamMetadata::default())),
    }
}

fn from_object(object: &Amf0Object<'_>) -> StreamMetadata {
    // Keys are `StringCow`, which does not borrow as `str`; the maps are small.
    let get = |key: &str| object.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v);
    let number = |key: &str| match get(key) {
        Some(Amf0Value::Number(n)) if n.is_finite() => Some(*n),
        _ => None,
    };
    let whole = |key: &str| number(key).filter(|n| *n >= 0.0 && *n <= u32::MAX as f64).map(|n| n.round() as u32);
    let codec_id = |key: &str| match get(key) {
        Some(Amf0Value::String(s)) if s.as_str().len() == 4 => {
            let b = s.as_str().as_bytes();
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        _ => whole(key),
    };
    let mut raw: Vec<(String, String)> =
        object.iter().map(|(key, value)| (truncate(key.as_str()), render(value))).collect();
    raw.sort();
    raw.truncate(MAX_RAW_ENTRIES);
    StreamMetadata {
        encoder: match get("encoder") {
            Some(Amf0Value::String(s)) => Some(truncate(s.as_str())),
            _ => None,
        },
        width: whole("width"),
        height: whole("height"),
        framerate: number("framerate").or_else(|| number("fps")),
        videodatarate: number("videodatarate"),
        audiodatarate: number("audiodatarate"),
        audiosamplerate: whole("audiosamplerate"),
        videocodecid: codec_id("videocodecid"),
        audiocodecid: codec_id("audiocodecid"),
        raw,
    }
}

fn render(value: &Amf0Value<'_>) -> String {
    match value {
        Amf0Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Amf0Value::Number(n) => {
            let mut s = String::new();
            let _ = write!(s, "{n}");
            s
        }
        Amf0Value::Boolean(b) => b.to_string(),
        Amf0Value::String(s) => truncate(s.as_str()),
        Amf0Value::Null => "null".to_owned(),
        Amf0Value::Object(_) => "{…}".to_owned(),
        Amf0Value::Array(_) => "[…]".to_owned(),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_RAW_VALUE).collect()
}

#[cfg(test)]
mod tests {
    use scuffle_amf0::Amf0Encoder;

    use super::*;

    /// A data message as FFmpeg's FLV muxer writes it: name(s), then an ECMA
    /// array with its count, closed by an empty key and the object-end marker.
    fn data_message(names: &[&str], entries: &[(&str, Amf0Value<'static>)]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = Amf0Encoder::new(&mut buf);
        for name in names {
            enc.encode_string(name).unwrap();
        }
        buf.push(0x08);
        buf.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (key, value) in entries {
            buf.extend_from_slice(&(key.len() as u16).to_be_bytes());
            buf.extend_from_slice(key.as_bytes());
            value.encode(&mut Amf0Encoder::new(&mut buf)).unwrap();
        }
        buf.extend_from_slice(&[0, 0, 0x09]);
        buf
    }

    fn ffmpeg_entries() -> Vec<(&'static str, Amf0Value<'static>)> {
        vec![
            ("duration", Amf0Value::Number(0.0)),
            ("width", Amf0Value::Number(320.0)),
            ("height", Amf0Value::Number(240.0)),
            ("videodatarate", Amf0Value::Number(976.5625)),
            ("framerate", Amf0Value::Number(30.0)),
            ("videocodecid", Amf0Value::Number(7.0)),
            ("audiodatarate", Amf0Value::Number(125.0)),
            ("audiosamplerate", Amf0Value::Number(44100.0)),
            ("audiocodecid", Amf0Value::Number(10.0)),
            ("encoder", Amf0Value::String("Lavf59.27.100".into())),
            ("stereo", Amf0Value::Boolean(true)),
        ]
    }

    #[test]
    fn reads_set_data_frame_and_plain_on_meta_data() {
        for names in [&["@setDataFrame", "onMetaData"][..], &["onMetaData"][..]] {
            let meta = read(&data_message(names, &ffmpeg_entries())).unwrap().unwrap();
            assert_eq!(meta.encoder.as_deref(), Some("Lavf59.27.100"));
            assert_eq!((meta.width, meta.height), (Some(320), Some(240)));
            assert_eq!(meta.frame_rate(), Some((30, 1)));
            assert_eq!(meta.video_bitrate(), Some(976_563));
            assert_eq!(meta.audio_bitrate(), Some(125_000));
            assert_eq!(meta.audiosamplerate, Some(44_100));
            assert!(meta.declares_video() && meta.declares_audio());
            assert_eq!(meta.raw.len(), 11);
            assert_eq!(meta.raw[0], ("audiocodecid".to_owned(), "10".to_owned()));
            assert!(meta.raw.contains(&("stereo".to_owned(), "true".to_owned())));
            assert!(meta.raw.contains(&("videodatarate".to_owned(), "976.5625".to_owned())));
        }
    }

    #[test]
    fn other_data_messages_are_not_metadata() {
        assert_eq!(read(&data_message(&["onTextData"], &[])).unwrap(), None);
        assert_eq!(read(&data_message(&["@setDataFrame", "onCuePoint"], &[])).unwrap(), None);
        let mut number_first = Vec::new();
        Amf0Encoder::new(&mut number_first).encode_number(1.0).unwrap();
        assert_eq!(read(&number_first).unwrap(), None);
    }

    #[test]
    fn codec_ids_numbers_and_fourccs() {
        let cases: Vec<(Amf0Value<'static>, Amf0Value<'static>, bool, bool)> = vec![
            (Amf0Value::Number(7.0), Amf0Value::Number(10.0), true, true),
            (Amf0Value::Number(AVC1 as f64), Amf0Value::Number(MP4A as f64), true, true),
            (Amf0Value::String("avc1".into()), Amf0Value::String("mp4a".into()), true, true),
            (Amf0Value::String("hvc1".into()), Amf0Value::Number(2.0), true, true),
            (Amf0Value::Number(12.0), Amf0Value::Number(10.0), true, true),
            (Amf0Value::Number(u32::from_be_bytes(*b"av01") as f64), Amf0Value::String("Opus".into()), true, true),
            (Amf0Value::String("vp09".into()), Amf0Value::String("Opus".into()), false, true),
            (Amf0Value::Number(7.0), Amf0Value::Number(7.0), true, true),
            (Amf0Value::Number(7.0), Amf0Value::String(".mp3".into()), true, true),
            (Amf0Value::Number(7.0), Amf0Value::Number(11.0), true, false),
            (Amf0Value::Number(7.0), Amf0Value::String("fLaC".into()), true, false),
        ];
        for (video, audio, carried_video, carried_audio) in cases {
            let msg =
                data_message(&["onMetaData"], &[("videocodecid", video.clone()), ("audiocodecid", audio.clone())]);
            let meta = read(&msg).unwrap().unwrap();
            assert_eq!(
                (meta.declares_video(), meta.declares_audio()),
                (carried_video, carried_audio),
                "{video:?} {audio:?}"
            );
            assert!(meta.declares_codecs());
        }
    }

    #[test]
    fn frame_rates() {
        let cases = [
            (30.0, Some((30, 1))),
            (29.97, Some((30_000, 1001))),
            (29.970029970029973, Some((30_000, 1001))),
            (59.94, Some((60_000, 1001))),
            (23.976, Some((24_000, 1001))),
            (25.0, Some((25, 1))),
            (12.5, Some((25, 2))),
            (0.0, None),
            (-30.0, None),
            (f64::NAN, None),
            (1e9, None),
        ];
        for (fps, want) in cases {
            let meta = StreamMetadata { framerate: Some(fps), ..Default::default() };
            assert_eq!(meta.frame_rate(), want, "{fps}");
        }
    }

    #[test]
    fn hostile_metadata_is_refused_or_bounded() {
        let mut bomb = data_message(&["@setDataFrame", "onMetaData"], &[]);
        let at = bomb.len() - 7;
        bomb[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(read(&bomb), Err(IngestError::Amf0Rejected(_))));
        assert!(read(&[0x02, 0, 200, b'o']).is_err());
        let long = "x".repeat(10_000);
        let msg = data_message(&["onMetaData"], &[("encoder", Amf0Value::String(long.into()))]);
        let meta = read(&msg).unwrap().unwrap();
        assert_eq!(meta.encoder.unwrap().len(), MAX_RAW_VALUE);
    }
}
