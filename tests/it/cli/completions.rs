//! Shell completion end to end: the committed scripts are what the binary
//! prints, they load in real bash, zsh and fish, and completing an INSTANCE
//! argument offers the instances of the store the command line would use.
//!
//! zsh and fish are installed by CI (`.ci/run`); where they are missing, their
//! tests fail when `CI` is set and are skipped with a note otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test: cargo's, or `AMCCTL_TEST_BIN` (an installed or
/// release build, or a copy safe from a concurrent rebuild).
fn bin() -> String {
    std::env::var("AMCCTL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_amcctl").to_owned())
}
const ENTITY: &str = "ENTITY1AA1AA11AAA1";

/// (shell, file under completions/)
const SCRIPTS: [(&str, &str); 5] = [
    ("bash", "amcctl.bash"),
    ("zsh", "_amcctl"),
    ("fish", "amcctl.fish"),
    ("powershell", "_amcctl.ps1"),
    ("elvish", "amcctl.elv"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder holding the binary, first on PATH: the scripts call `amcctl`.
fn path_env() -> String {
    let bin = bin();
    let bin_dir = Path::new(&bin).parent().expect("binary has a folder");
    format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display())
}

/// A hermetic environment: one temp folder as home and store, a fixed user.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", path_env())
            .env("HOME", self.home())
            .env("AMCCTL_HOME", self.home())
            .env("USER", "tester")
            .env("LANG", "C.UTF-8")
            .current_dir(self.home());
        c
    }

    fn amcctl(&self, args: &[&str]) -> Output {
        let out = self.cmd(&bin()).args(args).output().expect("run amcctl");
        assert!(
            out.status.success(),
            "amcctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Two instances, one with a name that is safe to offer and one with a
    /// space, and one account.
    fn seed(&self) {
        self.amcctl(&[
            "account",
            "create",
            "--account-id",
            ENTITY,
            "--name",
            "Acme",
        ]);
        for (id, name) in [("amcibersblt", "acme-us"), ("amcabcdefgh", "Acme EU")] {
            self.amcctl(&[
                "instance",
                "create",
                "--instance-id",
                id,
                "--name",
                name,
                "--account",
                ENTITY,
                "--skip-validation",
            ]);
        }
    }
}

/// Whether `shell` can be run; when it cannot, fails under CI and skips otherwise.
fn have(shell: &str) -> bool {
    let found = Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{shell} is not installed; CI must install it (see .ci/run: apt-get install zsh fish)"
            );
        }
        eprintln!("note: {shell} is not installed; skipping its completion test");
    }
    found
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn committed_scripts_are_up_to_date() {
    let update = std::env::var_os("UPDATE_COMPLETIONS").is_some_and(|v| v == "1");
    let env = Env::new();
    let mut stale = Vec::new();
    for (shell, file) in SCRIPTS {
        let printed = env.amcctl(&["completions", shell]).stdout;
        assert!(!printed.is_empty(), "{shell}: empty script");
        let path = repo().join("completions").join(file);
        if update {
            std::fs::write(&path, &printed).expect("write completion script");
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        if committed != printed {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "completions/{{{}}} differ from `amcctl completions SHELL`; regenerate them with \
         `UPDATE_COMPLETIONS=1 cargo test --test it completions` and commit the result",
        stale.join(",")
    );
}

#[test]
fn bash_script_loads_and_completes_instances_from_the_store() {
    let env = Env::new();
    env.seed();
    let script = repo().join("completions/amcctl.bash");
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| -> Vec<String> {
        let program = format!(
            r#"set -u
source {script}
complete -p amcctl >/dev/null || exit 9
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMP_TYPE=9
_clap_complete_amcctl amcctl "{cur}" "{prev}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
            script = script.display()
        );
        let out = env
            .cmd("bash")
            .arg("--norc")
            .arg("--noprofile")
            .arg("-c")
            .arg(program)
            .output()
            .expect("run bash");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "bash failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out)
    };

    let got = complete(r#"amcctl instance show """#, 3, "", "show");
    for want in ["amcibersblt", "amcabcdefgh", "acme-us"] {
        assert!(got.iter().any(|g| g == want), "missing {want} in {got:?}");
    }
    // A name with a space would be split by bash: it is reachable by its ID only.
    assert!(!got.iter().any(|g| g.contains("Acme EU")), "{got:?}");

    let got = complete(r#"amcctl instance show amci"#, 3, "amci", "show");
    assert_eq!(got, vec!["amcibersblt"]);

    let got = complete(
        r#"amcctl instance link amcibersblt --account """#,
        5,
        "",
        "--account",
    );
    assert!(got.iter().any(|g| g == ENTITY), "{got:?}");
    assert!(got.iter().any(|g| g == "Acme"), "{got:?}");

    // Whom to share with, and whose audit entries: the store's users.
    env.amcctl(&["user", "add", "bob"]);
    let got = complete(
        r#"amcctl instance share amcibersblt --with """#,
        5,
        "",
        "--with",
    );
    assert!(got.iter().any(|g| g == "bob"), "{got:?}");
    let got = complete(r#"amcctl audit list --actor """#, 4, "", "--actor");
    assert!(got.iter().any(|g| g == "bob"), "{got:?}");

    let got = complete(r#"amcctl ins"#, 1, "ins", "amcctl");
    assert_eq!(got, vec!["instance"]);
}

#[test]
fn candidates_follow_the_store_named_on_the_command_line_and_never_fail() {
    let env = Env::new();
    env.seed();
    let other = tempfile::tempdir().expect("temp dir");
    let missing = other.path().join("nope.db");
    let ask = |extra: &[&str], db_env: Option<&Path>| -> Output {
        let mut words = vec!["amcctl"];
        words.extend_from_slice(extra);
        words.extend(["instance", "show", ""]);
        let mut c = env.cmd(&bin());
        c.env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .env("_CLAP_IFS", "\n")
            .arg("--")
            .args(&words);
        if let Some(db) = db_env {
            c.env("AMCCTL_DB", db);
        }
        c.output().expect("run amcctl")
    };

    let out = ask(&[], None);
    assert!(lines(&out).contains(&"amcibersblt".to_owned()));

    // --db as typed wins over the environment's store.
    let db = env.home().join("amcctl.db");
    let typed = format!("--db={}", missing.display());
    for out in [ask(&[&typed], Some(&db)), ask(&[], Some(&missing))] {
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !lines(&out).iter().any(|l| l.starts_with("amc")),
            "no store, no instances: {:?}",
            lines(&out)
        );
    }
    assert!(!missing.exists(), "completion must not create a store");

    // Another user's instances are not offered.
    env.amcctl(&["user", "add", "bob"]);
    let out = ask(&["--user", "bob"], None);
    assert!(
        !lines(&out).iter().any(|l| l.starts_with("amc")),
        "{:?}",
        lines(&out)
    );
}

#[test]
fn zsh_script_loads_sourced_and_from_fpath() {
    if !have("zsh") {
        return;
    }
    let env = Env::new();
    let dir = repo().join("completions");
    let program = format!(
        r#"autoload -U compinit && compinit -u -d "$HOME/.zcompdump"
source {dir}/_amcctl
print -r -- "sourced=$_comps[amcctl]"
unset '_comps[amcctl]'
fpath=({dir} $fpath)
compinit -u -d "$HOME/.zcompdump2"
print -r -- "fpath=$_comps[amcctl]"
"#,
        dir = dir.display()
    );
    let out = env
        .cmd("zsh")
        .arg("-f")
        .arg("-c")
        .arg(program)
        .output()
        .expect("run zsh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "zsh: {out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("sourced=_clap_dynamic_completer_amcctl"),
        "{stdout}"
    );
    assert!(stdout.contains("fpath=_amcctl"), "{stdout}");

    // What the zsh function asks the binary for, answered from the store.
    env.seed();
    let out = env
        .cmd(&bin())
        .env("COMPLETE", "zsh")
        .env("_CLAP_COMPLETE_INDEX", "3")
        .args(["--", "amcctl", "instance", "show", ""])
        .output()
        .expect("run amcctl");
    let got = lines(&out);
    assert!(got.iter().any(|l| l == "amcibersblt:acme-us"), "{got:?}");
}

#[test]
fn fish_script_loads_and_completes_instances() {
    if !have("fish") {
        return;
    }
    let env = Env::new();
    env.seed();
    let script = repo().join("completions/amcctl.fish");
    // fish sets $USER from the real uid, so the acting user is named the way
    // a user would: typed on the command line being completed.
    let program = format!(
        "source {}; complete -C 'amcctl --user tester instance show '",
        script.display()
    );
    let out = env
        .cmd("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(program)
        .output()
        .expect("run fish");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "fish: {out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    assert!(got.iter().any(|l| l == "amcibersblt\tacme-us"), "{got:?}");
    assert!(got.iter().any(|l| l.starts_with("amcabcdefgh")), "{got:?}");
}
