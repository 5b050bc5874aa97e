//! `amcctl man`: roff man pages generated from the same clap definitions as
//! `--help`, so the two cannot disagree.
//!
//! Layout, git-style: `amcctl(1)` describes the tool, its global options,
//! environment, files and exit status and lists the commands; each command
//! and subcommand has its own page (`amcctl-instance(1)`,
//! `amcctl-instance-create(1)`). `amcctl man` prints the main page,
//! `amcctl man instance create` one command's page, and `amcctl man --out DIR`
//! writes every page for installing into a `man1` folder.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::error::{Error, Result};

/// Flags of `amcctl man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The command whose page to print, like `instance create` [default: amcctl itself]
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write every page (amcctl.1, amcctl-instance.1, …) into DIR instead of printing one
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out: Option<PathBuf>,
}

/// The sections clap does not know about, for the main page.
const EXTRA: &str = r#".SH ENVIRONMENT
.TP
\fBAMCCTL_HOME\fR
One folder for store, config and key (like \fB\-\-home\fR).
.TP
\fBAMCCTL_DB\fR, \fBAMCCTL_CONFIG\fR
The store and the config file (like \fB\-\-db\fR, \fB\-\-config\fR).
.TP
\fBAMCCTL_USER\fR, \fBAMCCTL_OUTPUT\fR
The acting user and the output format (like \fB\-\-user\fR, \fB\-o\fR).
.TP
\fBAMCCTL_NO_INPUT\fR=1
Never prompt (like \fB\-\-no\-input\fR); also implied when stdin or stderr is not a terminal.
.TP
\fBAMCCTL_LOG\fR
Diagnostics on stderr: a level (error, warn, info, debug, trace) or target=level pairs. \fB\-q\fR and \fB\-v\fR win over it.
.TP
\fBNO_COLOR\fR
When set and not empty, no colour unless \fB\-\-color always\fR.
.TP
\fBAMCCTL_KEY\fR
The Fernet key (url-safe base64 of 32 bytes), instead of the key file.
.TP
\fBAMCCTL_API_URL\fR, \fBAMCCTL_AUTH_URL\fR
The Amazon Ads API base URL and the Login-with-Amazon token endpoint.
.TP
\fBAMCCTL_CLIENT_ID\fR, \fBAMCCTL_CLIENT_SECRET\fR, \fBAMCCTL_REFRESH_TOKEN\fR
Credentials without a stored login.
.TP
\fBHTTPS_PROXY\fR, \fBNO_PROXY\fR
The proxy for AMC and Login-with-Amazon calls, and the hosts that bypass it. Behind a proxy that inspects TLS, add its CA with \fB\-\-ca\-bundle\fR or \fBAMCCTL_CA_BUNDLE\fR.
.TP
\fBCOMPLETE\fR=\fISHELL\fR
Answer a shell's completion request (used by the scripts of \fBamcctl completions\fR).
.SH FILES
.TP
\fI~/.local/share/amcctl/amcctl.db\fR
The store (SQLite). \fBamcctl db path\fR prints where it is.
.TP
\fI~/.local/share/amcctl/key\fR
The key that encrypts stored secrets: credentials, cached tokens and the instance settings of \fBamcctl instance config\fR (one Fernet token over their JSON object per instance, readable by Python's \fBcryptography.fernet\fR with the same key). \fBamcctl key path\fR prints where it is.
.TP
\fI~/.config/amcctl/config.toml\fR
Defaults for user, output, region, concurrency, rate and timeout. \fBamcctl config path\fR prints where it is.
.PP
Precedence, highest first: command-line flag, environment variable, config file, built-in default.
.SH "EXIT STATUS"
.TP
0
Success.
.TP
1
Internal error (a bug).
.TP
2
Usage: bad flag or value, ambiguous reference, missing input with no prompt possible, invalid config file.
.TP
3
Not found.
.TP
4
Permission denied: the object belongs to another user.
.TP
5
Conflict: already exists, still referenced.
.TP
6
AMC API or network failure.
.TP
7
Authentication: no credentials, or Login with Amazon refused them.
.TP
8
Store or key: cannot open or migrate the store, \fBdb check\fR found problems, key missing or wrong.
.TP
10
\fBhealth check\fR ran and at least one instance is not HEALTHY.
.TP
130
Interrupted (Ctrl-C).
"#;

/// The command tree as the pages show it: no `help` pseudo-command, and an
/// about line without the leading "amcctl —", which NAME already says.
fn tree() -> clap::Command {
    let cmd = super::Cli::command().disable_help_subcommand(true);
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let about = about
        .split_once(" — ")
        .map_or(about.as_str(), |(_, rest)| rest)
        .to_owned();
    let mut cmd = cmd.about(about);
    cmd.build();
    cmd
}

/// The main page, with the sections clap cannot generate.
pub fn main_page() -> Result<Vec<u8>> {
    let cmd = tree();
    let man = clap_mangen::Man::new(cmd);
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    man.render_subcommands_section(&mut buf)?;
    buf.extend_from_slice(EXTRA.as_bytes());
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

/// The page of the command at `path` (`["instance", "create"]`).
pub fn page(path: &[String]) -> Result<Vec<u8>> {
    if path.is_empty() {
        return main_page();
    }
    let cmd = tree();
    let mut found = &cmd;
    for name in path {
        found = found
            .get_subcommands()
            .find(|s| s.get_name() == name || s.get_all_aliases().any(|a| a == name))
            .ok_or_else(|| {
                Error::usage(format!("no command `amcctl {}`", path.join(" ")))
                    .with_hint("see `amcctl --help` for the commands")
            })?;
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(found.clone()).render(&mut buf)?;
    Ok(buf)
}

/// Writes every page into `dir`; returns how many.
pub fn write_all(dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::usage(format!("cannot create {}: {e}", dir.display())))?;
    let cmd = tree();
    fn walk(cmd: &clap::Command, dir: &Path, count: &mut usize) -> Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, count)?;
            let man = clap_mangen::Man::new(sub.clone());
            let path = dir.join(man.get_filename());
            let mut buf = Vec::new();
            man.render(&mut buf)?;
            write_file(&path, &buf)?;
            *count += 1;
        }
        Ok(())
    }
    let mut count = 0;
    walk(&cmd, dir, &mut count)?;
    write_file(&dir.join("amcctl.1"), &main_page()?)?;
    Ok(count + 1)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))
}

/// Runs `amcctl man`.
pub(super) fn run(args: &ManArgs, out: &crate::output::Output) -> Result<()> {
    if let Some(dir) = &args.out {
        let n = write_all(dir)?;
        out.info(format!("Wrote {n} man pages to {}", dir.display()));
        return Ok(());
    }
    out.print(page(&args.command)?)
}
