//! Who may use the HTTP side, and how much: the caller's identity (the
//! control socket's local administrator, an API token or a console session),
//! what it may do (`caller`: role and channels; `route_roles`: the minimum
//! role of every API route), console sign-in sessions, and the rate limits
//! with the shared budget of failed authentications.

pub mod caller;
pub mod console_sessions;
pub mod identity;
pub mod limiter;
pub mod rate_limit;
pub mod route_roles;
