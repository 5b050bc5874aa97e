//! One error type for the whole program, and the one place where an error
//! becomes an exit code (the README lists them). A command that ran to its
//! end reports how it went with an [`ExitStatus`](crate::exit::ExitStatus)
//! instead, even when that is not a success.

use std::fmt;

use crate::amc::AmcError;
use crate::domain::InvalidValue;
use crate::secrets::SecretsError;
use crate::store::{BackupFailure, Clash, Missing, Rule, StoreError};

/// What kind of failure happened; each kind is one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bug: exit 1.
    Internal,
    /// Bad flag or value, ambiguous reference, missing input with no prompt: exit 2.
    Usage,
    /// No such object: exit 3.
    NotFound,
    /// The object belongs to another user: exit 4.
    PermissionDenied,
    /// Already exists, or still referenced: exit 5.
    Conflict,
    /// AMC API or network failure: exit 6.
    Api,
    /// No credentials, or Login with Amazon refused them: exit 7.
    Auth,
    /// The store or the key cannot be used: exit 8.
    Store,
    /// Ctrl-C in a prompt, before anything was saved: exit 130.
    Interrupted,
    /// Stdout was closed by its reader (`| head`): exit 0, quietly.
    ClosedPipe,
}

impl Kind {
    /// The process exit code of this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::ClosedPipe => 0,
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::PermissionDenied => 4,
            Kind::Conflict => 5,
            Kind::Api => 6,
            Kind::Auth => 7,
            Kind::Store => 8,
            Kind::Interrupted => 130,
        }
    }

    /// The stable machine-readable code used in `{"error":{"code":…}}`.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Usage => "usage",
            Kind::NotFound => "not_found",
            Kind::PermissionDenied => "permission_denied",
            Kind::Conflict => "conflict",
            Kind::Api => "api",
            Kind::Auth => "auth",
            Kind::Store => "store",
            Kind::Interrupted => "interrupted",
            Kind::ClosedPipe => "closed_pipe",
        }
    }
}

/// What an [`Error`] keeps of the error that caused it.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// An error a user sees: a kind, a one-line message and an optional hint.
#[derive(Debug)]
pub struct Error {
    /// Decides the exit code.
    pub kind: Kind,
    /// What went wrong, in one line, without secrets.
    pub message: String,
    /// What to do about it, when there is something to do.
    pub hint: Option<String>,
    /// Amazon's request ID of a failed AMC call, for support cases: in
    /// machine-format errors, and on stderr with `-v`.
    pub request_id: Option<String>,
    /// Every problem found in an input file, one line each with its
    /// position. Machine-format errors carry them all; a terminal gets the
    /// first [`PROBLEMS_SHOWN`] and a count of the rest by reason.
    pub problems: Vec<String>,
    /// The error this one was made from, if any: `-v` shows its chain as
    /// `Caused by:` lines.
    pub source: Option<Source>,
}

/// How many problems of a file an error shows one by one on a terminal.
pub const PROBLEMS_SHOWN: usize = 20;
/// How many reasons the summary of the remaining problems names.
const REASONS_SHOWN: usize = 5;

