//! CMAF init segments: `ftyp` + `moov` describing every track of a rendition
//! (AVC video as `avc1`, HEVC video as `hvc1`, AAC audio as `mp4a`), with
//! `mvex` for fragments. Audio in other codecs (MP3, G.711, Opus) is refused:
//! the appliance transcodes it to AAC before it reaches the packager.

use bytes::Bytes;
use media::{AacConfig, Av1Config, AvcConfig, CodecConfig, HevcConfig, TrackInfo};

use super::boxes::Writer;

/// Movie timescale of `mvhd`; nothing is timed in it (durations are 0).
const MOVIE_TIMESCALE: u32 = 1000;
/// The unity matrix of `mvhd` and `tkhd`.
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
/// `tkhd` flags: track_enabled | track_in_movie.
const TKHD_ENABLED_IN_MOVIE: u32 = 0x3;
/// ISO 639-2 "und", packed as three 5-bit letters minus 0x60.
const LANGUAGE_UND: u16 = ((b'u' - 0x60) as u16) << 10 | ((b'n' - 0x60) as u16) << 5 | (b'd' - 0x60) as u16;

/// Why a track set cannot be written as CMAF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// Audio that is not AAC: writing it would make a file no HLS player decodes.
    #[error("audio codec {0} must be transcoded to AAC first")]
    NotTranscoded(&'static str),
}

