//! The `appliance` binary itself, as an operator runs it (the rest of the
//! end-to-end tests run the appliance in-process, in `tests/tests/e2e`): the
//! command line against a real redb file with and without a running server,
//! and a running server killed with SIGKILL. Only here does cargo build the
//! binary fresh for a test (`CARGO_BIN_EXE_appliance`); everything else
//! comes from the shared `support` library (the `tests` crate).

mod cli;
mod crash;

/// The binary under test, built by cargo for this test binary.
const APPLIANCE: &str = env!("CARGO_BIN_EXE_appliance");
