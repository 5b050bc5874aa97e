//! Shell completion: `amcctl completions SHELL` and the `COMPLETE=SHELL amcctl`
//! protocol behind it.
//!
//! One mechanism for every shell: the script a shell loads is a small
//! registration that calls `amcctl` back at each TAB (clap_complete's dynamic
//! engine). So completion always matches the installed binary's command tree,
//! and `INSTANCE`, `ACCOUNT` and user arguments complete from the store the
//! user would use. `amcctl completions SHELL` prints the same registration as
//! `COMPLETE=SHELL amcctl`, calling `amcctl` by name (found on `PATH`) so the
//! committed files under `completions/` name no machine's path.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::env::EnvCompleter;
use clap_complete::{ArgValueCandidates, CompleteEnv, CompletionCandidate, Shell};

use crate::config::{Config, Paths};
use crate::domain::InstanceFilter;
use crate::env::{self, Env};
use crate::error::{Error, Result};
use crate::store::Store;

/// The environment variable that switches the binary into completion mode.
pub const COMPLETE_ENV: &str = "COMPLETE";

/// Flags of `amcctl completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Answers a completion request and exits, when the shell asked for one
/// (`COMPLETE=bash amcctl -- amcctl instance show ''`); returns otherwise.
/// Call before parsing the command line and before printing anything.
pub fn complete_if_asked() {
    CompleteEnv::with_factory(command)
        .var(COMPLETE_ENV)
        .complete();
}

/// The command tree with completion candidates attached to every argument
/// that names an instance, an account or a user. Attaching them here, by
/// argument name, keeps the command files free of completion plumbing and
/// makes a new `INSTANCE` argument complete without anyone remembering to.
pub fn command() -> clap::Command {
    attach(super::Cli::command(), &[])
}

fn attach(cmd: clap::Command, path: &[&str]) -> clap::Command {
    let user_names = path == ["user", "remove"];
    let cmd = cmd.mut_args(|arg| match arg.get_id().as_str() {
        "instance" | "instances" => arg.add(ArgValueCandidates::new(instance_candidates)),
        "account" => arg.add(ArgValueCandidates::new(account_candidates)),
        // `--with` of `instance share`/`unshare`, `--actor` of `audit list`.
        "user" | "with" | "actor" => arg.add(ArgValueCandidates::new(user_candidates)),
        "name" if user_names => arg.add(ArgValueCandidates::new(user_candidates)),
        _ => arg,
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names.iter().fold(cmd, |cmd, name| {
        let mut sub_path = path.to_vec();
        sub_path.push(name.as_str());
        cmd.mut_subcommand(name, |sub| attach(sub, &sub_path))
    })
}

/// The registration script of `shell`, the text `amcctl completions SHELL` prints.
pub fn script(shell: Shell) -> Result<Vec<u8>> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &clap_complete::env::Bash,
        Shell::Zsh => &clap_complete::env::Zsh,
        Shell::Fish => &clap_complete::env::Fish,
        Shell::PowerShell => &clap_complete::env::Powershell,
        Shell::Elvish => &clap_complete::env::Elvish,
        other => {
            return Err(Error::usage(format!("no completion support for {other}")));
        }
    };
    let mut buf = Vec::new();
    completer.write_registration(COMPLETE_ENV, "amcctl", "amcctl", "amcctl", &mut buf)?;
    if shell == Shell::Zsh {
        buf = zsh_autoloadable(buf);
    }
    Ok(buf)
}

/// The zsh registration only calls `compdef`, which is right when sourced
/// but wrong when installed as `_amcctl` in `$fpath`: compinit then autoloads
/// the file as the body of `_amcctl`, and the first TAB would only register.
/// Completing directly when running as that autoloaded function makes one
/// file serve both ways, as clap's static zsh scripts do.
fn zsh_autoloadable(script: Vec<u8>) -> Vec<u8> {
    const REGISTER: &str = "compdef _clap_dynamic_completer_amcctl amcctl";
    let Ok(text) = String::from_utf8(script.clone()) else {
        return script;
    };
    if !text.contains(REGISTER) {
        return script;
    }
    text.replace(
        REGISTER,
        r#"if [ "$funcstack[1]" = "_amcctl" ]; then
    _clap_dynamic_completer_amcctl "$@"
else
    compdef _clap_dynamic_completer_amcctl amcctl
fi"#,
    )
    .into_bytes()
}

