//! amcctl: administration of Amazon Marketing Cloud (AMC) instances.
//!
//! The binary is a thin shell around [`run`]; everything else lives in
//! the library so that tests and examples use the same code paths.

pub mod amc;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod env;
pub mod error;
pub mod exit;
pub mod fsutil;
pub mod health;
pub mod jq;
pub mod logging;
pub mod ops;
pub mod output;
pub mod prompt;
pub mod secrets;
pub mod settings;
pub mod store;
pub mod transfer;

use std::ffi::OsString;
use std::sync::Arc;

use env::Env;
use error::Kind;
use exit::ExitStatus;
use output::{ColorWhen, Format, Output, Streams};

/// Runs one command line (`args[0]` is the program name) against `env`,
/// writing to `streams`, and returns the process exit code. The binary
/// calls it with its own arguments, environment and streams; a test can
/// call it with its own, and read back what the command printed.
pub fn run<I, T>(args: I, env: Env, streams: Arc<Streams>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let parsed = <cli::Cli as clap::CommandFactory>::command()
        .try_get_matches_from(&args)
        .and_then(|m| {
            let mut cli = <cli::Cli as clap::FromArgMatches>::from_arg_matches(&m)?;
            cli.global.user_on_command_line =
                m.value_source("user") == Some(clap::parser::ValueSource::CommandLine);
            Ok(cli)
        });
    match parsed {
        Ok(cli) => main_with(cli, env, streams),
        Err(e) => parse_failure(&e, &args, &env, &streams),
    }
}

/// Reports a command line that clap rejected and returns the exit code.
/// `--help` and `--version` print as usual (exit 0). Errors exit 2: as clap's
/// text, or, when a machine format was asked for, as the
/// `{"error":{"code":"usage",…}}` object every other failure prints in that
/// format. The format comes from [`EarlyArgs`] and `AMCCTL_OUTPUT`, since
/// the parse that would have found it failed.
fn parse_failure(e: &clap::Error, args: &[OsString], env: &Env, streams: &Arc<Streams>) -> i32 {
    if !e.use_stderr() {
        streams.clap_message(e);
        return 0;
    }
    match EarlyArgs::parse(args).format(env) {
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
            Output::new(streams.clone(), format, ColorWhen::Never, false, false).error(&err);
        }
        _ => streams.clap_message(e),
    }
    Kind::Usage.exit_code()
}

/// The global flags needed when the full parse fails: `-o`/`--output` and
/// `--json`, found by clap among arguments it otherwise takes as they come
/// (`ignore_errors`, as jj's early arguments).
#[derive(Debug, Default, PartialEq)]
struct EarlyArgs {
    /// The last format named on the command line that is one.
    format: Option<Format>,
}

impl EarlyArgs {
    fn command() -> clap::Command {
        use clap::{Arg, ArgAction};
        // Every other letter (and the `=` of `-o=json`) is a flag here, so
        // that clap splits a cluster (`-qo json`, `-ondjson`) as the full
        // parse does, instead of taking it for one of the arguments below.
        const OTHERS: &str = "abcdefghijklmnpqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ=";
        let others = OTHERS.char_indices().map(|(i, c)| {
            Arg::new(&OTHERS[i..i + c.len_utf8()])
                .short(c)
                .action(ArgAction::Count)
        });
        clap::Command::new("amcctl")
            .no_binary_name(true)
            .disable_help_flag(true)
            .disable_version_flag(true)
            .ignore_errors(true)
            .args(others)
            .arg(
                Arg::new("output")
                    .short('o')
                    .long("output")
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("json").long("json").action(ArgAction::Count))
            // Every other argument, from the first one clap does not know:
            // its own flags and values are left to the full parse.
            .arg(
                Arg::new("rest")
                    .num_args(1..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true)
                    .value_parser(clap::value_parser!(OsString)),
            )
    }

