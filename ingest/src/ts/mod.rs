//! MPEG-TS (ISO/IEC 13818-1) in, `media` stream events out: what SRT callers
//! send. Only this module knows TS; the SRT server feeds it datagram payloads.

mod adts;
pub(crate) mod annexb;
mod clock;
mod demuxer;
pub(crate) mod opus;
mod packets;
mod pes;
mod psi;

pub use demuxer::{TsDemuxer, TsStats};
