//! Our LL-HLS packager (RFC 8216bis): CMAF fMP4 writing, the segmenter, typed
//! playlists, the in-RAM rendition store and the axum origin routes. It only
//! sees `media` types; it never knows where the units came from.

#![forbid(unsafe_code)]

pub mod cache_control;
pub mod cmaf;
pub mod dvr;
pub mod latency;
pub mod live_stream;
pub mod origin;
pub mod origin_store;
pub mod packaging;
pub mod playlist;
pub mod playlist_query;
pub mod rendition;
pub mod segment_tap;
pub mod segmenter;

pub use dvr::DvrConfig;
pub use latency::{LatencyStats, LatencySummary};
pub use live_stream::LiveStream;
pub use origin::{PartDelivery, router, router_with};
pub use origin_store::OriginStore;
pub use packaging::package;
pub use playlist_query::{uri_with_query, with_query};
pub use rendition::{ArchivedFile, PlaylistView, Progress, Rendition, SoFar, WindowConfig};
pub use segment_tap::{SealedSegment, SegmentReceiver, SegmentTap, TapStats, segment_tap};
pub use segmenter::{Output, Segmenter, SegmenterConfig};
