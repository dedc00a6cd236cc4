//! Private channels' signed playback: the token format (`token`), and what
//! the origin checks each request against (`access`: the private channels
//! and the signing keys, held in memory and refreshed by the API's changes).

pub mod access;
pub mod token;

pub use access::PlaybackAccess;
