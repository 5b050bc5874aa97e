//! What the AMC end-to-end tests share: a fake AMC server with one client,
//! a home logged in against it, fleets of instances in both, and ways to
//! read what the fake received.
//!
//! ```ignore
//! use crate::support::amc::Amc;
//!
//! let amc = Amc::logged_in();
//! amc.instances(&["amcaaaaaaa01"]);
//! amc.env.run(&["instance", "test", "amcaaaaaaa01"]).ok();
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use fake_amc::{FakeAmc, Recorded};
use serde_json::{Value, json};

use crate::support::{Output, TestEnv};

/// The LwA client of every test (not a secret: it travels as a header).
pub const CLIENT_ID: &str = "amzn1.application-oa2-client.e2etests";
/// The client secret: a marker with no token-like shape, so only careful
/// handling (not pattern scrubbing) keeps it out of outputs.
pub const CLIENT_SECRET: &str = "cs-MARKER-7f3a9c1e5b2d4468";
/// The refresh token: shaped like a real one (`Atzr|…`), with a marker.
pub const REFRESH_TOKEN: &str = "Atzr|IwEBIrefreshMARKER0a9b8c7d6e5f";
/// The account every fleet belongs to.
pub const ENTITY: &str = "ENTITY1E2EACCOUNT";
/// Its name in the store and in the fake.
pub const ACCOUNT_NAME: &str = "Acme";
/// The US marketplace, the account's.
pub const US: &str = "ATVPDKIKX0DER";
/// A second account of the fake (for instances that are not the first's).
pub const OTHER_ENTITY: &str = "ENTITY2OTHERACCOUNT";

/// A fake AMC server and a home pointed at it.
pub struct Amc {
    /// The fake server.
    pub fake: FakeAmc,
    /// The home; its commands talk to `fake`.
    pub env: TestEnv,
}

impl Amc {
    /// A fake that knows the client and both accounts, and a home pointed
    /// at it with the first account and alice in the store; nobody logged
    /// in yet.
    pub fn new() -> Amc {
        let fake = FakeAmc::start();
        fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
        fake.add_account(ENTITY, ACCOUNT_NAME, US);
        fake.add_account(OTHER_ENTITY, "Other", US);
        let env = TestEnv::new().with_fake_amc(&fake);
        env.create_account(ENTITY, ACCOUNT_NAME);
        // alice exists from here on, as after any first command of hers.
        env.run(&["instance", "list"]).ok();
        Amc { fake, env }
    }

    /// The same, with alice logged in (one token grant).
    pub fn logged_in() -> Amc {
        let amc = Amc::new();
        amc.login().ok();
        amc
    }

    /// `auth login` with the test client, secret and refresh token on stdin.
    pub fn login(&self) -> Output {
        login_with(&self.env, &[], CLIENT_SECRET, REFRESH_TOKEN)
    }

    /// Registers COMPLETED instances of the account in the fake and saves
    /// them in the store as PENDING (no validation, no request).
    pub fn instances(&self, ids: &[&str]) {
        for id in ids {
            self.fake.add_instance(ENTITY, id, &format!("{id} in AMC"));
        }
        self.import(ids, "PENDING");
    }

    /// Saves instances of the account in the store with `status`, by one
    /// `instance import` (the fake is not touched).
    pub fn import(&self, ids: &[&str], status: &str) {
        let rows: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"instance_id": id, "name": id, "region": "na", "status": status,
                       "is_active": status != "INACTIVE", "account": {"account_id": ENTITY}})
            })
            .collect();
        let file = self.env.write_file(
            &format!("import-{}.json", ids.first().copied().unwrap_or("none")),
            serde_json::to_vec(&rows).unwrap(),
        );
        self.env
            .run(&[
                "instance",
                "import",
                file.to_str().unwrap(),
                "--format",
                "json",
            ])
            .ok();
    }

    /// The AMC calls (not token calls) received, in order.
    pub fn amc_requests(&self) -> Vec<Recorded> {
        amc_requests(&self.fake)
    }

    /// The calls for one instance (`GET /amc/instances/{id}`), in order.
    pub fn instance_requests(&self, id: &str) -> Vec<Recorded> {
        let path = format!("/amc/instances/{id}");
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The token calls received, in order.
    pub fn token_requests(&self) -> Vec<Recorded> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.path == "/auth/o2/token")
            .collect()
    }
}

/// `auth login --client-id CLIENT_ID` with `secret` and `refresh` on stdin,
/// plus `extra` arguments.
pub fn login_with(env: &TestEnv, extra: &[&str], secret: &str, refresh: &str) -> Output {
    let mut args = vec![
        "auth",
        "login",
        "--client-id",
        CLIENT_ID,
        "--client-secret-stdin",
        "--refresh-token-stdin",
    ];
    args.extend_from_slice(extra);
    env.run_stdin(&args, format!("{secret}\n{refresh}\n"))
}

/// The AMC calls (not token calls) a fake received, in order.
pub fn amc_requests(fake: &FakeAmc) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/amc/"))
        .collect()
}

/// Every access token the fake saw in use: the bearer tokens of the AMC
/// calls it received.
pub fn access_tokens_seen(fake: &FakeAmc) -> Vec<String> {
    let mut tokens: Vec<String> = amc_requests(fake)
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned)
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

/// The results of `health check -o json`, by AMC instance ID.
pub fn results_by_id(out: &Output) -> std::collections::BTreeMap<String, Value> {
    let doc = out.json();
    doc["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array: {doc}"))
        .iter()
        .map(|r| (r["instance_id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// A running `amcctl` whose stdout is read line by line as it is written.
pub struct Streaming {
    /// The process.
    pub child: Child,
    /// Lines of stdout with the time each was read; closed at EOF.
    pub lines: mpsc::Receiver<(Instant, String)>,
    stderr: std::thread::JoinHandle<String>,
}

impl Streaming {
    /// Starts `amcctl ARGS` in `env` with stdout and stderr piped.
    pub fn start(env: &TestEnv, args: &[&str]) -> Streaming {
        let mut cmd = env.command("alice", args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start amcctl");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Streaming {
            child,
            lines,
            stderr,
        }
    }

    /// The next line of stdout (blocks until it is written); `None` at EOF.
    pub fn next_line(&self) -> Option<(Instant, String)> {
        self.lines.recv().ok()
    }

    /// Sends `signal` (a name `kill -s` knows, like `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits for the exit; returns the exit code (`None` if killed by a
    /// signal), the lines not read yet, and stderr.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let status = self.child.wait().expect("wait for amcctl");
        let rest: Vec<String> = self.lines.iter().map(|(_, l)| l).collect();
        let stderr = self.stderr.join().unwrap_or_default();
        (status.code(), rest, stderr)
    }
}
