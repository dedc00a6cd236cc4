//! Who may use the HTTP side, and how much: the caller's identity (the
//! control socket's local administrator, an API token or a console session),
//! console sign-in sessions, and the rate limits with the shared budget of
//! failed authentications.

pub mod console_sessions;
pub mod identity;
pub mod limiter;
pub mod rate_limit;
