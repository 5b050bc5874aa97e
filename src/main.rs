//! The `amcctl` binary: parse, run, turn the outcome into an exit code.

fn main() {
    // A shell asking for completions (`COMPLETE=bash amcctl -- …`) is
    // answered before anything else can print.
    amcctl::cli::completions::complete_if_asked();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = match <amcctl::cli::Cli as clap::Parser>::try_parse_from(&args) {
        Ok(cli) => amcctl::main_with(cli),
        Err(e) => amcctl::parse_failure(&e, &args),
    };
    std::process::exit(code);
}
