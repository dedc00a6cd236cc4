//! Sessions recorded on the data partition: the CMAF segments the packager
//! made, per rendition, with a crash-safe index. `layout` names the files,
//! `index` and `meta` are the crash-safe index and record, `catalog` lists,
//! locks and deletes recordings, `recovery` closes those a crash left open,
//! `catchup` renders their VOD playlists, `export` makes one MP4 of one, `scrubbing` keeps their
//! thumbnails as sprite sheets with a WebVTT track, `retention` keeps the disk
//! bounded, `notify` sends `recording.*` events, and `service` is the
//! handle the rest of the appliance shares. The writer is an output
//! of the live session (`live::recorder`).

pub mod catalog;
pub mod catchup;
pub mod export;
pub mod index;
pub mod layout;
pub mod meta;
pub mod notify;
pub mod recovery;
pub mod retention;
pub mod scrubbing;
pub mod service;

pub use catalog::{Catalog, Recording, RecordingError};
pub use layout::Layout;
pub use notify::Notifier;
pub use service::Recordings;
