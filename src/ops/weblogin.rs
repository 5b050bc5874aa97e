//! `auth login --web`: Login with Amazon's authorization-code grant in the
//! browser, with a loopback listener for the return, a random `state` and a
//! PKCE (S256) challenge.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
#[cfg(test)]
use secrecy::ExposeSecret;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::domain::Region;
use crate::env::Env;
use crate::error::{Error, Kind, Result};

/// The scope amcctl asks for: what the Amazon Ads API needs.
pub const SCOPE: &str = "advertising::campaign_management";
/// The port of the return URL when neither `--port` nor `--redirect-uri` is given.
pub const DEFAULT_PORT: u16 = 8484;
/// The path of the return URL on the loopback listener.
pub const CALLBACK_PATH: &str = "/callback";
/// Longest request head the listener reads from a browser.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_PATIENCE: Duration = Duration::from_secs(10);

/// The region's authorize page, unless `AMCCTL_AUTHORIZE_URL` overrides it.
pub fn authorize_base(env: &Env, region: Region) -> String {
    if let Some(url) = env.non_blank(crate::env::AUTHORIZE_URL) {
        return url.to_owned();
    }
    match region {
        Region::Na => "https://www.amazon.com/ap/oa",
        Region::Eu => "https://eu.account.amazon.com/ap/oa",
        Region::Fe => "https://apac.account.amazon.com/ap/oa",
    }
    .to_owned()
}

