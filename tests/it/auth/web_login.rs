//! `auth login --web` end to end against the fake Login with Amazon: the
//! test plays the browser (BROWSER is a script that hands it the URL; the
//! test follows the authorize redirect to amcctl's loopback listener).
//! The good path stores a working refresh token after a valid PKCE pair and
//! state; a wrong state, a declined login, an expired code and a timeout
//! save nothing; a port in use is exit 2 naming --port; `--no-browser` is
//! driven in a pseudo-terminal.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestEnv;
use crate::support::amc::{Amc, CLIENT_ID, CLIENT_SECRET};
use fake_amc::AuthorizeOutcome;

/// A BROWSER that writes the URL it is given to `url.txt` in `dir`.
fn browser_script(dir: &Path) -> PathBuf {
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{}/url.tmp' && mv '{}/url.tmp' '{}/url.txt'\n",
            dir.display(),
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    script
}

/// The URL the BROWSER script was handed, waiting for it generously.
fn opened_url(dir: &Path) -> String {
    let file = dir.join("url.txt");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            return text.trim().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the browser was never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP/1.1 GET: status, Location header, body.
fn http_get(url: &str) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let location = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_owned())
    });
    (status, location, body.to_owned())
}

/// The fake with the test client; a home pointed at it (authorize page
/// too), BROWSER playing the browser through the test.
fn setup() -> (Amc, PathBuf) {
    let amc = Amc::new();
    let dir = amc.env.scratch().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    (amc, dir)
}

/// Starts `auth login --web --port 0` with the secret in the environment.
fn start_login(env: &TestEnv, fake: &fake_amc::FakeAmc, dir: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["auth", "login", "--web", "--client-id", CLIENT_ID];
    args.extend_from_slice(extra);
    let mut cmd = env.command("alice", &args);
    cmd.env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMCCTL_AUTHORIZE_URL", fake.authorize_url())
        .env("BROWSER", browser_script(dir))
        .stdin(Stdio::null());
    cmd.spawn().expect("start amcctl")
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().expect("wait for amcctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn credentials_rows(env: &TestEnv) -> i64 {
    env.probe().count("credentials")
}

fn browser_login_stores_a_refresh_token_that_works() {
    let (amc, dir) = setup();
    let child = start_login(&amc.env, &amc.fake, &dir, &["--port", "0"]);
    let url = opened_url(&dir);
    assert!(url.starts_with(&amc.fake.authorize_url()), "{url}");
    for (k, v) in [
        ("response_type", "code"),
        ("code_challenge_method", "S256"),
        ("scope", "advertising%3A%3Acampaign_management"),
    ] {
        assert_eq!(query_param(&url, k).as_deref(), Some(v), "{k} in {url}");
    }
    let (status, location, _) = http_get(&url);
    assert_eq!(status, 302, "the fake allowed the login");
    let location = location.expect("a redirect");
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let (status, _, page) = http_get(&location);
    assert_eq!(status, 200);
    assert!(page.contains("go back to the terminal"), "{page}");
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");

    // The fake saw the state echoed and a verifier that matches the challenge.
    let auths = amc.fake.authorizations();
    assert_eq!(auths.len(), 1);
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(auths[0].state.as_str())
    );
    assert!(
        auths[0].state.len() >= 22,
        "a random state: {:?}",
        auths[0].state
    );
    let exchanges = amc.fake.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert!(exchanges[0].verifier_matches && exchanges[0].granted);
    // Neither the code nor any token appears on the terminal.
    let issued = auths[0].code.clone().unwrap();
    assert!(
        !stderr.contains(&issued),
        "the code is not printed: {stderr}"
    );
    assert!(
        !stderr.contains("Atza|") && !stderr.contains("Atzr|I"),
        "{stderr}"
    );

    // The stored refresh token works: a fresh access token comes from it.
    assert_eq!(credentials_rows(&amc.env), 1);
    amc.env.probe().forget_access_tokens();
    let grants = amc.fake.token_grants();
    let token = amc.env.run(&["auth", "token"]).ok();
    assert_eq!(
        amc.fake.token_grants(),
        grants + 1,
        "refreshed with the new grant"
    );
    let grant = amc
        .fake
        .grant_of(token.stdout.trim())
        .expect("a token of the fake");
    assert!(
        grant.starts_with("Atzr|IwEB"),
        "the refresh token from the code: {grant}"
    );
}

fn a_return_with_the_wrong_state_saves_nothing() {
    let (amc, dir) = setup();
    let child = start_login(&amc.env, &amc.fake, &dir, &["--port", "0"]);
    let (_, location, _) = http_get(&opened_url(&dir));
    let location = location.unwrap();
    let state = query_param(&location, "state").unwrap();
    let forged = location.replace(&format!("state={state}"), "state=forged0123456789");
    let (status, _, page) = http_get(&forged);
    assert_eq!(status, 200);
    assert!(page.contains("did not complete"), "{page}");
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 7, "{stderr}");
    assert!(stderr.contains("wrong state"), "{stderr}");
    assert!(amc.fake.exchanges().is_empty(), "the code was never traded");
    assert_eq!(credentials_rows(&amc.env), 0);
}

