//! Hostile load, as an attacker on the same LAN would try it (issue 11), in
//! small, bounded form: the seven attacks against an appliance with a live
//! channel (`attacks`), idle and slow HTTP clients against the connection
//! caps and timeouts (`connections`), and a flood of console sign-ins
//! (`sign_in_flood`). A test binary of its own, apart from `e2e`, because
//! these tests bound the growth of this process's memory: no other test may
//! run in it at the same time.

// The product's allocator (appliance/src/main.rs), so memory figures are the product's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod attacks;
mod connections;
mod sign_in_flood;
