//! 188-byte TS packets out of a byte stream (re-synchronising on the 0x47
//! sync byte after garbage), and one packet's header fields.

/// Bytes of one TS packet.
pub(crate) const PACKET: usize = 188;
const SYNC: u8 = 0x47;

/// The header of one packet and where its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet<'a> {
    pub pid: u16,
    /// `payload_unit_start_indicator`: a PES packet or section starts here.
    pub unit_start: bool,
    pub continuity: u8,
    /// The adaptation field's `discontinuity_indicator`: continuity restarts.
    pub discontinuity: bool,
    /// Set when the packet has a payload.
    pub payload: Option<&'a [u8]>,
    /// `transport_error_indicator`: the sender knows the packet is damaged.
    pub error: bool,
    /// The adaptation field holds stuffing: muxers stuff the last packet of a
    /// PES packet, so an unbounded (video) PES ends here without waiting for
    /// the next one (one frame less latency).
    pub stuffed: bool,
}

/// Reads the packet in `p` (exactly `PACKET` bytes starting with the sync byte).
pub(crate) fn read_packet(p: &[u8]) -> Option<Packet<'_>> {
    if p.len() != PACKET || p[0] != SYNC {
        return None;
    }
    let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1fff;
    let control = (p[3] >> 4) & 0x03;
    let mut start = 4;
    let mut discontinuity = false;
    let mut stuffed = false;
    if control & 0x02 != 0 {
        let length = p[4] as usize;
        if length > 0 {
            let flags = p[5];
            discontinuity = flags & 0x80 != 0;
            // Flags byte, PCR, OPCR, splice countdown; private data and extensions make the size unknowable.
            let fields = 1
                + 6 * usize::from(flags & 0x10 != 0)
                + 6 * usize::from(flags & 0x08 != 0)
                + usize::from(flags & 0x04 != 0);
            stuffed = flags & 0x03 == 0 && length > fields;
        } else {
            stuffed = true; // a single stuffing byte: the adaptation field's length itself
        }
        start = 5 + length;
        if start > PACKET {
            return None;
        }
    }
    let payload = (control & 0x01 != 0 && start < PACKET).then(|| &p[start..]);
    Some(Packet {
        pid,
        unit_start: p[1] & 0x40 != 0,
        continuity: p[3] & 0x0f,
        discontinuity,
        payload,
        error: p[1] & 0x80 != 0,
        stuffed,
    })
}

/// Cuts a stream of bytes (SRT messages of 1..7 packets, or anything) into
/// packets, keeping an incomplete one for the next push.
#[derive(Debug, Default)]
pub(crate) struct PacketSplitter {
    partial: Vec<u8>,
    /// Bytes skipped to find a sync byte again.
    pub skipped_bytes: u64,
}

impl PacketSplitter {
    /// Calls `each` for every whole packet in what was kept plus `data`.
    pub fn push(&mut self, mut data: &[u8], mut each: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let want = PACKET - self.partial.len();
            let take = want.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < PACKET {
                return;
            }
            let packet = std::mem::take(&mut self.partial);
            each(&packet);
        }
        while !data.is_empty() {
            if data[0] != SYNC {
                let skip = data.iter().position(|&b| b == SYNC).unwrap_or(data.len());
                self.skipped_bytes += skip as u64;
                data = &data[skip..];
                continue;
            }
            if data.len() < PACKET {
                self.partial.extend_from_slice(data);
                return;
            }
            each(&data[..PACKET]);
            data = &data[PACKET..];
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One packet of `pid` carrying `payload` (at most 184 bytes; stuffed with an adaptation field).
    pub(crate) fn packet(pid: u16, unit_start: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() <= 184);
        let mut p = vec![SYNC, ((unit_start as u8) << 6) | (pid >> 8) as u8, pid as u8];
        let stuffing = 184 - payload.len();
        if stuffing == 0 {
            p.push(0x10 | (cc & 0x0f));
        } else {
            p.push(0x30 | (cc & 0x0f));
            p.push((stuffing - 1) as u8);
            if stuffing > 1 {
                p.push(0);
                p.extend(std::iter::repeat_n(0xff, stuffing - 2));
            }
        }
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn header_fields() {
        for len in [0, 1, 2, 100, 183, 184] {
            let payload = vec![7u8; len];
            let bytes = packet(0x100, true, 5, &payload);
            let p = read_packet(&bytes).unwrap();
            assert_eq!((p.pid, p.unit_start, p.continuity, p.discontinuity), (0x100, true, 5, false));
            assert_eq!(p.stuffed, len < 184, "{len}");
            assert_eq!(p.payload.unwrap_or(&[]), &payload[..], "{len}");
        }
        let mut bad = packet(1, false, 0, &[]);
        bad[4] = 200; // adaptation field past the end
        assert_eq!(read_packet(&bad), None);
    }

    #[test]
    fn splitter_resyncs_and_joins() {
        let a = packet(1, true, 0, &[1; 10]);
        let b = packet(2, true, 0, &[2; 10]);
        let stream = [vec![0, 1, 2], a.clone(), b.clone()].concat();
        let mut splitter = PacketSplitter::default();
        let mut seen = Vec::new();
        for chunk in stream.chunks(50) {
            splitter.push(chunk, |p| seen.push(p.to_vec()));
        }
        assert_eq!(seen, [a, b]);
        assert_eq!(splitter.skipped_bytes, 3);
    }
}