fn a_declined_login_saves_nothing() {
    let (amc, dir) = setup();
    amc.fake.set_authorize_outcome(AuthorizeOutcome::Deny);
    let child = start_login(&amc.env, &amc.fake, &dir, &["--port", "0"]);
    let (_, location, _) = http_get(&opened_url(&dir));
    let location = location.unwrap();
    assert!(location.contains("error=access_denied"), "{location}");
    http_get(&location);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 7, "{stderr}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert!(amc.fake.exchanges().is_empty());
    assert_eq!(credentials_rows(&amc.env), 0);
}

fn an_expired_code_is_refused_and_saves_nothing() {
    let (amc, dir) = setup();
    amc.fake.set_code_lifetime(Duration::ZERO);
    let child = start_login(&amc.env, &amc.fake, &dir, &["--port", "0"]);
    let (_, location, _) = http_get(&opened_url(&dir));
    http_get(&location.unwrap());
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 7, "{stderr}");
    assert!(stderr.contains("nothing was saved"), "{stderr}");
    let exchanges = amc.fake.exchanges();
    assert_eq!(exchanges.len(), 1, "one try, refused");
    assert!(!exchanges[0].granted);
    assert!(!stderr.contains(&exchanges[0].code) && !stdout.contains(&exchanges[0].code));
    assert_eq!(credentials_rows(&amc.env), 0);
}

fn no_answer_within_wait_saves_nothing() {
    let (amc, dir) = setup();
    let child = start_login(&amc.env, &amc.fake, &dir, &["--port", "0", "--wait", "1s"]);
    let _ = opened_url(&dir); // the browser opens; nobody logs in
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 7, "{stderr}");
    assert!(
        stderr.contains("no answer from the browser within 1s"),
        "{stderr}"
    );
    assert_eq!(credentials_rows(&amc.env), 0);
}

fn a_port_in_use_is_a_usage_error_naming_port() {
    let (amc, dir) = setup();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let child = start_login(&amc.env, &amc.fake, &dir, &["--port", &port]);
    let (code, _, stderr) = finish(child);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--port") && stderr.contains(&port),
        "{stderr}"
    );
    assert!(!dir.join("url.txt").exists(), "no browser was opened");
    assert_eq!(credentials_rows(&amc.env), 0);
}

#[test]
fn no_browser_reads_the_pasted_return_url_in_a_terminal() {
    use expectrl::Expect;
    let (amc, _dir) = setup();
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.args([
        "auth",
        "login",
        "--no-browser",
        "--client-id",
        CLIENT_ID,
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
    ])
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("AMCCTL_HOME", amc.env.home())
    .env("USER", "alice")
    .env("NO_COLOR", "1")
    .env("TERM", "dumb")
    .env("AMCCTL_API_URL", amc.fake.base_url())
    .env("AMCCTL_AUTH_URL", amc.fake.token_url())
    .env("AMCCTL_AUTHORIZE_URL", amc.fake.authorize_url())
    .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET);
    let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    let found = p
        .expect(expectrl::Regex(r"http://127\.0\.0\.1:\d+/ap/oa\?\S+"))
        .expect("the URL is printed");
    let url = String::from_utf8_lossy(found.get(0).unwrap()).into_owned();
    p.expect("Return URL or code").expect("asks for the paste");
    // The browser is elsewhere: the test follows the authorize page and
    // copies the address the redirect points at (port 9 never answers).
    let (_, location, _) = http_get(&url);
    let location = location.unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:9/callback?"),
        "{location}"
    );
    p.send(format!("{location}\r")).unwrap();
    let rest = p.expect(expectrl::Eof).expect("the program ends");
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    match p.get_process().wait().expect("wait") {
        expectrl::process::unix::WaitStatus::Exited(_, code) => assert_eq!(code, 0, "{text}"),
        other => panic!("amcctl did not exit normally: {other:?}\n{text}"),
    }
    let code = query_param(&location, "code").unwrap();
    assert!(
        !text.contains(&code),
        "the pasted code is not echoed: {text}"
    );
    let exchanges = amc.fake.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert!(exchanges[0].verifier_matches && exchanges[0].granted);
    assert_eq!(credentials_rows(&amc.env), 1);
}

crate::on_both_backends!(
    browser_login_stores_a_refresh_token_that_works,
    a_return_with_the_wrong_state_saves_nothing,
    a_declined_login_saves_nothing,
    an_expired_code_is_refused_and_saves_nothing,
    no_answer_within_wait_saves_nothing,
    a_port_in_use_is_a_usage_error_naming_port,
);
