//! Who may do what, over real HTTP against an appliance in-process: roles of
//! API tokens (an audit of every documented route with every role, and the
//! issue's cases), tokens restricted to channels, console users and the
//! audit log.

mod audit;
mod console_users;
mod private_channels;
mod roles;
mod users;