/// The file name under `completions/` (and the one shells look for) of `shell`'s script.
pub fn file_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "amcctl.bash",
        Shell::Zsh => "_amcctl",
        Shell::Fish => "amcctl.fish",
        Shell::PowerShell => "_amcctl.ps1",
        _ => "amcctl.elv",
    }
}

/// Prints the completion script.
pub(super) fn run(args: &CompletionsArgs, out: &crate::output::Output) -> Result<()> {
    out.print(script(args.shell)?)
}

/// What a completion needs to know to find the store and the acting user,
/// taken from the words being completed (`--home`, `--db`, `--config`,
/// `--user`, as typed so far), then the environment, then the config file:
/// the same precedence the command itself will apply.
#[derive(Debug, Default)]
struct Typed {
    home: Option<PathBuf>,
    db: Option<PathBuf>,
    config: Option<PathBuf>,
    user: Option<String>,
}

impl Typed {
    /// The command line being completed: the words after the `--` that the
    /// registration scripts put before them.
    fn from_words(args: impl IntoIterator<Item = OsString>) -> Typed {
        let words: Vec<String> = args
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .skip_while(|a| a != "--")
            .skip(1)
            .collect();
        let mut typed = Typed::default();
        let mut i = 0;
        while i < words.len() {
            let word = &words[i];
            let (flag, inline) = match word.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (word.as_str(), None),
            };
            let slot = match flag {
                "--home" => Some(&mut typed.home as &mut dyn FnSet),
                "--db" => Some(&mut typed.db as &mut dyn FnSet),
                "--config" => Some(&mut typed.config as &mut dyn FnSet),
                "--user" => Some(&mut typed.user as &mut dyn FnSet),
                _ => None,
            };
            if let Some(slot) = slot {
                match inline {
                    Some(v) => slot.set(v),
                    None => {
                        if let Some(v) = words.get(i + 1) {
                            slot.set(v.clone());
                        }
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        // Completion runs outside of any command: the shell's environment
        // is the one the command would get.
        let vars = Env::from_process();
        typed.home = typed.home.or_else(|| vars.path(env::HOME));
        typed.db = typed.db.or_else(|| vars.path(env::DB));
        typed.config = typed.config.or_else(|| vars.path(env::CONFIG));
        typed.user = typed
            .user
            .or_else(|| vars.non_empty(env::USER).map(str::to_owned));
        typed
    }
}

/// A place a typed flag's value goes.
trait FnSet {
    fn set(&mut self, value: String);
}

impl FnSet for Option<PathBuf> {
    fn set(&mut self, value: String) {
        // A value still being typed, or one with an unexpanded `~`, names no
        // store worth opening; the environment or default is a better guess.
        if !value.is_empty() && !value.starts_with('~') {
            *self = Some(PathBuf::from(value));
        }
    }
}

impl FnSet for Option<String> {
    fn set(&mut self, value: String) {
        if !value.is_empty() {
            *self = Some(value);
        }
    }
}

/// The store and acting user of the command line being completed, if both
/// exist. Completion must never create, migrate or write a store, and must
/// never print an error into the user's shell: any failure is "no candidates".
fn lookup() -> Option<(Store, Typed, Config)> {
    let typed = Typed::from_words(std::env::args_os());
    let paths = Paths::resolve(
        typed.home.as_deref(),
        typed.db.as_deref(),
        typed.config.as_deref(),
    )
    .ok()?;
    let config = Config::load(&paths.config).unwrap_or_default();
    let store = Store::open_read_only(&paths.db).ok()?;
    Some((store, typed, config))
}

/// Whether a value can be offered as it is: the bash protocol inserts
/// candidates unquoted, so a name with spaces or shell syntax would split or
/// misfire. Such names are still reachable by their IDs.
fn shell_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+' | '@' | ','))
}

/// A candidate's description, escaped: it comes from the store, which
/// another tool may have written, and the shell prints it as it is.
fn help(text: &str) -> Option<clap::builder::StyledStr> {
    Some(crate::domain::printable(text).into_owned().into())
}

/// The acting user's instances: AMC instance IDs (help: the name), and names
/// that are safe to insert (help: the ID).
fn instance_candidates() -> Vec<CompletionCandidate> {
    let Some((store, typed, config)) = lookup() else {
        return Vec::new();
    };
    let name = typed
        .user
        .or(config.user)
        .or_else(|| super::os_login_name(&Env::from_process()).ok());
    let Some(user) = name.and_then(|n| store.user(&n).ok().flatten()) else {
        return Vec::new();
    };
    let filter = InstanceFilter {
        member: Some(user.id),
        ..Default::default()
    };
    let Ok(list) = store.instances(&filter) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len() * 2);
    for i in &list {
        let id = i.instance_id.to_string();
        if !shell_safe(&id) {
            continue;
        }
        out.push(CompletionCandidate::new(&id).help(help(&i.name)));
        if i.name != id && shell_safe(&i.name) {
            out.push(CompletionCandidate::new(&i.name).help(help(&id)));
        }
    }
    out
}

/// Every account: entity IDs (help: the name), and safe names (help: the entity ID).
fn account_candidates() -> Vec<CompletionCandidate> {
    let Some((store, _, _)) = lookup() else {
        return Vec::new();
    };
    let Ok(list) = store.accounts() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len() * 2);
    for a in list.iter().filter(|a| shell_safe(a.account_id.as_str())) {
        out.push(CompletionCandidate::new(a.account_id.as_str()).help(help(&a.account_name)));
        if a.account_name != a.account_id.as_str() && shell_safe(&a.account_name) {
            out.push(CompletionCandidate::new(&a.account_name).help(help(a.account_id.as_str())));
        }
    }
    out
}

