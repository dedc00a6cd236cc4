//! The control plane over real HTTP against an appliance running in-process,
//! with real `ffmpeg` publishes and a real redb file: the API's contract,
//! the channel and session lifecycle, tokens and scopes, problem responses,
//! webhooks through a receiver that goes away and comes back, a session's
//! live figures and its ladder's move after an encoder failure as a signed
//! webhook, a full data disk (refused clearly, live channels kept, recovered
//! without a restart), rate limits per token and per address, and
//! schemathesis fuzzing the API from its own OpenAPI document; and who sees
//! stream keys. The HTTP listener under idle and slow clients and the sign-in
//! flood are in `tests/tests/hostile/` (they measure this process's memory).

mod contract;
mod full_disk;
mod lifecycle;
mod live_figures;
mod rate_limits;
mod schemathesis;
mod stream_keys;
pub(crate) mod webhooks;
