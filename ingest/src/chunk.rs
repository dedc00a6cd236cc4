//! The client's RTMP chunk stream reassembled into messages (RTMP 1.0 §5.3).
//! Ours rather than scuffle-rtmp 0.2.3's `ChunkReader`, which gets timestamps
//! wrong: a Type 3 chunk that starts a new message must add the previous
//! delta again (FFmpeg sends one whenever two consecutive messages on a chunk
//! stream have the same size and delta, e.g. B-frames or equal-size AAC
//! frames), and deltas wrap at 32 bits instead of overflowing.
//!
//! Until its connection publishes, a reader takes only small messages. One
//! unfinished message's worth is its own (all a real client ever has in
//! flight); beyond that, unfinished messages are charged to a budget shared
//! by every connection that has not published.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::error::IngestError;
use crate::memory_budget::Account;

/// RTMP's initial chunk size.
pub(crate) const DEFAULT_CHUNK_SIZE: usize = 128;
/// Largest chunk size a client may set (the largest message length RTMP can express).
pub(crate) const MAX_CHUNK_SIZE: usize = 0xff_ffff;
/// Larger messages are refused (a 4K keyframe is a few MB).
pub(crate) const MAX_MESSAGE_SIZE: usize = 8 << 20;
/// Larger messages are refused before a publish is granted: commands are a
/// few hundred bytes (FFmpeg's `connect` is about 250, OBS's about 400).
pub(crate) const PRE_PUBLISH_MAX_MESSAGE: usize = 8 << 10;
/// Bytes of unfinished messages held at once, over all chunk streams.
pub(crate) const MAX_PARTIAL_BYTES: usize = 16 << 20;
/// Chunk streams a client may use (encoders use three to five).
pub(crate) const MAX_CHUNK_STREAMS: usize = 64;

/// One complete RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

/// What the last header on a chunk stream said, and the message in progress.
#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    /// The last Type 0/1/2 header carried an extended timestamp; Type 3
    /// chunks on this stream then carry one too.
    extended: bool,
    partial: Option<BytesMut>,
    /// What `partial` took of the pre-publish allowance and budget.
    held: Held,
}

/// What one unfinished message holds before publish: the bytes allocated
/// for it, and the part of those charged to the shared budget.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    reserved: usize,
    charged: usize,
}

/// A reader's pre-publish memory: its own allowance, then the shared budget.
#[derive(Debug)]
struct PrePublish {
    account: Account,
    /// Bytes reserved for unfinished messages now.
    reserved: usize,
}

impl PrePublish {
    /// Reserves `bytes` for a new unfinished message.
    fn hold(&mut self, bytes: usize) -> Result<Held, IngestError> {
        let over = |reserved: usize| reserved.saturating_sub(PRE_PUBLISH_MAX_MESSAGE);
        let charged = over(self.reserved + bytes) - over(self.reserved);
        if !self.account.charge(charged) {
            return Err(IngestError::Overloaded(
                "connections that have not published hold the most unfinished message data allowed",
            ));
        }
        self.reserved += bytes;
        Ok(Held { reserved: bytes, charged })
    }

    fn free(&mut self, held: Held) {
        self.reserved = self.reserved.saturating_sub(held.reserved);
        self.account.release(held.charged);
    }
}

#[derive(Debug)]
pub(crate) struct ChunkReader {
    streams: HashMap<u32, ChunkStream>,
    chunk_size: usize,
    partial_bytes: usize,
    max_message: usize,
    /// Before publish: what unfinished messages may hold.
    pre_publish: Option<PrePublish>,
}

impl Default for ChunkReader {
    fn default() -> Self {
        Self {
            streams: HashMap::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            partial_bytes: 0,
            max_message: MAX_MESSAGE_SIZE,
            pre_publish: None,
        }
    }
}

/// A chunk header as read, before it is applied to its chunk stream.
struct Header {
    csid: u32,
    format: u8,
    /// Timestamp (Type 0) or delta (Types 1 and 2), extended field applied.
    time: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    /// Bytes of basic and message header, extended timestamp included.
    size: usize,
}

impl ChunkReader {
    /// A reader for a connection that has not published: messages up to
    /// `PRE_PUBLISH_MAX_MESSAGE`; unfinished ones beyond one such message
    /// are charged to `account`.
    pub fn before_publish(account: Account) -> Self {
        let pre_publish = PrePublish { account, reserved: 0 };
        Self { max_message: PRE_PUBLISH_MAX_MESSAGE, pre_publish: Some(pre_publish), ..Self::default() }
    }

