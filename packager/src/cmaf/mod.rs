//! CMAF (fragmented MP4) writing, with no muxing library: init segments
//! (`ftyp` + `moov`) and fragments (`moof` + `mdat`) as bytes, from the
//! shared `media` vocabulary. Pure functions; no I/O.

mod boxes;
mod fragment;
mod init;

pub use fragment::{Sample, TrackRun, fragment_size, write_fragment};
pub use init::{InitError, write_init};