/// The program's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            request_id: None,
            problems: Vec::new(),
            source: None,
        }
    }

    /// Keeps `source` as the error this one was made from.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The errors of the source chain as `-v` shows them under `Caused
    /// by:`, outermost first. One that only repeats the line above it (the
    /// whole line, or what follows its last `": "`, as in `cannot open f:
    /// {e}`) is left out.
    pub fn causes(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut above = self.message.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|e| e as _);
        while let Some(e) = next {
            let text = e.to_string();
            let repeats = above == text || above.ends_with(&format!(": {text}"));
            if !repeats {
                lines.push(text.clone());
            }
            above = text;
            next = e.source();
        }
        lines
    }

    /// Adds the problems of an input file, each a line that starts with
    /// its position (`line 3: …`, `[2]: …`).
    pub fn with_problems(mut self, problems: Vec<String>) -> Self {
        self.problems = problems;
        self
    }

    /// The problems as a terminal shows them: the first [`PROBLEMS_SHOWN`]
    /// in full, then one line counting the rest by reason, most common
    /// first ("and 9,980 more: unknown account ENTITY… (9,980)").
    pub fn problem_summary(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.problems.iter().take(PROBLEMS_SHOWN).cloned().collect();
        let rest = &self.problems[lines.len()..];
        if rest.is_empty() {
            return lines;
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for p in rest {
            let reason = reason_of(p);
            match counts.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => counts.push((reason, 1)),
            }
        }
        // Stable: reasons with equal counts keep the order they first appear in.
        counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let mut named: Vec<String> = counts
            .iter()
            .take(REASONS_SHOWN)
            .map(|(r, n)| format!("{r} ({})", thousands(*n)))
            .collect();
        if counts.len() > REASONS_SHOWN {
            let others: usize = counts[REASONS_SHOWN..].iter().map(|(_, n)| n).sum();
            named.push(format!("other reasons ({})", thousands(others)));
        }
        lines.push(format!(
            "and {} more: {}",
            thousands(rest.len()),
            named.join(", ")
        ));
        lines
    }

    /// Adds a hint shown under the message.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    /// Exit 3.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }

    /// Exit 4.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Kind::PermissionDenied, message)
    }

    /// Exit 5.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }

    /// Exit 8.
    pub fn store(message: impl Into<String>) -> Self {
        Self::new(Kind::Store, message)
    }

    /// Exit 1.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// A local file or stream that cannot be read or written (a read-only
    /// folder, a full disk, `/dev/full`): exit 8, naming what and where.
    /// Not a bug, so never exit 1.
    pub fn file(op: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        Self::store(format!("cannot {op} {}: {e}", path.display())).with_source(e)
    }

    /// Standard output cannot be written (a full disk, `/dev/full`); a
    /// reader that went away is [`Kind::ClosedPipe`] instead.
    pub fn stdout(e: &std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Self::new(Kind::ClosedPipe, "stdout closed")
        } else {
            Self::store(format!("cannot write to standard output: {e}"))
        }
    }

    /// The error for a prompt that cannot be shown: without a terminal, the
    /// flag that would have answered it is required.
    pub fn missing_flag(flag: &str) -> Self {
        Self::usage(format!("{flag} is required when not running interactively"))
    }
}

/// The reason of a problem line: what follows its position, up to the
/// details (`line 7: invalid region: must be na, eu or fe` → `invalid region`).
fn reason_of(problem: &str) -> &str {
    let text = problem.split_once(": ").map_or(problem, |(_, rest)| rest);
    let end = [": ", " ("]
        .iter()
        .filter_map(|sep| text.find(sep))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

/// A count with thousands separators, as people read it: 9,980.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl From<InvalidValue> for Error {
    fn from(e: InvalidValue) -> Self {
        Self::usage(e.to_string()).with_source(e)
    }
}

/// A bare I/O error is nearly always a write of results to standard output
/// (the code names files itself, with [`Error::file`]); it is the
/// environment's doing, not a bug.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::stdout(&e).with_source(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            let io = std::io::Error::from(e);
            Self::stdout(&io).with_source(io)
        } else {
            Self::internal(format!("JSON encoding failed: {e}")).with_source(e)
        }
    }
}

impl From<csv::Error> for Error {
    fn from(e: csv::Error) -> Self {
        if let csv::ErrorKind::Io(io) = e.kind() {
            return Self::stdout(&std::io::Error::new(io.kind(), io.to_string())).with_source(e);
        }
        Self::internal(format!("CSV encoding failed: {e}")).with_source(e)
    }
}

/// The key or the encrypted secrets cannot be used: exit 8.
impl From<SecretsError> for Error {
    fn from(e: SecretsError) -> Self {
        let error = Error::new(Kind::Store, e.to_string());
        let error = match e.hint() {
            Some(hint) => error.with_hint(hint),
            None => error,
        };
        error.with_source(e)
    }
}

impl Error {
    /// Whether this is a stored secret recorded under another key than the
    /// one in use ([`SecretsError::ForeignKey`]): in a team store, another
    /// user's secrets are, which a run over every user's instances
    /// tolerates as it tolerates a user without credentials.
    pub fn is_foreign_key(&self) -> bool {
        self.source
            .as_deref()
            .and_then(|s| s.downcast_ref::<SecretsError>())
            .is_some_and(|s| matches!(s, SecretsError::ForeignKey { .. }))
    }
}