    /// Finds the early flags in `args` (`args[0]` is the program name). An
    /// argument clap cannot place ends one pass; the next pass starts after
    /// it, so flags after a subcommand or an unknown flag count too. `--`
    /// ends the flags.
    fn parse(args: &[OsString]) -> EarlyArgs {
        use clap::ValueEnum;
        let mut early = EarlyArgs::default();
        let mut rest: Vec<OsString> = args.iter().skip(1).cloned().collect();
        while rest.first().is_some_and(|a| a != "--") {
            let Ok(m) = Self::command().try_get_matches_from(&rest) else {
                break;
            };
            // Each flag at its position, so that the last one wins.
            let mut found: Vec<(usize, Option<Format>)> = Vec::new();
            if let (Some(idx), Some(values)) =
                (m.indices_of("output"), m.get_many::<String>("output"))
            {
                for (i, v) in idx.zip(values) {
                    found.push((i, Format::from_str(v.trim_start_matches('='), true).ok()));
                }
            }
            if m.value_source("json") == Some(clap::parser::ValueSource::CommandLine)
                && let Some(idx) = m.indices_of("json")
            {
                found.extend(idx.map(|i| (i, Some(Format::Json))));
            }
            found.sort_by_key(|(i, _)| *i);
            for (_, format) in found {
                early.format = format.or(early.format);
            }
            let unplaced: Vec<OsString> = m
                .get_many::<OsString>("rest")
                .map(|r| r.cloned().collect())
                .unwrap_or_default();
            // The argument clap could not place is skipped, and the pass
            // starts again after it.
            rest = unplaced.into_iter().skip(1).collect();
        }
        early
    }

    /// The format the command line asked for, else `AMCCTL_OUTPUT`.
    fn format(&self, env: &Env) -> Option<Format> {
        use clap::ValueEnum;
        self.format.or_else(|| {
            env.get(env::OUTPUT)
                .and_then(|v| Format::from_str(v.trim_start_matches('='), true).ok())
        })
    }
}

/// Runs a parsed command line and returns the process exit code.
pub fn main_with(cli: cli::Cli, env: Env, streams: Arc<Streams>) -> i32 {
    let no_color = env.no_color();
    let format = if cli.global.json {
        Format::Json
    } else {
        cli.global.output.unwrap_or(Format::Table)
    };
    let fallback = match Output::for_args(streams.clone(), &cli.global, format, no_color) {
        Ok(out) => out,
        Err(e) => {
            Output::new(
                streams,
                format,
                cli.global.color,
                no_color,
                cli.global.quiet,
            )
            .error(&e);
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
        &env,
    );
    if let Some(outcome) = cli::run_without_ctx(&cli, &fallback) {
        return exit_code(outcome, &fallback);
    }
    let mut ctx = match cli::Ctx::new(&cli.global, env, streams) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_args_find_the_format_wherever_it_is() {
        let cases: [(&[&str], Option<Format>); 17] = [
            (&[], None),
            (&["-o", "json", "bogus-command"], Some(Format::Json)),
            (&["bogus-command", "-o", "json"], Some(Format::Json)),
            (
                &["instance", "add", "--region", "xx", "-o", "csv"],
                Some(Format::Csv),
            ),
            (
                &["instance", "list", "--bogus", "--json"],
                Some(Format::Json),
            ),
            (&["--output=ndjson", "x"], Some(Format::Ndjson)),
            (&["-ojson", "x"], Some(Format::Json)),
            (&["-o=JSON", "x"], Some(Format::Json)),
            (&["-o", "json", "-o", "xml", "x"], Some(Format::Json)),
            (&["-o", "json", "x", "-o", "table"], Some(Format::Table)),
            (&["--json", "-o", "table"], Some(Format::Table)),
            (&["-o", "table", "--json"], Some(Format::Json)),
            (&["x", "--", "-o", "json"], None),
            (&["--", "--json"], None),
            (&["-qo", "json"], Some(Format::Json)),
            (
                &["instance", "list", "--bogus", "-ondjson"],
                Some(Format::Ndjson),
            ),
            (&["x", "-o"], None),
        ];
        for (args, want) in cases {
            let argv: Vec<OsString> = std::iter::once("amcctl")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            assert_eq!(EarlyArgs::parse(&argv).format, want, "{args:?}");
        }
        let env = Env::from_pairs([(env::OUTPUT, "ndjson")]);
        assert_eq!(EarlyArgs::default().format(&env), Some(Format::Ndjson));
    }
}
