//! What happens to a publish. `routing` answers ingest; the `supervisor` is
//! the one owner of every live session and keeps the `registry` of what is
//! live; each `session` task owns its input, its processing (`audio`, the
//! ladder through `transcode`) and its outputs, plugged in through `ports`
//! and fed by `fanout` (the LL-HLS packager is one: `packaging`; each restream
//! destination another: `restream`, its connection's figures in `link`; the
//! latest picture of each channel another: `thumbnails`). Stages
//! report up as typed `events`; `figures` and `viewers` are what the API and
//! console read.

pub mod audio;
pub mod control;
pub mod events;
pub mod fanout;
pub mod figures;
pub mod input;
pub mod link;
pub mod packaging;
pub mod ports;
pub mod recorder;
pub mod registry;
pub mod restream;
pub mod routing;
pub mod session;
pub mod srt_links;
pub mod supervisor;
pub mod thumbnails;
pub mod transcode;
pub mod viewers;
