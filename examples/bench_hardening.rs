//! How much does hostile input cost? A benchmark, not a test: it runs the
//! real binary on a fresh home and times what used to be slow or unbounded:
//!
//! * `brand set` with 60,000 arguments (100 distinct: accepted; all
//!   distinct: refused by the count rule);
//! * `instance import` of a file with 100,000 brands for one instance
//!   (refused by the count rule);
//! * `/dev/zero` on stdin of every reader (`auth login
//!   --client-secret-stdin`, `--refresh-token-stdin`, the pasted return URL
//!   of `auth login --web --no-browser`, `instance config set --value-stdin`,
//!   `instance import -`) under a 1.5 GB address-space limit: each must
//!   exit 2.
//!
//! Each line gives the exit code, the wall time and the child's peak
//! resident memory.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench_hardening
//! cargo run --release --example bench_hardening -- --bin path/to/amcctl
//! ```

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ENTITY: &str = "ENTITY1BENCHHARD1";
/// The address-space limit the stdin readers run under.
const LIMIT_BYTES: u64 = 1536 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = match args.iter().position(|a| a == "--bin") {
        Some(i) => PathBuf::from(args.get(i + 1).expect("--bin PATH")),
        None => amcctl_bin(),
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let home = dir.path().join("home");
    must(
        amcctl(&bin, &home).args([
            "account",
            "create",
            "--account-id",
            ENTITY,
            "--name",
            "Bench",
        ]),
        "account create",
    );
    must(
        amcctl(&bin, &home).args([
            "instance",
            "create",
            "--skip-validation",
            "--instance-id",
            "amcbench001",
            "--name",
            "bench",
            "--account",
            ENTITY,
        ]),
        "instance create",
    );
    println!(
        "{:<58} {:>4} {:>10} {:>10}",
        "case", "exit", "wall", "peak RSS"
    );

    let dup: Vec<String> = (0..60_000).map(|i| format!("b{}", i % 100)).collect();
    let mut cmd = amcctl(&bin, &home);
    cmd.args(["brand", "set", "amcbench001"]).args(&dup);
    report("brand set, 60,000 arguments, 100 distinct", &mut cmd, false);

    let distinct: Vec<String> = (0..60_000).map(|i| format!("b{i}")).collect();
    let mut cmd = amcctl(&bin, &home);
    cmd.args(["brand", "set", "amcbench001"]).args(&distinct);
    report("brand set, 60,000 distinct arguments", &mut cmd, false);

    let brands: Vec<String> = (0..100_000).map(|i| format!("brand {i}")).collect();
    let file = dir.path().join("huge.json");
    let body = serde_json::json!([{"instance_id": "amcbench002", "name": "huge", "region": "na",
        "account": {"account_id": ENTITY}, "brands": brands}]);
    std::fs::write(&file, serde_json::to_vec(&body).expect("JSON")).expect("write the file");
    let mut cmd = amcctl(&bin, &home);
    cmd.args(["instance", "import"]).arg(&file);
    report(
        "instance import, 100,000 brands on one instance",
        &mut cmd,
        false,
    );

    let login = [
        "auth",
        "login",
        "--client-id",
        "amzn1.application-oa2-client.bench",
    ];
    let mut cmd = amcctl(&bin, &home);
    cmd.args(login)
        .arg("--client-secret-stdin")
        .env("AMCCTL_REFRESH_TOKEN", "Atzr|bench");
    report(
        "auth login --client-secret-stdin < /dev/zero",
        &mut cmd,
        true,
    );
    let mut cmd = amcctl(&bin, &home);
    cmd.args(login)
        .arg("--refresh-token-stdin")
        .env("AMCCTL_CLIENT_SECRET", "bench-secret");
    report(
        "auth login --refresh-token-stdin < /dev/zero",
        &mut cmd,
        true,
    );
    let mut cmd = amcctl(&bin, &home);
    cmd.args(login)
        .args(["--web", "--no-browser"])
        .env("AMCCTL_CLIENT_SECRET", "bench-secret");
    report("auth login --web --no-browser < /dev/zero", &mut cmd, true);
    let mut cmd = amcctl(&bin, &home);
    cmd.args([
        "instance",
        "config",
        "set",
        "amcbench001",
        "key",
        "--value-stdin",
    ]);
    report(
        "instance config set --value-stdin < /dev/zero",
        &mut cmd,
        true,
    );
    for format in ["json", "csv"] {
        let mut cmd = amcctl(&bin, &home);
        cmd.args(["instance", "import", "-", "--format", format]);
        report(
            &format!("instance import - --format {format} < /dev/zero"),
            &mut cmd,
            true,
        );
    }
}

/// Runs `cmd` and prints its exit code, wall time and peak memory; with
/// `endless`, stdin is `/dev/zero` and the address space is limited.
fn report(what: &str, cmd: &mut Command, endless: bool) {
    if endless {
        cmd.stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"));
        // SAFETY: only setrlimit, which is async-signal-safe, runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: LIMIT_BYTES,
                    rlim_max: LIMIT_BYTES,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start amcctl");
    let (code, rss_kib) = wait_with_rusage(&mut child);
    let wall = started.elapsed();
    println!(
        "{what:<58} {code:>4} {:>10} {:>7} MiB",
        fmt(wall),
        rss_kib / 1024
    );
}

/// Waits for `child`; its exit code (or 128 + signal) and peak RSS in KiB.
fn wait_with_rusage(child: &mut std::process::Child) -> (i32, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid to be filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, the pointers are valid for the call.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, usage.ru_maxrss)
}

fn fmt(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The amcctl binary next to this example's folder.
fn amcctl_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this example");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("amcctl"))
        .expect("a target folder")
}

/// A command for the binary in a hermetic environment on `home`; nothing it
/// could send leaves the machine.
fn amcctl(bin: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AMCCTL_HOME", home)
        .env("USER", "bench")
        .env("AMCCTL_NO_INPUT", "1")
        .env("AMCCTL_API_URL", "http://127.0.0.1:9")
        .env("AMCCTL_AUTH_URL", "http://127.0.0.1:9/auth/o2/token")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn must(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}