/// The users of the store.
fn user_candidates() -> Vec<CompletionCandidate> {
    let Some((store, _, _)) = lookup() else {
        return Vec::new();
    };
    store
        .users()
        .map(|users| {
            users
                .into_iter()
                .filter(|u| shell_safe(&u.name))
                .map(|u| CompletionCandidate::new(u.name))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<OsString> {
        w.iter().map(OsString::from).collect()
    }

    #[test]
    fn typed_flags_are_read_after_the_separator() {
        let t = Typed::from_words(words(&[
            "amcctl",
            "--home",
            "/ignored",
            "--",
            "amcctl",
            "--db=/x/a.db",
            "--user",
            "bob",
            "--home",
            "/h",
            "instance",
            "show",
            "",
        ]));
        assert_eq!(t.db.as_deref(), Some(std::path::Path::new("/x/a.db")));
        assert_eq!(t.home.as_deref(), Some(std::path::Path::new("/h")));
        assert_eq!(t.user.as_deref(), Some("bob"));
    }

    #[test]
    fn every_instance_and_account_argument_completes() {
        let mut cmd = command();
        cmd.build();
        let mut missing = Vec::new();
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(
                    id,
                    "instance" | "instances" | "account" | "user" | "with" | "actor"
                ) && arg.get::<ArgValueCandidates>().is_none()
                {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, format!("{path} {}", sub.get_name()), missing);
            }
        }
        walk(&cmd, "amcctl".into(), &mut missing);
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn names_with_shell_syntax_are_not_offered() {
        assert!(shell_safe("acme-us_1"));
        assert!(!shell_safe("Acme US"));
        assert!(!shell_safe("a;b"));
        assert!(!shell_safe(""));
    }
}
