//! A session's input port: its inputs (the primary, and the backup that a
//! channel's second stream key publishes), which of them is on air
//! (`failover`), one continuous output timeline over them (`timeline`), and
//! the slate that keeps the output going while no input delivers.

pub mod failover;
pub mod meters;
pub mod port;
pub mod slate;
pub mod timeline;
