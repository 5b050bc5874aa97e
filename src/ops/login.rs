//! `auth login`: credentials proved with one token refresh or won in the
//! browser, then stored encrypted. Nothing is stored before it is proved.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::runtime;
use super::weblogin::{Attempt, Callback, authorize_base, open_browser, wait_for_code};
use crate::amc::{CachedToken, Session};
use crate::domain::StoredCredentials;
use crate::domain::{Region, RowId};
use crate::env::Env;
use crate::error::{Error, Kind, Result};
use crate::secrets::Keyring;
use crate::store::Store;

/// A usable access token for `session`: with no token cache behind it,
/// one refresh, which is how `auth login` proves pasted credentials.
pub fn access_token(session: &Session) -> Result<CachedToken> {
    Ok(runtime()?.block_on(session.access_token())?)
}

/// How the browser login takes its code.
pub struct BrowserSettings {
    /// The return URL registered in the security profile.
    pub callback: Callback,
    /// How long to wait for the browser's return.
    pub wait: Duration,
    /// Show the URL and have the return pasted back instead of listening.
    pub no_browser: bool,
}

/// What the browser login has to tell the user.
#[derive(Debug)]
pub enum Event<'a> {
    /// Without a browser: the URL to visit, and the return URL whose address
    /// (or just its code) is to be pasted back.
    Visit {
        /// The authorize URL.
        url: &'a str,
        /// Where the browser goes afterwards.
        redirect_uri: &'a str,
    },
    /// The browser was opened at `url`; the login waits up to `wait`.
    Opened {
        /// The authorize URL.
        url: &'a str,
        /// How long the login waits.
        wait: Duration,
    },
    /// No browser could be opened: the user is to visit `url` themselves.
    CannotOpen {
        /// The authorize URL.
        url: &'a str,
        /// Why the browser did not open.
        why: String,
    },
}

/// The browser login (authorization code with PKCE): listens for the return
/// (unless `no_browser`, where `paste` gives what the user pasted back),
/// opens the authorize URL, takes the code and trades it for a refresh
/// token with `session` (whose refresh token is unused). `env` may name the
/// authorize URL and the browser. Nothing is stored.
pub fn browser(
    session: &Session,
    env: &Env,
    region: Region,
    settings: BrowserSettings,
    mut on_event: impl FnMut(Event<'_>),
    paste: impl FnOnce() -> Result<SecretString>,
) -> Result<(SecretString, CachedToken)> {
    let runtime = runtime()?;
    let base = authorize_base(env, region);
    let client_id = session.credentials().client_id.clone();
    let BrowserSettings {
        mut callback,
        wait,
        no_browser,
    } = settings;
    let (attempt, code) = if no_browser {
        let attempt = Attempt::new(callback.redirect_uri.clone())?;
        let url = attempt.authorize_url(&base, &client_id)?;
        on_event(Event::Visit {
            url: &url,
            redirect_uri: &attempt.redirect_uri,
        });
        let pasted = paste()?;
        let code = attempt.code_from_paste(pasted.expose_secret())?;
        (attempt, code)
    } else {
        runtime.block_on(async {
            let listener = callback.bind().await?;
            let attempt = Attempt::new(callback.redirect_uri.clone())?;
            let url = attempt.authorize_url(&base, &client_id)?;
            match open_browser(env, &url) {
                Ok(()) => on_event(Event::Opened { url: &url, wait }),
                Err(why) => on_event(Event::CannotOpen { url: &url, why }),
            }
            let code = wait_for_code(&listener, &callback.path, &attempt, wait).await?;
            Ok::<_, Error>((attempt, code))
        })?
    };
    let exchanged =
        runtime.block_on(session.exchange_code(&code, &attempt.verifier, &attempt.redirect_uri));
    exchanged.map_err(|e| {
        let e = Error::from(e);
        if e.kind == Kind::Auth {
            let message = format!("{}; nothing was saved", e.message);
            Error { message, ..e }.with_hint(
                "codes are good once and for a few minutes: run `amcctl auth login --web` again",
            )
        } else {
            e
        }
    })
}

/// Proved credentials, ready to be stored.
pub struct Proved {
    /// The profile they are stored under.
    pub profile: String,
    /// The LwA client ID.
    pub client_id: String,
    /// The LwA client secret.
    pub client_secret: SecretString,
    /// The refresh token.
    pub refresh_token: SecretString,
    /// The region of the token endpoint.
    pub region: Region,
    /// The access token the proof gave, cached with them.
    pub token: CachedToken,
}

/// Stores `owner`'s proved credentials encrypted with `keyring` (its
/// fingerprint recorded with them), replacing the profile's earlier ones;
/// returns what was stored.
pub fn save(
    store: &mut Store,
    keyring: &Keyring,
    owner: RowId,
    proved: Proved,
) -> Result<StoredCredentials> {
    let stored = StoredCredentials {
        profile: proved.profile,
        client_id: proved.client_id,
        client_secret_enc: keyring.encrypt(proved.client_secret.expose_secret()),
        refresh_token_enc: keyring.encrypt(proved.refresh_token.expose_secret()),
        region: proved.region,
        access_token_enc: Some(keyring.encrypt(proved.token.access_token.expose_secret())),
        access_token_expires: Some(proved.token.expires_at),
        updated_at: crate::domain::now(),
        key_fingerprint: Some(keyring.fingerprint().to_owned()),
    };
    store.save_credentials(owner, &stored)?;
    Ok(stored)
}