/// `n` random bytes from the operating system, url-safe base64 without padding.
fn random_text(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::internal(format!("no randomness from the system: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What one browser login needs to remember: the return URL, the state it
/// must see again and the PKCE verifier the code is traded with.
pub struct Attempt {
    /// The exact return URL (sent twice: in the authorize URL and with the code).
    pub redirect_uri: String,
    /// The random `state`, checked on return.
    pub state: String,
    /// The PKCE verifier (43 characters, 256 random bits).
    pub verifier: SecretString,
    /// Its S256 challenge.
    pub challenge: String,
}

impl Attempt {
    /// A fresh state and PKCE pair for `redirect_uri`.
    pub fn new(redirect_uri: String) -> Result<Attempt> {
        let verifier = random_text(32)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(Attempt {
            redirect_uri,
            state: random_text(24)?,
            verifier: SecretString::from(verifier),
            challenge,
        })
    }

    /// The authorize URL to open in the browser.
    pub fn authorize_url(&self, base: &str, client_id: &str) -> Result<String> {
        let url = Url::parse_with_params(
            base,
            [
                ("client_id", client_id),
                ("scope", SCOPE),
                ("response_type", "code"),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("state", self.state.as_str()),
                ("code_challenge", self.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .map_err(|e| {
            Error::usage(format!(
                "invalid authorize URL {base:?} (AMCCTL_AUTHORIZE_URL): {e}"
            ))
        })?;
        Ok(url.into())
    }

    /// The code from a return query (the browser's redirect, or a pasted
    /// URL): the state must be ours, an `error` ends the login.
    fn code_from(&self, url: &Url) -> Result<SecretString> {
        let get = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if get("state").as_deref() != Some(self.state.as_str()) {
            return Err(Error::new(
                Kind::Auth,
                "the login's return carries the wrong state: it is not the answer to this login; nothing was saved",
            )
            .with_hint("run `amcctl auth login --web` again, and use only the browser tab it opens"));
        }
        if let Some(error) = get("error") {
            let said = get("error_description")
                .map(|d| format!(": {}", crate::domain::printable(&shorten(&d))))
                .unwrap_or_default();
            let error = crate::domain::printable(&shorten(&error)).into_owned();
            let hint = if error == "access_denied" {
                "the login was declined in the browser; run it again and allow access"
            } else {
                "check the client ID and that the return URL is allowed in the security profile"
            };
            return Err(Error::new(
                Kind::Auth,
                format!("Login with Amazon refused the login ({error}{said}); nothing was saved"),
            )
            .with_hint(hint));
        }
        match get("code").filter(|c| !c.trim().is_empty()) {
            Some(code) => Ok(SecretString::from(code)),
            None => Err(Error::new(
                Kind::Auth,
                "the login's return has no code; nothing was saved",
            )),
        }
    }

    /// What was pasted back with `--no-browser`: the whole return URL
    /// (checked as the listener would), or the bare code.
    pub fn code_from_paste(&self, pasted: &str) -> Result<SecretString> {
        let pasted = pasted.trim();
        if pasted.is_empty() {
            return Err(Error::usage(
                "nothing was pasted: expected the return URL or the code",
            ));
        }
        if pasted.contains("://") || pasted.contains('?') {
            let url = Url::parse(pasted)
                .or_else(|_| {
                    Url::parse(&format!(
                        "http://127.0.0.1/{}",
                        pasted.trim_start_matches('/')
                    ))
                })
                .map_err(|_| Error::usage("the pasted text is neither a URL nor a code"))?;
            return self.code_from(&url);
        }
        if pasted.len() > 2048 || pasted.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::usage("the pasted text is neither a URL nor a code"));
        }
        Ok(SecretString::from(pasted.to_owned()))
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Where the listener binds and the return URL it answers.
#[derive(Debug)]
pub struct Callback {
    /// The exact return URL.
    pub redirect_uri: String,
    /// The path the browser comes back to.
    pub path: String,
    /// The port to listen on (0: any free one, filled in after binding).
    pub port: u16,
}

impl Callback {
    /// From `--redirect-uri` (an exact `http://127.0.0.1:PORT/PATH` or
    /// `http://localhost:PORT/PATH`) or `--port`.
    pub fn from_flags(port: Option<u16>, redirect_uri: Option<&str>) -> Result<Callback> {
        let Some(uri) = redirect_uri else {
            let port = port.unwrap_or(DEFAULT_PORT);
            return Ok(Callback {
                redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
                path: CALLBACK_PATH.to_owned(),
                port,
            });
        };
        let bad = |why: &str| {
            Error::usage(format!(
                "invalid --redirect-uri {:?}: {why}",
                crate::domain::printable(uri)
            ))
        };
        let url = Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(
                "must start with http:// (the listener is on this machine)",
            ));
        }
        if !matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
            return Err(bad("the host must be 127.0.0.1 or localhost"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let port = url.port().unwrap_or(80);
        Ok(Callback {
            redirect_uri: uri.to_owned(),
            path: url.path().to_owned(),
            port,
        })
    }

    /// Binds 127.0.0.1 on the port; a port in use is exit 2 naming `--port`.
    pub async fn bind(&mut self) -> Result<tokio::net::TcpListener> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                    "is in use".to_owned()
                } else {
                    e.to_string()
                };
                Error::usage(format!(
                    "cannot listen on 127.0.0.1:{} for the login's return: the port {why}",
                    self.port
                ))
                .with_hint("pick another with --port (or --redirect-uri), one the security profile allows as a return URL")
            })?;
        if self.port == 0 {
            let port = listener
                .local_addr()
                .map_err(|e| Error::internal(format!("no local address: {e}")))?
                .port();
            self.port = port;
            self.redirect_uri = format!("http://127.0.0.1:{port}{}", self.path);
        }
        Ok(listener)
    }
}

const PAGE_OK: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>amcctl</title></head>\
<body><h1>amcctl: signed in</h1><p>You can close this tab and go back to the terminal.</p></body></html>";
const PAGE_FAILED: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>amcctl</title></head>\
<body><h1>amcctl: the login did not complete</h1><p>Go back to the terminal to see why.</p></body></html>";

/// Waits on `listener` for the browser's return to `attempt`, at most
/// `wait`; other paths (a favicon) get 404 and the wait goes on. The page
/// shown tells the user to go back to the terminal.
pub async fn wait_for_code(
    listener: &tokio::net::TcpListener,
    path: &str,
    attempt: &Attempt,
    wait: Duration,
) -> Result<SecretString> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let mut stream = match accepted {
            Err(_) => {
                return Err(Error::new(
                    Kind::Auth,
                    format!(
                        "no answer from the browser within {}; nothing was saved",
                        humantime::format_duration(wait)
                    ),
                )
                .with_hint(
                    "run it again (--wait gives more time), or use --no-browser to paste the code",
                ));
            }
            Ok(Err(_)) => continue,
            Ok(Ok((stream, _))) => stream,
        };
        let Ok(Some(target)) = tokio::time::timeout(READ_PATIENCE, read_target(&mut stream))
            .await
            .unwrap_or(Ok(None))
        else {
            continue;
        };
        let url = Url::parse(&format!("http://127.0.0.1{target}")).ok();
        let Some(url) = url.filter(|u| u.path() == path) else {
            respond(&mut stream, "404 Not Found", "not found").await;
            continue;
        };
        let outcome = attempt.code_from(&url);
        let page = if outcome.is_ok() {
            PAGE_OK
        } else {
            PAGE_FAILED
        };
        respond(&mut stream, "200 OK", page).await;
        return outcome;
    }
}

