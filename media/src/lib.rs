//! Shared media vocabulary of the appliance. No async runtime, no I/O: every
//! stage crate (ingest, accel, packager) speaks these types and nothing else.

#![forbid(unsafe_code)]

pub mod audio_codec;
pub mod av1;
mod bit_reader;
pub mod codec;
pub mod codec_error;
pub mod hevc;
pub mod ladder;
pub mod latency_mode;
pub mod mpeg_audio;
pub mod opus;
pub mod processing;
pub mod sound;
#[doc(hidden)]
pub mod test_vectors;
pub mod timebase;
pub mod track;
pub mod unit;
pub mod unit_channel;

pub use audio_codec::{AudioCodec, OtherAudioConfig};
pub use av1::Av1Config;
pub use codec::{AAC_FRAME_SAMPLES, AacConfig, AvcConfig, CodecConfig, CodecError};
pub use hevc::HevcConfig;
pub use ladder::{ChannelOutput, EncoderPolicy, Ladder, RenditionSpec, RungConditions, VideoCodec};
pub use latency_mode::LatencyMode;
pub use processing::{Crop, Deinterlace, Denoise, PictureProcessing, Processing, Rotation, ScalingMode};
pub use sound::SoundProcessing;
pub use timebase::Timebase;
pub use track::{TrackInfo, TrackKind};
pub use unit::{Arrival, EncodedUnit, StreamEvent};
pub use unit_channel::{DropStats, SendError, UnitReceiver, UnitSender, unit_channel};
