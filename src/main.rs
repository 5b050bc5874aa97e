//! The `amcctl` binary: parse, run, turn the outcome into an exit code.

use clap::Parser;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = match amcctl::cli::Cli::try_parse_from(&args) {
        Ok(cli) => amcctl::main_with(cli),
        Err(e) => amcctl::parse_failure(&e, &args),
    };
    std::process::exit(code);
}
