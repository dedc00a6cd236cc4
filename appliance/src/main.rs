//! The `appliance` binary: the command line in `cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    appliance::cli::main()
}
