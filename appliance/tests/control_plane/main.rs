//! The control plane over real HTTP against an appliance running in-process,
//! with real `ffmpeg` publishes and a real redb file: the channel and session
//! lifecycle, tokens and scopes, problem responses, webhooks through a
//! receiver that goes away and comes back, a session's live figures and its
//! ladder's move after an encoder failure as a signed webhook, a full data
//! disk (refused clearly, live channels kept, recovered without a restart),
//! rate limits per token and per address, a live session's stats surviving a
//! SIGKILL through its checkpoints, and schemathesis fuzzing the API from its
//! own OpenAPI document; and the HTTP listener under idle and slow clients
//! (timeouts and connection caps), a flood of console sign-ins, and who
//! sees stream keys.

// The binary's allocator (src/main.rs), so memory figures are the product's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod api_contract;
mod checkpoints;
mod connections;
mod full_disk;
mod fuzz;
mod lifecycle;
mod live;
mod rate_limits;
mod sign_in_flood;
mod stream_keys;
mod support;
mod webhooks;
