//! The `amcctl` binary: parse, run, turn the outcome into an exit code.

use clap::Parser;

fn main() {
    // A shell asking for completions (`COMPLETE=bash amcctl -- …`) is
    // answered before anything else can print.
    amcctl::cli::completions::complete_if_asked();
    let cli = amcctl::cli::Cli::parse();
    std::process::exit(amcctl::main_with(cli));
}
