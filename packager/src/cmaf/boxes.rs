//! ISO BMFF box-writing primitives: a growable big-endian buffer whose boxes
//! are opened with a size placeholder and patched when their body is done.

use bytes::Bytes;

/// A big-endian byte writer for ISO BMFF boxes.
///
/// Boxes nest through closures (`boxed`, `full_box`), so the code that writes
/// a tree reads like the tree. Box sizes are 32-bit: a box whose body passes
/// `u32::MAX` bytes gets a saturated size. The writers here never produce
/// one (the only large box, `mdat`, is written by `fragment` with a 64-bit
/// size when it needs one), so the saturation only keeps the writer total.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer that will not reallocate before `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    /// Writes a plain box: header, then whatever `body` writes, then the size.
    pub(crate) fn boxed(&mut self, fourcc: &[u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.u32(0);
        self.bytes(fourcc);
        body(self);
        self.patch_size(start);
    }

    /// Writes a full box: header, version and 24-bit flags, then `body`.
    pub(crate) fn full_box(&mut self, fourcc: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Self)) {
        self.boxed(fourcc, |w| {
            w.u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
            body(w);
        });
    }

    fn patch_size(&mut self, start: usize) {
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// The written bytes, without copying.
    pub(crate) fn into_bytes(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_patched_sizes() {
        type Case = (&'static str, fn(&mut Writer), &'static [u8]);
        let cases: [Case; 4] = [
            ("empty box", |w| w.boxed(b"free", |_| {}), &[0, 0, 0, 8, b'f', b'r', b'e', b'e']),
            (
                "full box version and flags",
                |w| w.full_box(b"abcd", 1, 0x0102_0304, |w| w.u16(0xbeef)),
                // Flags keep only their low 24 bits.
                &[0, 0, 0, 14, b'a', b'b', b'c', b'd', 1, 2, 3, 4, 0xbe, 0xef],
            ),
            (
                "nested",
                |w| w.boxed(b"outr", |w| w.boxed(b"innr", |w| w.u8(7))),
                &[0, 0, 0, 17, b'o', b'u', b't', b'r', 0, 0, 0, 9, b'i', b'n', b'n', b'r', 7],
            ),
            (
                "integers are big-endian",
                |w| {
                    w.u32(0x0102_0304);
                    w.u64(0x0506_0708_090a_0b0c);
                    w.i16(-1);
                    w.i32(-2);
                    w.zeros(2);
                },
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0],
            ),
        ];
        for (name, write, want) in cases {
            let mut w = Writer::default();
            write(&mut w);
            assert_eq!(&w.into_bytes()[..], want, "{name}");
        }
    }
}
