//! amcctl: administration of Amazon Marketing Cloud (AMC) instances.
//!
//! The binary is a thin shell around [`main_with`]; everything else lives in
//! the library so that tests and examples use the same code paths.

pub mod amc;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod health;
pub mod logging;
pub mod model;
pub mod output;
pub mod prompt;
pub mod secrets;
pub mod store;
pub mod transfer;

use error::Kind;
use output::{Format, Output};

/// Runs a parsed command line and returns the process exit code.
pub fn main_with(cli: cli::Cli) -> i32 {
    let fallback = Output::new(
        if cli.global.json {
            Format::Json
        } else {
            cli.global.output.unwrap_or(Format::Table)
        },
        cli.global.color,
        cli.global.quiet,
    );
    // One colour decision for everything on stderr: our messages, dialoguer's
    // prompts (console reads this switch) and the log lines.
    console::set_colors_enabled_stderr(fallback.stderr_color);
    console::set_colors_enabled(fallback.color);
    logging::init(
        logging::Verbosity {
            quiet: cli.global.quiet,
            verbose: cli.global.verbose,
        },
        fallback.stderr_color,
    );
    if let Some(outcome) = cli::run_without_ctx(&cli, &fallback) {
        return match outcome {
            Ok(()) => 0,
            Err(e) if e.kind == Kind::ClosedPipe => 0,
            Err(e) => {
                fallback.error(&e);
                e.kind.exit_code()
            }
        };
    }
    let mut ctx = match cli::Ctx::new(&cli.global) {
        Ok(ctx) => ctx,
        Err(e) => {
            fallback.error(&e);
            return e.kind.exit_code();
        }
    };
    match cli::run(cli, &mut ctx) {
        Ok(()) => 0,
        Err(e) if e.kind == Kind::ClosedPipe => 0,
        // The plugin line on stdout already said everything.
        Err(e) if matches!(e.kind, Kind::Plugin(_)) => e.kind.exit_code(),
        Err(e) => {
            ctx.out.error(&e);
            e.kind.exit_code()
        }
    }
}