    /// The connection published: full-size messages, and what it held of
    /// the pre-publish budget is given back.
    pub fn authenticated(&mut self) {
        self.max_message = MAX_MESSAGE_SIZE;
        self.pre_publish = None;
    }

    /// The client's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), IngestError> {
        let size = (size & 0x7fff_ffff) as usize;
        if !(1..=MAX_CHUNK_SIZE).contains(&size) {
            return Err(IngestError::Chunk("chunk size out of range"));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Bytes of unfinished messages held now.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// The client's Abort Message: drops the unfinished message on `csid`.
    pub fn abort(&mut self, csid: u32) {
        let Some(stream) = self.streams.get_mut(&csid) else { return };
        if let Some(partial) = stream.partial.take() {
            self.partial_bytes -= partial.len();
            let held = std::mem::take(&mut stream.held);
            if let Some(pre_publish) = &mut self.pre_publish {
                pre_publish.free(held);
            }
        }
    }

    /// The next complete message, consuming the chunks read from `buf`;
    /// `Ok(None)` when `buf` holds no complete message yet.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, IngestError> {
        while let Some(chunk) = self.read_chunk(buf)? {
            if let Some(message) = chunk {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    /// One chunk: `None` when it is not all in `buf` yet (nothing consumed),
    /// `Some(None)` when it was consumed but its message is not complete.
    fn read_chunk(&mut self, buf: &mut BytesMut) -> Result<Option<Option<Message>>, IngestError> {
        let Some(header) = self.read_header(buf)? else { return Ok(None) };
        if !self.streams.contains_key(&header.csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(IngestError::Chunk("too many chunk streams"));
        }
        let stream = self.streams.entry(header.csid).or_default();
        let continuing = stream.partial.is_some();
        if continuing && header.format != 3 {
            return Err(IngestError::Chunk("a new message header in the middle of a message"));
        }
        // The message this chunk belongs to, as it will be once the chunk is consumed.
        let (timestamp, delta, length, type_id, stream_id, extended) = match header.format {
            _ if continuing => {
                (stream.timestamp, stream.delta, stream.length, stream.type_id, stream.stream_id, stream.extended)
            }
            // RTMP 1.0 §5.3.1.2.4: after a Type 0, the delta for a following Type 3 is its timestamp.
            0 => (header.time, header.time, header.length, header.type_id, header.stream_id, header.extended),
            1 => (
                stream.timestamp.wrapping_add(header.time),
                header.time,
                header.length,
                header.type_id,
                stream.stream_id,
                header.extended,
            ),
            2 => (
                stream.timestamp.wrapping_add(header.time),
                header.time,
                stream.length,
                stream.type_id,
                stream.stream_id,
                header.extended,
            ),
            _ => (
                stream.timestamp.wrapping_add(stream.delta),
                stream.delta,
                stream.length,
                stream.type_id,
                stream.stream_id,
                stream.extended,
            ),
        };
        if length > self.max_message {
            return Err(match self.pre_publish {
                Some(_) => IngestError::BeforePublish("a message larger than 8 KiB"),
                None => IngestError::Chunk("message larger than 8 MiB"),
            });
        }
        let received = stream.partial.as_ref().map_or(0, BytesMut::len);
        let take = (length - received).min(self.chunk_size);
        if buf.len() < header.size + take {
            return Ok(None);
        }
        let payload = buf.split_to(header.size + take).freeze().slice(header.size..);
        *stream = ChunkStream {
            timestamp,
            delta,
            length,
            type_id,
            stream_id,
            extended,
            partial: stream.partial.take(),
            held: stream.held,
        };
        if received + take < length {
            if self.partial_bytes + take > MAX_PARTIAL_BYTES {
                return Err(IngestError::Chunk("too much unfinished message data"));
            }
            let partial = match stream.partial.as_mut() {
                Some(partial) => partial,
                None => {
                    let capacity = length.min(1 << 20);
                    // Before publish the whole message is held up front: that is what gets allocated.
                    if let Some(pre_publish) = &mut self.pre_publish {
                        stream.held = pre_publish.hold(capacity)?;
                    }
                    stream.partial.insert(BytesMut::with_capacity(capacity))
                }
            };
            self.partial_bytes += take;
            partial.extend_from_slice(&payload);
            return Ok(Some(None));
        }
        let payload = match stream.partial.take() {
            Some(mut partial) => {
                self.partial_bytes -= partial.len();
                let held = std::mem::take(&mut stream.held);
                if let Some(pre_publish) = &mut self.pre_publish {
                    pre_publish.free(held);
                }
                partial.extend_from_slice(&payload);
                partial.freeze()
            }
            None => payload,
        };
        Ok(Some(Some(Message { timestamp, type_id, stream_id, payload })))
    }

    fn read_header(&self, buf: &[u8]) -> Result<Option<Header>, IngestError> {
        let Some(&first) = buf.first() else { return Ok(None) };
        let format = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match buf.get(1) {
                Some(&b) => (64 + b as u32, 2),
                None => return Ok(None),
            },
            1 => match buf.get(1..3) {
                Some(b) => (64 + b[0] as u32 + 256 * b[1] as u32, 3),
                None => return Ok(None),
            },
            csid => (csid as u32, 1),
        };
        let fields = [11, 7, 3, 0][format as usize];
        let Some(h) = buf.get(pos..pos + fields) else { return Ok(None) };
        pos += fields;
        let u24 = |b: &[u8]| (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let previous = self.streams.get(&csid);
        if format != 0 && previous.is_none() {
            return Err(IngestError::Chunk("a chunk that refers to a header never sent"));
        }
        let mut header =
            Header { csid, format, time: 0, length: 0, type_id: 0, stream_id: 0, extended: false, size: 0 };
        if format <= 2 {
            header.time = u24(&h[0..3]);
            header.extended = header.time == 0xff_ffff;
        }
        if format <= 1 {
            header.length = u24(&h[3..6]) as usize;
            header.type_id = h[6];
        }
        if format == 0 {
            header.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
        }
        if format == 3 {
            header.extended = previous.is_some_and(|s| s.extended);
        }
        if header.extended {
            let Some(ext) = buf.get(pos..pos + 4) else { return Ok(None) };
            if format <= 2 {
                header.time = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
            pos += 4;
        }
        header.size = pos;
        Ok(Some(header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_budget::MemoryBudget;

    /// (timestamp, message type, payload) of a message read.
    type Read = (u32, u8, Vec<u8>);

    /// A chunk with the given basic header format and fields, written by hand.
    fn chunk(format: u8, csid: u8, fields: &[u8], payload: &[u8]) -> Vec<u8> {
        [&[format << 6 | csid][..], fields, payload].concat()
    }

    fn type0(csid: u8, ts: u32, len: u32, type_id: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
        let (t, l) = (ts.to_be_bytes(), len.to_be_bytes());
        let mut fields = vec![t[1], t[2], t[3], l[1], l[2], l[3], type_id];
        fields.extend_from_slice(&sid.to_le_bytes());
        chunk(0, csid, &fields, payload)
    }

    fn type1(csid: u8, delta: u32, len: u32, type_id: u8, payload: &[u8]) -> Vec<u8> {
        let (d, l) = (delta.to_be_bytes(), len.to_be_bytes());
        chunk(1, csid, &[d[1], d[2], d[3], l[1], l[2], l[3], type_id], payload)
    }

    fn type2(csid: u8, delta: u32, payload: &[u8]) -> Vec<u8> {
        let d = delta.to_be_bytes();
        chunk(2, csid, &[d[1], d[2], d[3]], payload)
    }

    fn type3(csid: u8, payload: &[u8]) -> Vec<u8> {
        chunk(3, csid, &[], payload)
    }

    fn read_all(reader: &mut ChunkReader, bytes: &[u8]) -> Result<Vec<Read>, IngestError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = reader.read(&mut buf)? {
            out.push((m.timestamp, m.type_id, m.payload.to_vec()));
        }
        assert!(buf.is_empty(), "{} bytes left over", buf.len());
        Ok(out)
    }

    #[test]
    fn timestamps_follow_the_spec() {
        let cases: Vec<(&str, Vec<u8>, Vec<Read>)> = vec![
            (
                "type 0, then type 3 new messages add the delta (FFmpeg's equal-size frames)",
                [type0(6, 40, 2, 9, 1, &[1, 1]), type3(6, &[2, 2]), type3(6, &[3, 3])].concat(),
                vec![(40, 9, vec![1, 1]), (80, 9, vec![2, 2]), (120, 9, vec![3, 3])],
            ),
            (
                "type 1 and 2 deltas, then type 3 repeats the last delta",
                [type0(4, 1000, 1, 8, 1, &[1]), type1(4, 21, 2, 8, &[2, 2]), type2(4, 22, &[3, 3]), type3(4, &[4, 4])]
                    .concat(),
                vec![(1000, 8, vec![1]), (1021, 8, vec![2, 2]), (1043, 8, vec![3, 3]), (1065, 8, vec![4, 4])],
            ),
            (
                "deltas wrap at 32 bits",
                [type0(4, 0xff_fffe, 1, 8, 1, &[1]), type1(4, 10, 1, 8, &[2])].concat(),
                vec![(0xff_fffe, 8, vec![1]), (0x100_0008, 8, vec![2])],
            ),
            (
                "zero-length messages",
                [type0(3, 5, 0, 20, 0, &[]), type3(3, &[])].concat(),
                vec![(5, 20, vec![]), (10, 20, vec![])],
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(read_all(&mut ChunkReader::default(), &bytes).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn wraps_past_u32_max_with_extended_timestamps() {
        // Type 0 with an extended timestamp near u32::MAX, then a Type 1 delta that wraps.
        let mut first = type0(4, 0xff_ffff, 1, 8, 1, &[]);
        first.extend_from_slice(&(u32::MAX - 5).to_be_bytes());
        first.push(1);
        let bytes = [first, type1(4, 10, 1, 8, &[2])].concat();
        assert_eq!(
            read_all(&mut ChunkReader::default(), &bytes).unwrap(),
            [(u32::MAX - 5, 8, vec![1]), (4, 8, vec![2])]
        );
    }

    #[test]
    fn messages_split_into_chunks_and_interleaved() {
        // A 300-byte video message in 128-byte chunks with an audio message in between.
        let video: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut bytes = type0(6, 0, 300, 9, 1, &video[..128]);
        bytes.extend(type0(4, 0, 3, 8, 1, &[7, 7, 7]));
        bytes.extend(type3(6, &video[128..256]));
        bytes.extend(type3(6, &video[256..]));
        bytes.extend(type3(6, &video[..128])); // a new message: same length, delta 0
        let mut reader = ChunkReader::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        // Byte at a time: nothing is consumed until a chunk is complete.
        for byte in bytes {
            buf.extend_from_slice(&[byte]);
            while let Some(m) = reader.read(&mut buf).unwrap() {
                got.push((m.timestamp, m.type_id, m.payload.len()));
            }
        }
        assert_eq!(got, [(0, 8, 3), (0, 9, 300)]);
        assert_eq!(reader.partial_bytes, 128);
        reader.abort(6);
        assert_eq!(reader.partial_bytes, 0);
    }

    #[test]
    fn extended_timestamp_on_continuation_chunks() {
        let payload = vec![9u8; 200];
        let mut bytes = type0(6, 0xff_ffff, 200, 9, 1, &[]);
        bytes.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        bytes.extend_from_slice(&payload[..128]);
        bytes.push(0xc6);
        bytes.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        bytes.extend_from_slice(&payload[128..]);
        assert_eq!(read_all(&mut ChunkReader::default(), &bytes).unwrap(), [(0x0100_0000, 9, payload)]);
    }

    #[test]
    fn chunk_size_changes_apply() {
        let mut reader = ChunkReader::default();
        reader.set_chunk_size(4096).unwrap();
        let payload = vec![1u8; 4000];
        assert_eq!(read_all(&mut reader, &type0(6, 0, 4000, 9, 1, &payload)).unwrap(), [(0, 9, payload)]);
        for bad in [0, 0x0100_0000, 0x7fff_ffff] {
            assert!(reader.set_chunk_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn violations() {
        let mut many = Vec::new();
        for i in 0..=MAX_CHUNK_STREAMS as u8 {
            // Two-byte basic headers: chunk stream 64 + i.
            many.extend_from_slice(&[0, i]);
            many.extend_from_slice(&type0(0, 0, 0, 8, 1, &[])[1..]);
        }
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("type 1 with no previous header", type1(5, 0, 1, 9, &[1]), "a chunk that refers to a header never sent"),
            ("type 3 with no previous header", type3(5, &[1]), "a chunk that refers to a header never sent"),
            ("a 9 MB message", type0(6, 0, 9 << 20, 9, 1, &[]), "message larger than 8 MiB"),
            (
                "a new header in the middle of a message",
                [type0(6, 0, 200, 9, 1, &[0; 128]), type0(6, 0, 3, 9, 1, &[0; 3])].concat(),
                "a new message header in the middle of a message",
            ),
            ("too many chunk streams", many, "too many chunk streams"),
        ];
        for (name, bytes, want) in cases {
            let err = read_all(&mut ChunkReader::default(), &bytes).unwrap_err();
            assert_eq!(err.to_string(), format!("chunk stream: {want}"), "{name}");
        }
    }

    #[test]
    fn unfinished_messages_are_bounded() {
        let mut reader = ChunkReader::default();
        reader.set_chunk_size(6 << 20).unwrap();
        // Three chunk streams each holding the first 6 MiB of an 8 MiB message: the third is too much.
        let mut buf = BytesMut::new();
        for csid in 3..5u8 {
            buf.extend_from_slice(&type0(csid, 0, 8 << 20, 9, 1, &[]));
            buf.extend_from_slice(&vec![0u8; 6 << 20]);
            assert_eq!(reader.read(&mut buf).unwrap(), None);
        }
        buf.extend_from_slice(&type0(5, 0, 8 << 20, 9, 1, &[]));
        buf.extend_from_slice(&vec![0u8; 6 << 20]);
        assert_eq!(reader.read(&mut buf).unwrap_err().to_string(), "chunk stream: too much unfinished message data");
    }

    #[test]
    fn before_publish_small_messages_and_a_shared_budget() {
        const MAX: usize = PRE_PUBLISH_MAX_MESSAGE;
        let budget = MemoryBudget::new(2 * MAX);
        let mut a = ChunkReader::before_publish(budget.account());
        let too_big = read_all(&mut a, &type0(3, 0, MAX as u32 + 1, 20, 0, &[])).unwrap_err();
        assert_eq!(too_big.to_string(), "before publish: a message larger than 8 KiB");

        // Messages of the largest size allowed, started on three connections: each
        // holds one for free, a second one is charged in full to the shared budget.
        let start = |csid| type0(csid, 0, MAX as u32, 20, 0, &[7; DEFAULT_CHUNK_SIZE]);
        let (mut a, mut b, mut c) = (
            ChunkReader::before_publish(budget.account()),
            ChunkReader::before_publish(budget.account()),
            ChunkReader::before_publish(budget.account()),
        );
        assert_eq!(read_all(&mut a, &start(3)).unwrap(), []);
        assert_eq!(budget.used(), 0, "one message in progress is the connection's own");
        assert_eq!(read_all(&mut a, &start(4)).unwrap(), []);
        assert_eq!(read_all(&mut b, &[start(3), start(4)].concat()).unwrap(), []);
        assert_eq!(read_all(&mut c, &start(3)).unwrap(), []);
        assert_eq!(budget.used(), 2 * MAX);
        let spent = read_all(&mut c, &start(4)).unwrap_err();
        assert_eq!(
            spent.to_string(),
            "server busy: connections that have not published hold the most unfinished message data allowed"
        );
        assert_eq!(budget.used(), 2 * MAX, "nothing charged for the refused one");

        // Completing a message gives its charge back, so do Abort and the end of the connection.
        let rest: Vec<u8> = (1..MAX / DEFAULT_CHUNK_SIZE).flat_map(|_| type3(4, &[7; DEFAULT_CHUNK_SIZE])).collect();
        let done = read_all(&mut a, &rest).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].2.len(), MAX);
        assert_eq!(budget.used(), MAX);
        b.abort(4);
        assert_eq!(budget.used(), 0);
        assert_eq!(read_all(&mut b, &start(5)).unwrap(), []);
        assert_eq!(budget.used(), MAX);
        drop(b);
        drop(c);
        assert_eq!(budget.used(), 0);

        // A granted publish lifts the limit and leaves the budget.
        assert_eq!(read_all(&mut a, &start(5)).unwrap(), []);
        assert_eq!(budget.used(), MAX);
        a.authenticated();
        assert_eq!(budget.used(), 0);
        assert_eq!(read_all(&mut a, &type0(6, 0, 1 << 20, 9, 1, &[0; 128])).unwrap(), []);
        let partial = a.partial_bytes();
        assert_eq!((budget.used(), partial), (0, 3 * DEFAULT_CHUNK_SIZE), "messages started before publish complete");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x0bad_5eedu32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..2_000 {
            let mut reader = ChunkReader::default();
            let len = (next() % 512) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = reader.read(&mut buf) {}
        }
    }
}
