//! How a command that ran to its end went, and its exit code.
//!
//! A check that finds instances not healthy, a sync where some instances
//! failed while the others were saved, a bulk run stopped by Ctrl-C after
//! saving what it had: these are results, not errors. The command did its
//! work and says how it went with an [`ExitStatus`]; an
//! [`Error`](crate::error::Error) is for a command that could not do its
//! work. Both end as an exit code in [`crate::run`] (the README lists
//! the codes).

use crate::error::Kind;

/// The outcome of a command that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// All went well: exit 0.
    Success,
    /// A health check ran and found instances not healthy: exit 10.
    Unhealthy(String),
    /// Some instances of a bulk run could not be done; the others' results
    /// were saved: exit 6, as for a failed AMC call.
    PartlyFailed(String),
    /// Ctrl-C stopped a bulk run; the results completed by then were
    /// saved: exit 130.
    Interrupted(String),
    /// `health check --nagios`: the monitoring-plugin state (1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN), already printed on stdout.
    Plugin(u8),
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Unhealthy(_) => 10,
            ExitStatus::PartlyFailed(_) => Kind::Api.exit_code(),
            ExitStatus::Interrupted(_) => Kind::Interrupted.exit_code(),
            ExitStatus::Plugin(state) => i32::from(*state),
        }
    }

    /// What the outcome reports on stderr, as an error is reported: the
    /// machine-readable code of `{"error":{"code":…}}` and the message.
    /// `None` when there is nothing to add to what stdout said.
    pub fn report(&self) -> Option<(&'static str, &str)> {
        match self {
            ExitStatus::Success | ExitStatus::Plugin(_) => None,
            ExitStatus::Unhealthy(message) => Some(("unhealthy", message)),
            ExitStatus::PartlyFailed(message) => Some((Kind::Api.code(), message)),
            ExitStatus::Interrupted(message) => Some((Kind::Interrupted.code(), message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_reports() {
        let m = || "m".to_owned();
        let table = [
            (ExitStatus::Success, 0, None),
            (ExitStatus::Unhealthy(m()), 10, Some("unhealthy")),
            (ExitStatus::PartlyFailed(m()), 6, Some("api")),
            (ExitStatus::Interrupted(m()), 130, Some("interrupted")),
            (ExitStatus::Plugin(1), 1, None),
            (ExitStatus::Plugin(2), 2, None),
            (ExitStatus::Plugin(3), 3, None),
        ];
        for (status, code, report) in table {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(status.report().map(|(c, _)| c), report, "{status:?}");
            if let Some((_, message)) = status.report() {
                assert_eq!(message, "m");
            }
        }
    }
}
