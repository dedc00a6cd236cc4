//! The `appliance` binary: the command line in `cli`.
#![forbid(unsafe_code)]

// jemalloc hands memory freed after a burst (a wave of publishes, thousands
// of held playlist requests) back to the system within seconds, from its
// background threads; glibc's malloc kept the peak for good. Measured with
// `benches`' `memory` command; `--no-default-features` builds with glibc's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    appliance::cli::main()
}
