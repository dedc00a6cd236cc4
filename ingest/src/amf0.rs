//! Screening of AMF0 payloads before scuffle-amf0 decodes them. Its decoder
//! sizes maps and vectors from counts in the input (`with_capacity(u32)`), so
//! a 24-byte command could make it allocate hundreds of gigabytes and abort
//! the process, and it recurses without a depth limit. `check_amf0` walks a
//! payload the way the decoder would, quirks included, and refuses those
//! that could do harm.

use crate::error::IngestError;

/// Larger AMF0 commands or data messages are refused (real ones are a few hundred bytes).
pub(crate) const MAX_AMF0_MESSAGE: usize = 1 << 20;
/// Deeper AMF0 nesting is refused (real messages nest two or three levels).
pub(crate) const MAX_AMF0_DEPTH: usize = 32;

/// Walks an AMF0 message the way scuffle-amf0's decoder would and refuses it
/// when a container's count cannot fit in the bytes left, when it nests
/// deeper than `MAX_AMF0_DEPTH`, or when it is larger than `MAX_AMF0_MESSAGE`.
/// Where the decoder would stop with an error (truncation, an unsupported
/// marker) the walk stops too and accepts: the decoder allocates nothing after it.
pub(crate) fn check_amf0(data: &[u8]) -> Result<(), IngestError> {
    if data.len() > MAX_AMF0_MESSAGE {
        return Err(IngestError::Amf0Rejected("message larger than 1 MiB"));
    }
    match walk(data) {
        Walk::Rejected(why) => Err(IngestError::Amf0Rejected(why)),
        Walk::Done | Walk::DecoderStops => Ok(()),
    }
}

enum Walk {
    Done,
    DecoderStops,
    Rejected(&'static str),
}

enum Frame {
    /// Object or typed object: key/value pairs up to an empty key and the end marker.
    Object,
    /// ECMA array: exactly `left` more pairs, then an optional end marker.
    Ecma {
        left: u32,
    },
    Strict {
        left: u32,
    },
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// A marker the decoder has already taken from the stream and will use
    /// for the next value. scuffle-amf0 0.2 peeks for an end marker after an
    /// ECMA array's last pair, keeps what it read, and reads the next key
    /// (which has no marker) from after it: the walk must do the same, or it
    /// checks different bytes than the decoder sizes containers from (found
    /// by the `amf0` fuzz target: a 6.5 GB allocation).
    pending: Option<u8>,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let bytes = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// A value's marker: the one the decoder kept, or the next byte.
    fn marker(&mut self) -> Option<u8> {
        self.pending.take().or_else(|| self.u8())
    }

