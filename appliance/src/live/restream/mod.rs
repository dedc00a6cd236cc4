//! Restreaming: every enabled destination of a channel (another platform or
//! server, over RTMP, RTMPS or SRT) is an output of each of its live
//! sessions, sending one rendition as it is made, without re-encoding.

mod backoff;
mod output;

pub use output::RestreamOutput;

use crate::live::ports::Output;
use crate::state::records::restream::RestreamDestination;

/// The outputs for a session of a channel with these destinations: the enabled ones.
pub fn outputs(destinations: Vec<RestreamDestination>) -> Vec<Box<dyn Output>> {
    destinations
        .into_iter()
        .filter(|d| d.enabled)
        .map(|d| Box::new(RestreamOutput::new(d)) as Box<dyn Output>)
        .collect()
}
