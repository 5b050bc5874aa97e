//! The `amcctl` binary: parse, run, turn the outcome into an exit code.

use clap::Parser;

fn main() {
    let cli = amcctl::cli::Cli::parse();
    std::process::exit(amcctl::main_with(cli));
}
