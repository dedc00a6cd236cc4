//! Webhook delivery: the worker that drains the outbox to registered
//! endpoints (ordered per channel, retried with exponential backoff) and the
//! HMAC-SHA256 signature receivers verify.

pub mod signature;
pub mod worker;

pub use worker::{DeliveryConfig, spawn};
