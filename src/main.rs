//! The `amcctl` binary: parse, run, turn the outcome into an exit code.

fn main() {
    // A shell asking for completions (`COMPLETE=bash amcctl -- …`) is
    // answered before anything else can print.
    amcctl::cli::completions::complete_if_asked();
    let env = amcctl::env::Env::from_process();
    let streams = std::sync::Arc::new(amcctl::output::Streams::process());
    std::process::exit(amcctl::run(std::env::args_os(), env, streams));
}