/// A store failure in the user's words: a missing row is exit 3, a clash
/// exit 5, a broken rule exit 2, anything else about the store exit 8.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(Missing::Role(name)) => Error::not_found(format!(
                "the team store's database has no login role {name:?}"
            ))
            .with_hint(format!(
                "a database administrator creates it first: CREATE ROLE {name} LOGIN PASSWORD '…'"
            )),
            StoreError::NotFound(missing) => Error::not_found(match missing {
                Missing::Instance => "the instance no longer exists".to_owned(),
                Missing::Account => "the account no longer exists".to_owned(),
                Missing::User(name) | Missing::Role(name) => format!("no user {name:?}"),
                Missing::Brand(brand) => format!("the instance has no brand {brand:?}"),
                Missing::ImportAccount {
                    entity,
                    instance_id,
                } => format!("unknown account {entity} for instance {instance_id}"),
            }),
            StoreError::Conflict(clash) => match clash {
                Clash::Account(entity) => Error::conflict(format!(
                    "an account with entity ID {entity} already exists"
                )),
                Clash::Instance(instance_id) => {
                    Error::conflict(format!("you already have an instance {instance_id}"))
                        .with_hint("use `amcctl instance edit` to change it")
                }
                Clash::ImportRowId { instance_id, id } => Error::conflict(format!(
                    "instance {instance_id} has id {id}, which another instance already uses"
                )),
                Clash::User(name) => Error::conflict(format!("user {name:?} already exists")),
                Clash::AccountInUse(linked) => {
                    let shown: Vec<&str> = linked.iter().take(20).map(String::as_str).collect();
                    let more = linked.len() - shown.len();
                    let tail = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    Error::conflict(format!(
                        "the account is still linked to {} instance(s): {}{tail}",
                        linked.len(),
                        shown.join(", ")
                    ))
                    .with_hint("delete those instances or link them to another account first")
                }
                Clash::UserOwns { name, instances } => Error::conflict(format!(
                    "user {name:?} still owns {instances} instance(s)"
                ))
                .with_hint("delete them first, or export and import them as another user"),
                Clash::BackupExists(dest) => {
                    Error::conflict(format!("{} already exists", dest.display()))
                }
            },
            StoreError::ForeignInstance(reference) => Error::permission_denied(format!(
                "permission denied: instance {reference:?} belongs to another user"
            ))
            .with_hint("its owner can share it with you: `amcctl instance share`"),
            StoreError::NotMember(login) => Error::permission_denied(format!(
                "permission denied: {login:?} is not a user of this team store"
            ))
            .with_hint(format!(
                "an administrator adds you with `amcctl user add {login}`"
            )),
            StoreError::Denied(reason) => Error::permission_denied(
                if reason.starts_with("permission denied") {
                    reason
                } else {
                    format!("permission denied: {reason}")
                },
            )
            .with_hint(
                "the team store's database refused this to your login: ask the owner of the \
                 instance, or an administrator",
            ),
            StoreError::Constraint(Rule::AdminByRole(name)) => Error::usage(
                "administrators of the team store are the members of the role amcctl_admin, \
                 not users added with --admin",
            )
            .with_hint(format!(
                "add {name} without --admin, then a database administrator runs \
                 `GRANT amcctl_admin TO {name}`"
            )),
            StoreError::Constraint(Rule::TooManyBrands { max }) => Error::usage(format!(
                "invalid brand: at most {max} brands per instance"
            )),
            StoreError::Busy { waited, source } => Error::store(format!(
                "the store stayed locked by another amcctl for {}s: {source}",
                waited.as_secs()
            )),
            StoreError::SchemaTooNew {
                location,
                found,
                supported,
            } => Error::store(format!(
                "the store {location} has schema version {found}, newer than this amcctl understands ({supported})"
            ))
            .with_hint("upgrade amcctl, or point --db at another store"),
            StoreError::SchemaTooOld {
                location,
                found,
                supported,
            } => Error::store(format!(
                "the store {location} has schema version {found}, older than this amcctl's ({supported})"
            ))
            .with_hint("run `amcctl db migrate` to bring it up to date"),
            StoreError::Unreachable { location, source } => {
                Error::store(format!("cannot connect to the store {location}: {}", pg_reason(&*source)))
                    .with_source(source)
            }
            StoreError::Lost { location, source } => Error::store(format!(
                "lost the connection to the store {location}; the change under way was not saved (what was saved before it is kept)"
            ))
            .with_source(source),
            StoreError::Conflicted(source) => Error::store(
                "the store's transaction kept conflicting with other clients'",
            )
            .with_source(source),
            StoreError::NoStore { location } => {
                Error::store(format!("there is no store at {location}"))
            }
            StoreError::Create {
                path,
                folder,
                source,
            } => Error::store(format!(
                "cannot create the store{} {}: {source}",
                if folder { " folder" } else { "" },
                path.display()
            )),
            StoreError::Open { location, source } => {
                Error::store(format!("cannot open the store {location}: {source}"))
            }
            .with_source(source),
            StoreError::Migrate { location, source } => {
                Error::store(format!("cannot migrate the store {location}: {source}"))
            }
            .with_source(source),
            StoreError::Backup {
                dest,
                reason: BackupFailure::Create(e),
            } => Error::file("create the backup", &dest, e),
            StoreError::Backup {
                dest,
                reason: BackupFailure::Copy(e),
            } => Error::store(format!("backup to {} failed: {e}", dest.display())),
            e @ StoreError::Unreadable(_) => Error::store(e.to_string())
                .with_hint("`amcctl db check` names the rows to repair or delete"),
            e @ StoreError::Vanished(_) => Error::internal(e.to_string()),
            StoreError::Backend(source) => {
                Error::store(format!("store error: {source}")).with_source(source)
            }
        }
    }
}

