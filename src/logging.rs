//! Diagnostic logs on stderr (`tracing`), sized by `-q`, `-v`/`-vv` and
//! `AMCCTL_LOG`.
//!
//! Logs are for the person debugging a run, never results: they go to stderr
//! only, so `-o json` output stays clean whatever the level. The library
//! never logs a secret (the AMC client redacts before it logs), so no level
//! here can leak one.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variable that sets the log level (or per-target levels).
pub const LOG_ENV: &str = crate::env::LOG;

/// How chatty stderr should be, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// `-q`: only results and errors.
    pub quiet: bool,
    /// How many `-v` were given.
    pub verbose: u8,
}

/// The filter for this run. Flags win over `AMCCTL_LOG`, which wins over the
/// default (warnings from amcctl, errors from the libraries under it).
///
/// `AMCCTL_LOG` takes a level (`debug`) or a target list in the usual
/// `target=level,…` form (`amcctl=trace,reqwest=debug`); a value that does not
/// parse is ignored with a warning rather than failing the command, because a
/// log setting must never stop a cron job.
pub fn filter(v: Verbosity, env: Option<&str>) -> (Targets, Option<String>) {
    let by_flags = |amcctl: LevelFilter, others: LevelFilter| {
        Targets::new()
            .with_default(others)
            .with_target("amcctl", amcctl)
    };
    if v.quiet {
        return (by_flags(LevelFilter::ERROR, LevelFilter::ERROR), None);
    }
    match v.verbose {
        0 => {}
        1 => return (by_flags(LevelFilter::DEBUG, LevelFilter::WARN), None),
        _ => return (by_flags(LevelFilter::TRACE, LevelFilter::DEBUG), None),
    }
    let default = by_flags(LevelFilter::WARN, LevelFilter::ERROR);
    let Some(spec) = env.map(str::trim).filter(|s| !s.is_empty()) else {
        return (default, None);
    };
    // A bare level means "amcctl at this level"; the libraries stay at warn
    // unless named, so `AMCCTL_LOG=trace` does not drown in HTTP internals.
    if let Ok(level) = spec.parse::<LevelFilter>() {
        return (by_flags(level, LevelFilter::WARN.min(level)), None);
    }
    match spec.parse::<Targets>() {
        Ok(t) => (t, None),
        Err(_) => (
            default,
            Some(format!(
                "ignoring {LOG_ENV}={spec:?}: expected a level (error, warn, info, debug, trace) or target=level pairs"
            )),
        ),
    }
}

/// Installs the stderr logger for this process. `color` says whether stderr
/// may get ANSI colour. Calling it twice (tests, examples) keeps the first.
pub fn init(v: Verbosity, color: bool, env: &crate::env::Env) {
    let (targets, warning) = filter(v, env.get(LOG_ENV));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color && std::io::stderr().is_terminal())
        // Time since start tells more about retries and backoff than a
        // wall-clock stamp, and is shorter.
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_target(v.verbose >= 2);
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(targets)
        .try_init()
        .is_ok();
    if installed && let Some(w) = warning {
        tracing::warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn allows(t: &Targets, target: &str, level: Level) -> bool {
        t.would_enable(target, &level)
    }

    #[test]
    fn flags_env_and_default() {
        let quiet = Verbosity {
            quiet: true,
            verbose: 0,
        };
        let none = Verbosity {
            quiet: false,
            verbose: 0,
        };
        let v = Verbosity {
            quiet: false,
            verbose: 1,
        };
        let vv = Verbosity {
            quiet: false,
            verbose: 2,
        };

        let (t, _) = filter(none, None);
        assert!(allows(&t, "amcctl::amc", Level::WARN));
        assert!(!allows(&t, "amcctl::amc", Level::INFO));
        assert!(!allows(&t, "reqwest", Level::WARN));

        let (t, _) = filter(quiet, Some("trace"));
        assert!(!allows(&t, "amcctl", Level::WARN), "-q beats AMCCTL_LOG");
        assert!(allows(&t, "amcctl", Level::ERROR));

        let (t, _) = filter(v, Some("error"));
        assert!(
            allows(&t, "amcctl::amc::client", Level::DEBUG),
            "-v beats AMCCTL_LOG"
        );
        assert!(!allows(&t, "amcctl", Level::TRACE));

        let (t, _) = filter(vv, None);
        assert!(allows(&t, "amcctl", Level::TRACE));
        assert!(allows(&t, "hyper", Level::DEBUG));

        let (t, w) = filter(none, Some("debug"));
        assert!(w.is_none());
        assert!(allows(&t, "amcctl::amc", Level::DEBUG));
        assert!(!allows(&t, "hyper", Level::DEBUG));

        let (t, w) = filter(none, Some("amcctl=info,reqwest=trace"));
        assert!(w.is_none());
        assert!(allows(&t, "amcctl", Level::INFO));
        assert!(allows(&t, "reqwest::connect", Level::TRACE));

        let (t, w) = filter(none, Some("amcctl=loud"));
        assert!(w.is_some_and(|w| w.contains("AMCCTL_LOG")));
        assert!(allows(&t, "amcctl", Level::WARN));
    }
}
