//! What happens to a publish: routing it to its channel, the owner of every
//! live session, the audio stage and the ladder's wiring to `accel`, and the
//! live figures the API and console read.

pub mod audio;
pub mod figures;
pub mod routing;
pub mod supervisor;
pub mod transcode;
pub mod viewers;