/// The request target of a `GET` (`/callback?code=…`), if the connection
/// sent one.
async fn read_target(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or_default().split(' ');
    match (words.next(), words.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Ok(Some(target.to_owned())),
        _ => Ok(None),
    }
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, body: &str) {
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Opens `url` in the browser: the `BROWSER` command when set (the URL as
/// its argument, or in place of `%s`), else the platform's opener.
pub fn open_browser(env: &Env, url: &str) -> std::result::Result<(), String> {
    if let Some(browser) = env.non_blank(crate::env::BROWSER) {
        // BROWSER may list several commands separated by ':'; the first is used.
        let command = browser.split(':').next().unwrap_or_default().trim();
        let mut words = command.split_whitespace();
        let Some(program) = words.next() else {
            return Err("BROWSER is empty".into());
        };
        let mut args: Vec<String> = words.map(str::to_owned).collect();
        if args.iter().any(|a| a.contains("%s")) {
            for a in &mut args {
                *a = a.replace("%s", url);
            }
        } else {
            args.push(url.to_owned());
        }
        return std::process::Command::new(program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| format!("cannot run BROWSER ({program}): {e}"));
    }
    open::that_detached(url).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge_of(verifier: &SecretString) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()))
    }

    #[test]
    fn the_challenge_is_the_s256_of_the_verifier() {
        let a = Attempt::new("http://127.0.0.1:1/callback".into()).unwrap();
        assert_eq!(a.verifier.expose_secret().len(), 43);
        assert_eq!(a.challenge, challenge_of(&a.verifier));
        // RFC 7636 appendix B.
        let v = SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            challenge_of(&v),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(a.state, Attempt::new(a.redirect_uri.clone()).unwrap().state);
    }

    #[test]
    fn a_return_with_another_state_or_an_error_gives_no_code() {
        let a = Attempt::new("http://127.0.0.1:1/callback".into()).unwrap();
        let ok = format!("http://127.0.0.1:1/callback?code=ANabc&state={}", a.state);
        assert_eq!(a.code_from_paste(&ok).unwrap().expose_secret(), "ANabc");
        assert_eq!(
            a.code_from_paste(" ANxyz \n").unwrap().expose_secret(),
            "ANxyz"
        );
        let wrong = "http://127.0.0.1:1/callback?code=ANabc&state=other";
        assert_eq!(a.code_from_paste(wrong).unwrap_err().kind, Kind::Auth);
        let denied = format!("/callback?error=access_denied&state={}", a.state);
        let e = a.code_from_paste(&denied).unwrap_err();
        assert!(e.message.contains("access_denied"), "{}", e.message);
        assert_eq!(a.code_from_paste("").unwrap_err().kind, Kind::Usage);
    }

    #[test]
    fn redirect_uris_must_be_loopback_http() {
        let c = Callback::from_flags(None, Some("http://localhost:9000/amc/back")).unwrap();
        assert_eq!((c.port, c.path.as_str()), (9000, "/amc/back"));
        for bad in [
            "https://127.0.0.1:9000/x",
            "http://example.com:9000/x",
            "http://127.0.0.1:9000/x?y=1",
            "not a url",
        ] {
            assert_eq!(
                Callback::from_flags(None, Some(bad)).unwrap_err().kind,
                Kind::Usage,
                "{bad}"
            );
        }
        let d = Callback::from_flags(None, None).unwrap();
        assert_eq!(
            d.redirect_uri,
            format!("http://127.0.0.1:{DEFAULT_PORT}/callback")
        );
    }
}