/// What a failed connection to the team store comes down to, in one line:
/// the server's own message when it answered (a refused login, a missing
/// database), else the driver's (refused, timed out).
fn pg_reason(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<postgres::Error>() {
        Some(pg) => match pg.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => {
                let mut text = pg.to_string();
                let mut next = std::error::Error::source(pg);
                while let Some(cause) = next {
                    text = format!("{text}: {cause}");
                    next = cause.source();
                }
                text
            }
        },
        None => e.to_string(),
    }
}

/// Whether running the transaction again may succeed: the team store's
/// serialization failures and deadlocks, kept as this error's source.
impl crate::store::Retryable for Error {
    fn is_retryable(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|e| e as _);
        while let Some(e) = next {
            if e.downcast_ref::<postgres::Error>()
                .is_some_and(crate::store::is_pg_conflict)
            {
                return true;
            }
            next = e.source();
        }
        false
    }
}

/// A failed AMC call: exit 7 when the credentials were at fault, else 6,
/// with AMC's request ID and the error's hint.
impl From<AmcError> for Error {
    fn from(e: AmcError) -> Self {
        let kind = if e.is_auth() { Kind::Auth } else { Kind::Api };
        let hint = e.hint();
        let mut err = Error::new(kind, e.to_string());
        err.request_id = e.request_id().map(str::to_owned);
        let err = err.with_source(e);
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_readme_table() {
        let table = [
            (Kind::Internal, 1),
            (Kind::Usage, 2),
            (Kind::NotFound, 3),
            (Kind::PermissionDenied, 4),
            (Kind::Conflict, 5),
            (Kind::Api, 6),
            (Kind::Auth, 7),
            (Kind::Store, 8),
            (Kind::Interrupted, 130),
            (Kind::ClosedPipe, 0),
        ];
        for (kind, code) in table {
            assert_eq!(kind.exit_code(), code, "{kind:?}");
        }
    }

    #[test]
    fn the_source_chain_is_kept_and_listed_without_repeats() {
        use std::error::Error as _;
        #[derive(Debug, thiserror::Error)]
        #[error("middle layer")]
        struct Middle(#[source] std::io::Error);

        let io = std::io::Error::other("disk on fire");
        let e = Error::store("cannot save").with_source(Middle(io));
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("middle layer")
        );
        assert_eq!(e.causes(), ["middle layer", "disk on fire"]);

        // A From conversion keeps the original error, whose text is the
        // message: it is not listed again.
        let e = Error::from(SecretsError::Missing { path: "k".into() });
        assert!(e.source().is_some());
        assert!(e.causes().is_empty(), "{:?}", e.causes());

        // Nor is a cause the line above ends with.
        let io = std::io::Error::other("gone");
        let e = Error::store(format!("cannot read f: {io}")).with_source(io);
        assert!(e.causes().is_empty(), "{:?}", e.causes());
        assert!(Error::usage("plain").causes().is_empty());
    }

    #[test]
    fn many_problems_are_shown_in_part_and_counted_by_reason() {
        let mut problems: Vec<String> = (0..25)
            .map(|i| format!("line {i}: invalid region: must be na, eu or fe"))
            .collect();
        problems.extend((0..9_980).map(|i| {
            format!("line {i}: unknown account ENTITY1: instance amc{i} has no account_name")
        }));
        problems.push("[3]: duplicate instance_id: amcx first at [1]".into());
        let e = Error::usage("f has problems").with_problems(problems);
        let lines = e.problem_summary();
        assert_eq!(lines.len(), PROBLEMS_SHOWN + 1);
        assert_eq!(
            lines[PROBLEMS_SHOWN],
            "and 9,986 more: unknown account ENTITY1 (9,980), invalid region (5), \
             duplicate instance_id (1)"
        );
        let few = Error::usage("f").with_problems(vec!["line 2: invalid name: empty".into()]);
        assert_eq!(few.problem_summary(), ["line 2: invalid name: empty"]);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