    /// A key or typed-object name: u16 length and bytes.
    fn short_string(&mut self) -> Option<usize> {
        let len = self.u16()?;
        self.take(len)?;
        Some(len)
    }
}

fn walk(data: &[u8]) -> Walk {
    const OBJECT_END: u8 = 0x09;
    let mut c = Cursor { data, pos: 0, pending: None };
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        match stack.last_mut() {
            None => {
                if c.remaining() == 0 && c.pending.is_none() {
                    return Walk::Done;
                }
            }
            Some(Frame::Object) => {
                let Some(key_len) = c.short_string() else { return Walk::DecoderStops };
                // A kept marker is never the end marker; it stays for the value.
                if key_len == 0 && c.pending.is_none() && c.peek() == Some(OBJECT_END) {
                    c.pos += 1;
                    stack.pop();
                    continue;
                }
            }
            Some(Frame::Ecma { left }) => {
                if *left == 0 {
                    stack.pop();
                    // The decoder peeks a marker here (a kept one if it has one):
                    // an end marker is consumed, another is kept for the next value.
                    if c.pending.is_none() {
                        match c.peek() {
                            None => {}
                            Some(OBJECT_END) => c.pos += 1,
                            Some(marker) if marker > 0x11 => return Walk::DecoderStops,
                            Some(marker) => {
                                c.pos += 1;
                                c.pending = Some(marker);
                            }
                        }
                    }
                    continue;
                }
                *left -= 1;
                if c.short_string().is_none() {
                    return Walk::DecoderStops;
                }
            }
            Some(Frame::Strict { left }) => {
                if *left == 0 {
                    stack.pop();
                    continue;
                }
                *left -= 1;
            }
        }
        // One value.
        let Some(marker) = c.marker() else { return Walk::DecoderStops };
        let skipped = match marker {
            0x00 => c.take(8).map(drop),
            0x01 => c.take(1).map(drop),
            0x02 => c.u16().and_then(|len| c.take(len)).map(drop),
            0x05 | 0x06 => Some(()),
            0x0b => c.take(10).map(drop),
            0x0c | 0x0f => c.u32().and_then(|len| c.take(len as usize)).map(drop),
            0x03 | 0x08 | 0x0a | 0x10 => {
                if stack.len() >= MAX_AMF0_DEPTH {
                    return Walk::Rejected("nested deeper than 32 levels");
                }
                let frame = match marker {
                    0x03 => Some(Frame::Object),
                    0x10 => c.short_string().map(|_| Frame::Object),
                    0x08 => match c.u32() {
                        // Every pair takes at least a 2-byte key length and a marker.
                        Some(count) if count as usize > c.remaining() / 3 => {
                            return Walk::Rejected("ECMA array count exceeds the message");
                        }
                        count => count.map(|left| Frame::Ecma { left }),
                    },
                    _ => match c.u32() {
                        Some(count) if count as usize > c.remaining() => {
                            return Walk::Rejected("strict array count exceeds the message");
                        }
                        count => count.map(|left| Frame::Strict { left }),
                    },
                };
                frame.map(|frame| stack.push(frame))
            }
            // Movie clip, reference, object end out of place, unsupported,
            // record set, AVM+ and unknown markers: the decoder fails here.
            _ => None,
        };
        if skipped.is_none() {
            return Walk::DecoderStops;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use scuffle_amf0::{Amf0Decoder, Amf0Encoder, Amf0Object, Amf0Value};

    use super::*;

    fn command(name: &str, extra: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = Amf0Encoder::new(&mut buf);
        enc.encode_string(name).unwrap();
        enc.encode_number(1.0).unwrap();
        buf.extend_from_slice(extra);
        buf
    }

    fn nested(levels: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for _ in 0..levels {
            bytes.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        bytes.push(0x05);
        bytes
    }

    #[test]
    fn amf0_table() {
        let mut real = Vec::new();
        let mut enc = Amf0Encoder::new(&mut real);
        enc.encode_string("connect").unwrap();
        enc.encode_number(1.0).unwrap();
        let object: Amf0Object = [
            ("app".into(), Amf0Value::String("live".into())),
            ("tcUrl".into(), Amf0Value::String("rtmp://127.0.0.1/live".into())),
            ("fpad".into(), Amf0Value::Boolean(false)),
            ("capabilities".into(), Amf0Value::Number(15.0)),
        ]
        .into_iter()
        .collect();
        enc.encode_object(&object).unwrap();
        enc.encode_null().unwrap();

        // FFmpeg's onMetaData: ECMA array with count, closed by 00 00 09.
        let mut meta = command("@setDataFrame", &[]);
        meta.truncate(meta.len() - 9);
        meta.extend_from_slice(&[0x02, 0, 10]);
        meta.extend_from_slice(b"onMetaData");
        meta.extend_from_slice(&[0x08, 0, 0, 0, 1, 0, 5]);
        meta.extend_from_slice(b"width");
        meta.push(0x00);
        meta.extend_from_slice(&320f64.to_be_bytes());
        meta.extend_from_slice(&[0, 0, 0x09]);

        let cases: Vec<(&str, Vec<u8>, Result<(), &str>)> = vec![
            ("real connect", real, Ok(())),
            ("ffmpeg onMetaData", meta, Ok(())),
            ("empty", vec![], Ok(())),
            (
                "ECMA count u32::MAX",
                command("foo", &[0x08, 0xff, 0xff, 0xff, 0xff]),
                Err("ECMA array count exceeds the message"),
            ),
            (
                "strict count u32::MAX",
                command("foo", &[0x0a, 0xff, 0xff, 0xff, 0xff]),
                Err("strict array count exceeds the message"),
            ),
            ("strict count fits", command("foo", &[0x0a, 0, 0, 0, 2, 0x05, 0x05]), Ok(())),
            (
                "ECMA inside an object",
                command("foo", &[0x03, 0, 1, b'k', 0x08, 0x10, 0, 0, 0, 0, 0, 0x09]),
                Err("ECMA array count exceeds the message"),
            ),
            (
                "typed object holding a bomb",
                command("foo", &[0x10, 0, 1, b'T', 0, 1, b'k', 0x0a, 0x7f, 0, 0, 0]),
                Err("strict array count exceeds the message"),
            ),
            ("32 levels", nested(32), Ok(())),
            ("33 levels", nested(33), Err("nested deeper than 32 levels")),
            ("truncated string stops the decoder", command("foo", &[0x02, 0, 50, b'a']), Ok(())),
            ("unsupported marker stops the decoder", command("foo", &[0x04, 0x0a, 0xff, 0xff, 0xff, 0xff]), Ok(())),
            ("too large", vec![0x05; MAX_AMF0_MESSAGE + 1], Err("message larger than 1 MiB")),
        ];
        for (name, bytes, want) in cases {
            let got = check_amf0(&bytes).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(|w| format!("AMF0 message rejected: {w}")), "{name}");
            if want.is_ok() {
                // What we accept, the real decoder survives.
                let _ = Amf0Decoder::from_slice(&bytes).decode_all();
            }
        }
    }

    /// Found by the `amf0` fuzz target (its crash input, shortened): after an
    /// ECMA array inside an object the decoder keeps the byte it peeked (here
    /// 0x08) as the next value's marker and reads the next key (here empty)
    /// from after it, then sizes an ECMA array from the four bytes after that.
    /// The old walk read the key from the kept byte instead, found it
    /// truncated and let the payload through.
    #[test]
    fn the_decoder_keeps_the_marker_it_peeks_after_an_ecma_array() {
        let bomb = command("connect", &[0x03, 0, 1, b'k', 0x08, 0, 0, 0, 0, 0x08, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        let got = check_amf0(&bomb).map_err(|e| e.to_string());
        assert_eq!(got, Err("AMF0 message rejected: ECMA array count exceeds the message".to_owned()));
        // The same shape with a count that fits the message is accepted, and decodes.
        let fits = command("connect", &[0x03, 0, 1, b'k', 0x08, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x09]);
        assert_eq!(check_amf0(&fits).map_err(|e| e.to_string()), Ok(()));
        let _ = Amf0Decoder::from_slice(&fits).decode_all();
        // A kept marker before the end of the message still counts as a value to come.
        let kept = command("foo", &[0x08, 0, 0, 0, 0, 0x0a, 0x7f, 0xff, 0xff, 0xff]);
        let got = check_amf0(&kept).map_err(|e| e.to_string());
        assert_eq!(got, Err("AMF0 message rejected: strict array count exceeds the message".to_owned()));
    }

    #[test]
    fn accepted_garbage_never_hurts_the_decoder() {
        let mut seed = 0x1234_5678u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| (next() % 0x13) as u8).collect();
            // Bias towards big counts right after container markers.
            for i in 0..bytes.len() {
                if matches!(bytes[i], 0x08 | 0x0a) && i + 1 < bytes.len() && next() % 2 == 0 {
                    bytes[i + 1] = 0xff;
                }
            }
            if check_amf0(&bytes).is_ok() {
                let _ = Amf0Decoder::from_slice(&bytes).decode_all();
                let _ = scuffle_rtmp::command_messages::Command::read(Bytes::from(bytes));
            }
        }
    }
}
