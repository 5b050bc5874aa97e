//! amcctl: administration of Amazon Marketing Cloud (AMC) instances.
//!
//! The binary is a thin shell around [`main_with`]; everything else lives in
//! the library so that tests and examples use the same code paths.

pub mod amc;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod error;
pub mod exit;
pub mod fsutil;
pub mod health;
pub mod jq;
pub mod logging;
pub mod output;
pub mod prompt;
pub mod secrets;
pub mod settings;
pub mod store;
pub mod transfer;

use error::Kind;
use exit::ExitStatus;
use output::{ColorWhen, Format, Output};

/// Reports a command line that clap rejected and returns the exit code.
/// `--help` and `--version` print as usual (exit 0). Errors exit 2: as clap's
/// text, or, when a machine format was asked for, as the
/// `{"error":{"code":"usage",…}}` object every other failure prints in that
/// format. The format is read from the raw arguments and
/// `AMCCTL_OUTPUT`, since the parse that would have found it failed.
pub fn parse_failure(e: &clap::Error, args: &[std::ffi::OsString]) -> i32 {
    if !e.use_stderr() {
        let _ = e.print();
        return 0;
    }
    match requested_format(args) {
        Some(format) if format.is_machine() => {
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let message = lines
                .next()
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            let hint: Vec<&str> = lines.filter(|l| !l.starts_with("For more")).collect();
            let mut err = error::Error::usage(message);
            if !hint.is_empty() {
                err = err.with_hint(hint.join(" "));
            }
            Output::new(format, ColorWhen::Never, false).error(&err);
        }
        _ => {
            let _ = e.print();
        }
    }
    Kind::Usage.exit_code()
}

/// The output format named by `-o`/`--output`/`--json` in `args` (the last
/// one wins, as in clap), else by `AMCCTL_OUTPUT`.
fn requested_format(args: &[std::ffi::OsString]) -> Option<Format> {
    use clap::ValueEnum;
    let parse = |v: &str| Format::from_str(v.trim_start_matches('='), true).ok();
    let mut found = None;
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = it.next() {
        let format = match arg.as_ref() {
            "--" => break,
            "--json" => Some(Format::Json),
            "-o" | "--output" => it.next().and_then(|v| parse(&v)),
            a if a.starts_with("--output=") => parse(&a["--output=".len()..]),
            a if a.starts_with("-o") && !a.starts_with("--") => parse(&a[2..]),
            _ => None,
        };
        found = format.or(found);
    }
    found.or_else(|| std::env::var("AMCCTL_OUTPUT").ok().and_then(|v| parse(&v)))
}

/// Runs a parsed command line and returns the process exit code.
pub fn main_with(cli: cli::Cli) -> i32 {
    let format = if cli.global.json {
        Format::Json
    } else {
        cli.global.output.unwrap_or(Format::Table)
    };
    let fallback = match Output::for_args(&cli.global, format) {
        Ok(out) => out,
        Err(e) => {
            Output::new(format, cli.global.color, cli.global.quiet).error(&e);
            return e.kind.exit_code();
        }
    };
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
        return exit_code(outcome, &fallback);
    }
    let mut ctx = match cli::Ctx::new(&cli.global) {
        Ok(ctx) => ctx,
        Err(e) => {
            fallback.error(&e);
            return e.kind.exit_code();
        }
    };
    let outcome = cli::run(cli, &mut ctx);
    exit_code(outcome, &ctx.out)
}

/// Reports how a command went on stderr, when there is something to say,
/// and returns its exit code.
fn exit_code(outcome: error::Result<ExitStatus>, out: &Output) -> i32 {
    match outcome {
        Ok(status) => {
            out.outcome(&status);
            status.code()
        }
        Err(e) if e.kind == Kind::ClosedPipe => 0,
        Err(e) => {
            out.error(&e);
            e.kind.exit_code()
        }
    }
}
