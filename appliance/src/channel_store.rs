//! The names the spine used for the state database, kept so that code written
//! against them still reads naturally: the store is `state::Store`.

pub use crate::state::{Channel, Store as ChannelStore, StoreError, validate_name};