/// A track's sample entry: the codecs CMAF carries here.
#[derive(Clone, Copy)]
enum Entry<'a> {
    Avc(&'a AvcConfig),
    Hevc(&'a HevcConfig),
    Av1(&'a Av1Config),
    Aac(&'a AacConfig),
}

impl<'a> Entry<'a> {
    fn of(codec: &'a CodecConfig) -> Result<Self, InitError> {
        match codec {
            CodecConfig::Avc(avc) => Ok(Entry::Avc(avc)),
            CodecConfig::Hevc(hevc) => Ok(Entry::Hevc(hevc)),
            CodecConfig::Av1(av1) => Ok(Entry::Av1(av1)),
            CodecConfig::Aac(aac) => Ok(Entry::Aac(aac)),
            CodecConfig::OtherAudio(other) => Err(InitError::NotTranscoded(other.codec.name())),
        }
    }
}

/// Writes the init segment: `ftyp` + `moov` for all tracks. Track `i` gets
/// `track_id = i + 1` and its `TrackInfo::timebase` as timescale. The codec
/// configuration decides the handler and sample entry (`TrackInfo::kind` is
/// not consulted, so the two cannot disagree in the output). A track in a
/// codec CMAF does not carry here is refused, and nothing is written.
pub fn write_init(tracks: &[TrackInfo]) -> Result<Bytes, InitError> {
    let entries = tracks.iter().map(|t| Entry::of(&t.codec)).collect::<Result<Vec<_>, _>>()?;
    let mut w = Writer::with_capacity(1024);
    w.boxed(b"ftyp", |w| {
        w.bytes(b"iso6");
        w.u32(0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            w.bytes(brand);
        }
    });
    w.boxed(b"moov", |w| {
        let next_track_id = u32::try_from(tracks.len()).map_or(u32::MAX, |n| n.saturating_add(1));
        write_mvhd(w, next_track_id);
        for (track_id, (track, entry)) in (1..=u32::MAX).zip(tracks.iter().zip(&entries)) {
            write_trak(w, track_id, track, *entry);
        }
        w.boxed(b"mvex", |w| {
            for track_id in (1..=u32::MAX).take(tracks.len()) {
                write_trex(w, track_id);
            }
        });
    });
    Ok(w.into_bytes())
}

fn write_mvhd(w: &mut Writer, next_track_id: u32) {
    w.full_box(b"mvhd", 0, 0, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(MOVIE_TIMESCALE);
        w.u32(0); // duration: unknown, fragmented
        w.u32(0x0001_0000); // rate 1.0
        w.u16(0x0100); // volume 1.0
        w.zeros(2 + 8); // reserved
        UNITY_MATRIX.into_iter().for_each(|m| w.u32(m));
        w.zeros(6 * 4); // pre_defined
        w.u32(next_track_id);
    });
}

fn write_trak(w: &mut Writer, track_id: u32, track: &TrackInfo, entry: Entry) {
    w.boxed(b"trak", |w| {
        write_tkhd(w, track_id, entry);
        w.boxed(b"mdia", |w| {
            w.full_box(b"mdhd", 0, 0, |w| {
                w.u32(0); // creation_time
                w.u32(0); // modification_time
                w.u32(track.timebase.ticks_per_second());
                w.u32(0); // duration
                w.u16(LANGUAGE_UND);
                w.u16(0); // pre_defined
            });
            let (handler, name): (&[u8; 4], &[u8]) = match entry {
                Entry::Avc(_) | Entry::Hevc(_) | Entry::Av1(_) => (b"vide", b"VideoHandler\0"),
                Entry::Aac(_) => (b"soun", b"SoundHandler\0"),
            };
            w.full_box(b"hdlr", 0, 0, |w| {
                w.u32(0); // pre_defined
                w.bytes(handler);
                w.zeros(3 * 4); // reserved
                w.bytes(name);
            });
            w.boxed(b"minf", |w| {
                match entry {
                    Entry::Avc(_) | Entry::Hevc(_) | Entry::Av1(_) => w.full_box(b"vmhd", 0, 1, |w| {
                        w.u16(0); // graphicsmode: copy
                        w.zeros(3 * 2); // opcolor
                    }),
                    Entry::Aac(_) => w.full_box(b"smhd", 0, 0, |w| {
                        w.i16(0); // balance
                        w.u16(0); // reserved
                    }),
                }
                w.boxed(b"dinf", |w| {
                    w.full_box(b"dref", 0, 0, |w| {
                        w.u32(1); // entry_count
                        w.full_box(b"url ", 0, 1, |_| {}); // media data in this file
                    });
                });
                write_stbl(w, track, entry);
            });
        });
    });
}

fn write_tkhd(w: &mut Writer, track_id: u32, entry: Entry) {
    let (volume, width, height) = match entry {
        Entry::Avc(avc) => (0, avc.width, avc.height),
        Entry::Hevc(hevc) => (0, hevc.width, hevc.height),
        Entry::Av1(av1) => (0, av1.width, av1.height),
        Entry::Aac(_) => (0x0100, 0, 0),
    };
    w.full_box(b"tkhd", 0, TKHD_ENABLED_IN_MOVIE, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(track_id);
        w.u32(0); // reserved
        w.u32(0); // duration
        w.zeros(2 * 4); // reserved
        w.i16(0); // layer
        w.i16(0); // alternate_group
        w.u16(volume);
        w.u16(0); // reserved
        UNITY_MATRIX.into_iter().for_each(|m| w.u32(m));
        w.u32(fixed_16_16(width));
        w.u32(fixed_16_16(height));
    });
}

/// `value` as 16.16 fixed point, saturating at the largest integer part.
fn fixed_16_16(value: u32) -> u32 {
    saturate_u16(value) << 16
}

fn saturate_u16(value: u32) -> u32 {
    value.min(u32::from(u16::MAX))
}

fn write_stbl(w: &mut Writer, track: &TrackInfo, entry: Entry) {
    w.boxed(b"stbl", |w| {
        w.full_box(b"stsd", 0, 0, |w| {
            w.u32(1); // entry_count
            match entry {
                Entry::Avc(avc) => write_visual_entry(w, *b"avc1", *b"avcC", &avc.record, avc.width, avc.height),
                Entry::Hevc(hevc) => write_visual_entry(w, *b"hvc1", *b"hvcC", &hevc.record, hevc.width, hevc.height),
                Entry::Av1(av1) => write_visual_entry(w, *b"av01", *b"av1C", &av1.record, av1.width, av1.height),
                Entry::Aac(aac) => write_mp4a(w, aac, track.bitrate),
            }
        });
        // Samples live in fragments: the sample tables are empty.
        w.full_box(b"stts", 0, 0, |w| w.u32(0));
        w.full_box(b"stsc", 0, 0, |w| w.u32(0));
        w.full_box(b"stsz", 0, 0, |w| {
            w.u32(0); // sample_size
            w.u32(0); // sample_count
        });
        w.full_box(b"stco", 0, 0, |w| w.u32(0));
    });
}

/// The fields every `SampleEntry` starts with.
fn write_sample_entry_header(w: &mut Writer) {
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
}

/// A VisualSampleEntry (ISO/IEC 14496-12 12.1.3) with its decoder configuration
/// record: `avc1`/`avcC` (14496-15 5.4.2), `hvc1`/`hvcC` (14496-15 8.4.1; parameter
/// sets only in the record, as `hvc1` requires) or `av01`/`av1C` (AV1 in ISOBMFF 2.2).
fn write_visual_entry(w: &mut Writer, entry: [u8; 4], config: [u8; 4], record: &[u8], width: u32, height: u32) {
    w.boxed(&entry, |w| {
        write_sample_entry_header(w);
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.zeros(3 * 4); // pre_defined
        w.u16(saturate_u16(width) as u16);
        w.u16(saturate_u16(height) as u16);
        w.u32(0x0048_0000); // horizresolution 72 dpi
        w.u32(0x0048_0000); // vertresolution 72 dpi
        w.u32(0); // reserved
        w.u16(1); // frame_count
        w.zeros(32); // compressorname: empty Pascal string
        w.u16(0x0018); // depth: colour, no alpha
        w.i16(-1); // pre_defined
        w.boxed(&config, |w| w.bytes(record));
        w.boxed(b"pasp", |w| {
            w.u32(1); // hSpacing
            w.u32(1); // vSpacing
        });
    });
}

/// `mp4a` AudioSampleEntry (ISO/IEC 14496-14 5.6) with its `esds`.
fn write_mp4a(w: &mut Writer, aac: &AacConfig, bitrate: Option<u32>) {
    w.boxed(b"mp4a", |w| {
        write_sample_entry_header(w);
        w.zeros(2 * 4); // reserved
        w.u16(channel_count(aac.channels));
        w.u16(16); // samplesize
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        // 16.16 rate; a rate past 16 bits is written as 0, as ffmpeg does:
        // decoders take the rate from the AudioSpecificConfig.
        w.u32(u16::try_from(aac.sample_rate).map_or(0, |rate| u32::from(rate) << 16));
        write_esds(w, &aac.asc, bitrate);
    });
}

/// Channels of an AAC `channelConfiguration` (ISO/IEC 14496-3 table 1.19);
/// 0 (layout in a program config element) and reserved values say stereo.
fn channel_count(channel_configuration: u8) -> u16 {
    match channel_configuration {
        1..=6 => u16::from(channel_configuration),
        7 | 12 | 14 => 8,
        11 => 7,
        13 => 24,
        _ => 2,
    }
}

/// Descriptor tags of ISO/IEC 14496-1 7.2.2.1.
const ES_DESCRIPTOR: u8 = 0x03;
const DECODER_CONFIG_DESCRIPTOR: u8 = 0x04;
const DECODER_SPECIFIC_INFO: u8 = 0x05;
const SL_CONFIG_DESCRIPTOR: u8 = 0x06;
/// objectTypeIndication of MPEG-4 Audio.
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
/// streamType 5 (AudioStream) << 2 | upStream 0 << 1 | reserved 1.
const STREAM_TYPE_AUDIO: u8 = 0x05 << 2 | 1;
/// SLConfigDescriptor predefined = 2: reserved for use in MP4 files.
const SL_PREDEFINED_MP4: u8 = 0x02;

/// `esds` (ISO/IEC 14496-14 5.6.1): ES_Descriptor > DecoderConfigDescriptor >
/// DecoderSpecificInfo (the AudioSpecificConfig verbatim), then SLConfigDescriptor.
fn write_esds(w: &mut Writer, asc: &[u8], bitrate: Option<u32>) {
    let dsi_len = descriptor_size(asc.len());
    let dcd_body = 13 + dsi_len;
    let es_body = 3 + descriptor_size(dcd_body) + descriptor_size(1);
    w.full_box(b"esds", 0, 0, |w| {
        write_descriptor_header(w, ES_DESCRIPTOR, es_body);
        w.u16(0); // ES_ID: 0 in files (14496-14 3.1.2)
        w.u8(0); // no streamDependence, URL, OCRstream; streamPriority 0
        write_descriptor_header(w, DECODER_CONFIG_DESCRIPTOR, dcd_body);
        w.u8(OBJECT_TYPE_MPEG4_AUDIO);
        w.u8(STREAM_TYPE_AUDIO);
        w.bytes(&[0, 0, 0]); // bufferSizeDB: unknown
        w.u32(0); // maxBitrate: unknown
        w.u32(bitrate.unwrap_or(0)); // avgBitrate: 0 = variable / unknown
        write_descriptor_header(w, DECODER_SPECIFIC_INFO, asc.len());
        w.bytes(asc);
        write_descriptor_header(w, SL_CONFIG_DESCRIPTOR, 1);
        w.u8(SL_PREDEFINED_MP4);
    });
}

/// Largest body an expandable descriptor size (4 bytes of 7 bits) can say.
const MAX_DESCRIPTOR_BODY: usize = (1 << 28) - 1;

/// Bytes of a descriptor with a `body`-byte body: tag, size, body.
fn descriptor_size(body: usize) -> usize {
    1 + size_field_len(body) + body
}

fn size_field_len(body: usize) -> usize {
    match body {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        _ => 4,
    }
}

/// Writes a descriptor tag and its size in the shortest expandable form.
/// A size past 28 bits (an AudioSpecificConfig of 256 MiB) saturates.
fn write_descriptor_header(w: &mut Writer, tag: u8, body: usize) {
    let body = body.min(MAX_DESCRIPTOR_BODY);
    w.u8(tag);
    let len = size_field_len(body);
    for i in (0..len).rev() {
        let more = if i == 0 { 0 } else { 0x80 };
        w.u8(more | ((body >> (7 * i)) & 0x7f) as u8);
    }
}

/// `trex`: defaults for fragments; every fragment sample states its own.
fn write_trex(w: &mut Writer, track_id: u32) {
    w.full_box(b"trex", 0, 0, |w| {
        w.u32(track_id);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::{AudioCodec, OtherAudioConfig, Timebase, TrackKind};

    use media::test_vectors::ASC_48K_STEREO;
    use media::test_vectors::AVCC_640X360;

    fn video_track() -> TrackInfo {
        TrackInfo {
            kind: TrackKind::Video,
            timebase: Timebase::VIDEO,
            codec: CodecConfig::Avc(AvcConfig::from_record(Bytes::from_static(&AVCC_640X360)).unwrap()),
            frame_rate: Some((30, 1)),
            bitrate: None,
        }
    }

    fn audio_track() -> TrackInfo {
        TrackInfo {
            kind: TrackKind::Audio,
            timebase: Timebase(48_000),
            codec: CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&ASC_48K_STEREO)).unwrap()),
            frame_rate: None,
            bitrate: Some(128_000),
        }
    }

    /// One box found by `walk`: its path from the root and its body.
    struct Found<'a> {
        path: String,
        body: &'a [u8],
    }

    /// Bytes of a box body to skip before its child boxes, for boxes that have children.
    fn children_at(fourcc: &str) -> Option<usize> {
        match fourcc {
            "moov" | "trak" | "mdia" | "minf" | "dinf" | "stbl" | "mvex" => Some(0),
            "dref" | "stsd" => Some(8),           // version, flags, entry_count
            "avc1" | "hvc1" | "av01" => Some(78), // VisualSampleEntry fields
            "mp4a" => Some(28),                   // AudioSampleEntry fields
            _ => None,
        }
    }

    /// Walks a box tree depth-first, checking that every size fits its parent.
    fn walk<'a>(data: &'a [u8], parent: &str, out: &mut Vec<Found<'a>>) {
        let mut rest = data;
        while !rest.is_empty() {
            assert!(rest.len() >= 8, "{parent}: {} trailing bytes", rest.len());
            let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let fourcc = std::str::from_utf8(&rest[4..8]).unwrap();
            assert!((8..=rest.len()).contains(&size), "{parent}/{fourcc}: size {size} of {}", rest.len());
            let path = if parent.is_empty() { fourcc.to_string() } else { format!("{parent}/{fourcc}") };
            let body = &rest[8..size];
            out.push(Found { path: path.clone(), body });
            if let Some(skip) = children_at(fourcc) {
                walk(&body[skip..], &path, out);
            }
            rest = &rest[size..];
        }
    }

    fn u16_at(body: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(body[at..at + 2].try_into().unwrap())
    }

    fn u32_at(body: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(body[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn init_box_tree_for_avc_and_aac() {
        let init = write_init(&[video_track(), audio_track()]).unwrap();
        let mut boxes = Vec::new();
        walk(&init, "", &mut boxes);
        let paths: Vec<&str> = boxes.iter().map(|b| b.path.as_str()).collect();
        let trak = |handler: &str, entry: &[&'static str]| {
            let mut p = vec![
                "moov/trak",
                "moov/trak/tkhd",
                "moov/trak/mdia",
                "moov/trak/mdia/mdhd",
                "moov/trak/mdia/hdlr",
                "moov/trak/mdia/minf",
                if handler == "vide" { "moov/trak/mdia/minf/vmhd" } else { "moov/trak/mdia/minf/smhd" },
                "moov/trak/mdia/minf/dinf",
                "moov/trak/mdia/minf/dinf/dref",
                "moov/trak/mdia/minf/dinf/dref/url ",
                "moov/trak/mdia/minf/stbl",
                "moov/trak/mdia/minf/stbl/stsd",
            ];
            p.extend_from_slice(entry);
            p.extend_from_slice(&[
                "moov/trak/mdia/minf/stbl/stts",
                "moov/trak/mdia/minf/stbl/stsc",
                "moov/trak/mdia/minf/stbl/stsz",
                "moov/trak/mdia/minf/stbl/stco",
            ]);
            p
        };
        let mut want = vec!["ftyp", "moov", "moov/mvhd"];
        want.extend(trak(
            "vide",
            &[
                "moov/trak/mdia/minf/stbl/stsd/avc1",
                "moov/trak/mdia/minf/stbl/stsd/avc1/avcC",
                "moov/trak/mdia/minf/stbl/stsd/avc1/pasp",
            ],
        ));
        want.extend(trak("soun", &["moov/trak/mdia/minf/stbl/stsd/mp4a", "moov/trak/mdia/minf/stbl/stsd/mp4a/esds"]));
        want.extend(["moov/mvex", "moov/mvex/trex", "moov/mvex/trex"]);
        assert_eq!(paths, want);

        let all = |path: &str| -> Vec<&[u8]> { boxes.iter().filter(|b| b.path == path).map(|b| b.body).collect() };
        let one = |path: &str| -> &[u8] {
            let found = all(path);
            assert_eq!(found.len(), 1, "{path}");
            found[0]
        };

        assert_eq!(one("ftyp"), b"iso6\0\0\0\0iso6cmfcmp41");
        let mvhd = one("moov/mvhd");
        assert_eq!((u32_at(mvhd, 12), u32_at(mvhd, 16)), (1000, 0), "mvhd timescale, duration");
        assert_eq!(u32_at(mvhd, 96), 3, "next_track_id");

        let tkhd = all("moov/trak/tkhd");
        // (flags, track_id, volume, width, height)
        let tkhd_fields: Vec<_> =
            tkhd.iter().map(|b| (u32_at(b, 0), u32_at(b, 12), u16_at(b, 36), u32_at(b, 76), u32_at(b, 80))).collect();
        assert_eq!(tkhd_fields, [(3, 1, 0, 640 << 16, 360 << 16), (3, 2, 0x0100, 0, 0)]);

        let mdhd: Vec<_> = all("moov/trak/mdia/mdhd").iter().map(|b| (u32_at(b, 12), u16_at(b, 20))).collect();
        assert_eq!(mdhd, [(90_000, 0x55c4), (48_000, 0x55c4)], "timescales and language und");
        let hdlr: Vec<_> = all("moov/trak/mdia/hdlr").iter().map(|b| &b[8..12]).collect();
        assert_eq!(hdlr, [b"vide", b"soun"]);
        assert_eq!(one("moov/trak/mdia/minf/vmhd"), [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(all("moov/trak/mdia/minf/dinf/dref/url ").iter().all(|b| *b == [0, 0, 0, 1]));
        assert!(all("moov/trak/mdia/minf/stbl/stco").iter().all(|b| *b == [0; 8]));

        let avc1 = one("moov/trak/mdia/minf/stbl/stsd/avc1");
        assert_eq!((u16_at(avc1, 6), u16_at(avc1, 24), u16_at(avc1, 26)), (1, 640, 360), "dref index, size");
        assert_eq!((u16_at(avc1, 40), u16_at(avc1, 74), u16_at(avc1, 76)), (1, 0x18, 0xffff), "frames, depth");
        assert_eq!(one("moov/trak/mdia/minf/stbl/stsd/avc1/avcC"), AVCC_640X360);

        let mp4a = one("moov/trak/mdia/minf/stbl/stsd/mp4a");
        // (data_reference_index, channelcount, samplesize, samplerate)
        assert_eq!((u16_at(mp4a, 6), u16_at(mp4a, 16), u16_at(mp4a, 18), u32_at(mp4a, 24)), (1, 2, 16, 48_000 << 16));
        let esds = one("moov/trak/mdia/minf/stbl/stsd/mp4a/esds");
        let asc_at = esds.windows(2).position(|t| t == [DECODER_SPECIFIC_INFO, 2]).unwrap() + 2;
        assert_eq!(&esds[asc_at..asc_at + 2], ASC_48K_STEREO);

        let trex: Vec<_> = all("moov/mvex/trex").iter().map(|b| (u32_at(b, 4), u32_at(b, 8))).collect();
        assert_eq!(trex, [(1, 1), (2, 1)], "track_id, default_sample_description_index");
    }

    #[rustfmt::skip]
    const ESDS_48K_STEREO_128K: [u8; 39] = [
        0, 0, 0, 39, b'e', b's', b'd', b's', 0, 0, 0, 0,
        0x03, 25, 0, 0, 0, // ES_Descriptor: ES_ID 0, flags 0
        0x04, 17, 0x40, 0x15, 0, 0, 0, // DecoderConfigDescriptor: MPEG-4 audio, AudioStream, buffer 0
        0, 0, 0, 0, 0, 0x01, 0xf4, 0x00, // maxBitrate 0, avgBitrate 128000
        0x05, 2, 0x11, 0x90, // DecoderSpecificInfo: the ASC
        0x06, 1, 0x02, // SLConfigDescriptor: predefined MP4
    ];

    #[test]
    fn golden_boxes() {
        let written = |write: &dyn Fn(&mut Writer)| {
            let mut w = Writer::default();
            write(&mut w);
            w.into_bytes()
        };
        let long_asc = vec![0xaa; 200];
        let mut esds_long_asc = vec![0, 0, 0, 240, b'e', b's', b'd', b's', 0, 0, 0, 0];
        // Bodies of 128 bytes and more take a two-byte size: 0x81 0x61 = 225, 0x81 0x58 = 216, 0x81 0x48 = 200.
        esds_long_asc.extend([0x03, 0x81, 0x61, 0, 0, 0, 0x04, 0x81, 0x58, 0x40, 0x15, 0, 0, 0]);
        esds_long_asc.extend([0; 8]);
        esds_long_asc.extend([0x05, 0x81, 0x48]);
        esds_long_asc.extend(&long_asc);
        esds_long_asc.extend([0x06, 1, 2]);
        let cases: [(&str, Bytes, Vec<u8>); 5] = [
            ("esds", written(&|w| write_esds(w, &ASC_48K_STEREO, Some(128_000))), ESDS_48K_STEREO_128K.to_vec()),
            ("esds with two-byte sizes", written(&|w| write_esds(w, &long_asc, None)), esds_long_asc),
            (
                "trex",
                written(&|w| write_trex(w, 2)),
                // track_id 2, default_sample_description_index 1, other defaults 0.
                [&b"\0\0\0\x20trex\0\0\0\0"[..], &[0, 0, 0, 2], &[0, 0, 0, 1], &[0; 12]].concat(),
            ),
            (
                "mp4a fields",
                written(&|w| {
                    let aac = AacConfig::from_asc(Bytes::from_static(&ASC_48K_STEREO)).unwrap();
                    write_mp4a(w, &aac, Some(128_000));
                }),
                [
                    &[0, 0, 0, 75, b'm', b'p', b'4', b'a', 0, 0, 0, 0, 0, 0, 0, 1][..],
                    &[0; 8],
                    &[0, 2, 0, 16, 0, 0, 0, 0, 0xbb, 0x80, 0, 0],
                    &ESDS_48K_STEREO_128K,
                ]
                .concat(),
            ),
            (
                "no tracks",
                write_init(&[]).unwrap(),
                [
                    &b"\0\0\0\x1cftypiso6\0\0\0\0iso6cmfcmp41\0\0\0\x7cmoov\0\0\0\x6cmvhd"[..],
                    &[0; 12],
                    &[0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0],
                    &[0; 10],
                    &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    &[0x40, 0, 0, 0],
                    &[0; 24],
                    &[0, 0, 0, 1], // next_track_id
                    b"\0\0\0\x08mvex",
                ]
                .concat(),
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(&got[..], &want[..], "{name}");
        }
    }

    /// Parameter sets x265 wrote for 320x180 Main profile, start codes removed.
    const HEVC_VPS: [u8; 24] = [
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0x95, 0x94, 0x09,
    ];
    const HEVC_SPS: [u8; 43] = [
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0xa0, 0x0a, 0x08, 0x0c, 0x1f, 0x3e, 0x59, 0x59, 0x52, 0x93, 0x0b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10,
    ];
    const HEVC_PPS: [u8; 6] = [0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89];

    #[test]
    fn av01_sample_entry_carries_the_av1c_record() {
        let av1 = media::Av1Config::from_record(Bytes::from_static(media::test_vectors::AV1C_320X180)).unwrap();
        let track = TrackInfo { codec: CodecConfig::Av1(av1), ..video_track() };
        let init = write_init(std::slice::from_ref(&track)).unwrap();
        let mut boxes = Vec::new();
        walk(&init, "", &mut boxes);
        let paths: Vec<&str> = boxes.iter().map(|b| b.path.as_str()).filter(|p| p.contains("stsd/")).collect();
        assert_eq!(
            paths,
            [
                "moov/trak/mdia/minf/stbl/stsd/av01",
                "moov/trak/mdia/minf/stbl/stsd/av01/av1C",
                "moov/trak/mdia/minf/stbl/stsd/av01/pasp"
            ]
        );
        let av1c = boxes.iter().find(|b| b.path.ends_with("av01/av1C")).unwrap().body;
        assert_eq!(av1c, media::test_vectors::AV1C_320X180, "the record verbatim");
        let av01 = boxes.iter().find(|b| b.path.ends_with("stsd/av01")).unwrap().body;
        assert_eq!(&av01[24..28], &[0x01, 0x40, 0x00, 0xb4], "320 x 180");
    }

    #[test]
    fn hvc1_sample_entry_golden() {
        let hevc = HevcConfig::from_parameter_sets(
            &[Bytes::from_static(&HEVC_VPS)],
            &[Bytes::from_static(&HEVC_SPS)],
            &[Bytes::from_static(&HEVC_PPS)],
        )
        .unwrap();
        let track = TrackInfo { codec: CodecConfig::Hevc(hevc), ..video_track() };
        let init = write_init(std::slice::from_ref(&track)).unwrap();
        let mut boxes = Vec::new();
        walk(&init, "", &mut boxes);
        let paths: Vec<&str> = boxes.iter().map(|b| b.path.as_str()).filter(|p| p.contains("stsd/")).collect();
        assert_eq!(
            paths,
            [
                "moov/trak/mdia/minf/stbl/stsd/hvc1",
                "moov/trak/mdia/minf/stbl/stsd/hvc1/hvcC",
                "moov/trak/mdia/minf/stbl/stsd/hvc1/pasp"
            ]
        );
        let hvc1 = boxes.iter().find(|b| b.path.ends_with("stsd/hvc1")).unwrap().body;
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[0, 0, 0, 0, 0, 0, 0, 1][..], // reserved, data_reference_index 1
            &[0; 16],                        // pre_defined, reserved, pre_defined
            &[0x01, 0x40, 0x00, 0xb4],       // 320 x 180
            &[0, 0x48, 0, 0, 0, 0x48, 0, 0], // 72 dpi both ways
            &[0, 0, 0, 0, 0, 1],             // reserved, frame_count 1
            &[0; 32],                        // compressorname
            &[0, 0x18, 0xff, 0xff],          // depth, pre_defined -1
            &[0, 0, 0, 119], b"hvcC",
            // configurationVersion, Main profile, compatibility 0x60000000, constraints 0x90, level 60
            &[1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60],
            // min_spatial_segmentation 0, parallelism 0, 4:2:0, 8-bit, 8-bit, avgFrameRate 0,
            // one temporal layer, nested, 4-byte lengths; three arrays
            &[0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 3],
            &[0x80 | 32, 0, 1, 0, 24], &HEVC_VPS,
            &[0x80 | 33, 0, 1, 0, 43], &HEVC_SPS,
            &[0x80 | 34, 0, 1, 0, 6], &HEVC_PPS,
            &[0, 0, 0, 16], b"pasp", &[0, 0, 0, 1, 0, 0, 0, 1],
        ]
        .concat();
        assert_eq!(hvc1, &want[..]);
        let tkhd = boxes.iter().find(|b| b.path == "moov/trak/tkhd").unwrap().body;
        assert_eq!((u32_at(tkhd, 76), u32_at(tkhd, 80)), (320 << 16, 180 << 16));
        let hdlr = boxes.iter().find(|b| b.path == "moov/trak/mdia/hdlr").unwrap().body;
        assert_eq!(&hdlr[8..12], b"vide");
        assert_eq!(track.codec.rfc6381(), "hvc1.1.6.L60.90");
    }

    #[test]
    fn channel_counts_and_odd_configs() {
        let cases = [(0, 2), (1, 1), (2, 2), (6, 6), (7, 8), (11, 7), (12, 8), (13, 24), (14, 8), (15, 2)];
        for (config, want) in cases {
            assert_eq!(channel_count(config), want, "channelConfiguration {config}");
        }
        // A 96 kHz rate does not fit 16.16: written as 0. Oversized pictures saturate.
        let mut audio = audio_track();
        let mut video = video_track();
        if let CodecConfig::Aac(aac) = &mut audio.codec {
            aac.sample_rate = 96_000;
            aac.asc = Bytes::new();
        }
        if let CodecConfig::Avc(avc) = &mut video.codec {
            (avc.width, avc.height) = (u32::MAX, 70_000);
            avc.record = Bytes::new();
        }
        let init = write_init(&[video, audio]).unwrap();
        let mut boxes = Vec::new();
        walk(&init, "", &mut boxes);
        let body = |path: &str| boxes.iter().find(|b| b.path == path).unwrap().body;
        assert_eq!(u32_at(body("moov/trak/mdia/minf/stbl/stsd/mp4a"), 24), 0);
        let avc1 = body("moov/trak/mdia/minf/stbl/stsd/avc1");
        assert_eq!((u16_at(avc1, 24), u16_at(avc1, 26)), (0xffff, 0xffff));
        assert_eq!(u32_at(body("moov/trak/tkhd"), 76), 0xffff_0000);
        assert_eq!(body("moov/trak/mdia/minf/stbl/stsd/avc1/avcC"), b"");
    }

    #[test]
    fn audio_that_is_not_aac_is_refused() {
        let cases = [
            (
                OtherAudioConfig::g711(AudioCodec::G711ALaw, 1),
                "audio codec G.711 A-law must be transcoded to AAC first",
            ),
            (
                OtherAudioConfig::from_mp3_frame(&[0xff, 0xfb, 0x90, 0x64]).unwrap(),
                "audio codec MP3 must be transcoded to AAC first",
            ),
        ];
        for (config, want) in cases {
            let audio =
                TrackInfo { codec: CodecConfig::OtherAudio(config), timebase: Timebase(8_000), ..audio_track() };
            let err = write_init(&[video_track(), audio]).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }
}
