//! How does `instance import` grow with the size of one account? A
//! benchmark, not a test: it runs the real binary on fresh homes and times
//! imports of 5,000, 10,000 and 20,000 rows into one account (best of three
//! runs each), a second import of the same file (every row unchanged), and
//! one file of 10,000 rows naming an unknown account, whose stderr must stay
//! short on a terminal-style run.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench_import
//! cargo run --release --example bench_import -- --bin path/to/amcctl
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ENTITY: &str = "ENTITY1BENCHIMPORT";
const RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = match args.iter().position(|a| a == "--bin") {
        Some(i) => PathBuf::from(args.get(i + 1).expect("--bin PATH")),
        None => amcctl_bin(),
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    println!("{:<44} {:>10} {:>10}", "case", "best", "per row");
    let mut best_of = Vec::new();
    for n in [5_000, 10_000, 20_000] {
        let file = dir.path().join(format!("rows{n}.csv"));
        std::fs::write(&file, csv(n, ENTITY)).expect("write the file");
        let mut first = Duration::MAX;
        let mut again = Duration::MAX;
        for run in 0..RUNS {
            let home = dir.path().join(format!("home{n}-{run}"));
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
            first = first.min(timed(&bin, &home, &file));
            again = again.min(timed(&bin, &home, &file));
        }
        report(&format!("{n} rows into one account"), first, n);
        report(&format!("{n} rows again, all unchanged"), again, n);
        best_of.push(first);
    }
    println!(
        "growth: 10,000/5,000 = {:.2}x, 20,000/10,000 = {:.2}x",
        best_of[1].as_secs_f64() / best_of[0].as_secs_f64(),
        best_of[2].as_secs_f64() / best_of[1].as_secs_f64()
    );

    let home = dir.path().join("home-unknown");
    let file = dir.path().join("unknown.csv");
    std::fs::write(&file, csv(10_000, "ENTITY1NOSUCHACCT")).expect("write the file");
    let out = amcctl(&bin, &home)
        .args(["instance", "import"])
        .arg(&file)
        .stderr(Stdio::piped())
        .output()
        .expect("run amcctl");
    println!(
        "10,000 rows of an unknown account: exit {}, {} bytes on stderr, {} lines",
        out.status.code().unwrap_or(-1),
        out.stderr.len(),
        out.stderr.iter().filter(|&&b| b == b'\n').count()
    );
}

/// A CSV file of `n` instances of the account `entity`.
fn csv(n: usize, entity: &str) -> String {
    let mut text = String::from("instance_id,name,region,account_id,brands\n");
    for i in 0..n {
        text.push_str(&format!(
            "amc{i:08x},Instance {i},na,{entity},Brand {}\n",
            i % 7
        ));
    }
    text
}

fn timed(bin: &Path, home: &Path, file: &Path) -> Duration {
    let start = Instant::now();
    must(
        amcctl(bin, home).args(["instance", "import"]).arg(file),
        "instance import",
    );
    start.elapsed()
}

fn report(what: &str, d: Duration, rows: usize) {
    println!(
        "{what:<44} {:>8.3} s {:>7.1} µs",
        d.as_secs_f64(),
        d.as_secs_f64() * 1e6 / rows as f64
    );
}

fn amcctl_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this example");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("amcctl"))
        .expect("a target folder")
}

fn amcctl(bin: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AMCCTL_HOME", home)
        .env("USER", "bench")
        .env("AMCCTL_NO_INPUT", "1")
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
