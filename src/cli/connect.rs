//! Connecting to AMC for the acting user: the run's client from flags over
//! config over defaults, the profile a user's commands use, and one session
//! per user's profile, with credentials from the store (opened with the
//! key, whose loading lives here too) or the environment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::Ctx;
use crate::amc::{AmcClient, CachedToken, ClientConfig, Credentials, Session, TokenCache};
use crate::config::{check_concurrency, check_rate, parse_duration};
use crate::domain::{Instance, User, fmt_time, validate_profile};
use crate::domain::{Region, RowId};
use crate::env::{self, Env};
use crate::error::{Error, Kind, Result};
use crate::secrets::{KEY_LOCK_PATIENCE, KeyLock, Keyring, SecretsError};
use crate::store::Store;

/// Retries of a failed request when `--retries` is not given.
pub const DEFAULT_RETRIES: u32 = 4;

/// Flags that tune how amcctl talks to AMC.
#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// Requests per second to AMC, for the whole run [default: config `rate`, else 10]
    #[arg(long, value_name = "R", value_parser = |s: &str| s.parse::<f64>().map_err(|e| e.to_string()).and_then(check_rate))]
    pub rate: Option<f64>,
    /// Per-request timeout, like 30s [default: config `timeout`, else 30s]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Retries of throttled, failed or timed-out requests
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: u32,
}

/// What commands without network flags (`instance create`, `instance
/// activate`) use: the same policy as the flags' defaults. A derived
/// `Default` would mean zero retries, so one 503 would fail a validation.
impl Default for NetArgs {
    fn default() -> Self {
        NetArgs {
            rate: None,
            timeout: None,
            retries: DEFAULT_RETRIES,
        }
    }
}

impl Ctx {
    /// The Fernet key, from `AMCCTL_KEY` or the key file; `create` makes the
    /// key file when there is none (with a one-time notice to back it up).
    /// A key from the file comes with the shared key lock, held while the
    /// returned keyring lives, so no rotation replaces the key meanwhile.
    pub fn keyring(&mut self, create: bool) -> Result<Arc<Keyring>> {
        if let Some(key) = self.env.non_blank(env::KEY) {
            return Ok(Arc::new(Keyring::load(Some(key), &self.paths.key)?));
        }
        let path = self.paths.key.clone();
        let staged = Keyring::new_key_path(&path);
        // No key and no lock file: no amcctl ever used a key here (a
        // rotation creates the lock file before it moves a key), so there
        // is nothing to wait for, and no lock file is left behind.
        if !create && !path.exists() && !staged.exists() && !KeyLock::path(&path).exists() {
            return Err(SecretsError::Missing { path }.into());
        }
        crate::ops::rotate::settle_interrupted(&path, || {
            // The acting user's: a rotation re-encrypts only theirs.
            let user = self.user()?;
            Ok(self.store()?.key_samples(user.id, None)?)
        })?;
        let lock = KeyLock::shared(&path, KEY_LOCK_PATIENCE)?;
        let key = if create {
            let (keyring, origin) = Keyring::load_or_create(None, &path)?;
            if origin == crate::secrets::KeyOrigin::Created {
                self.out.warn(format!(
                    "created a new encryption key at {}; back it up: without it the stored credentials and instance settings cannot be read",
                    self.paths.key.display()
                ));
            }
            keyring
        } else {
            Keyring::load(None, &path)?
        };
        Ok(Arc::new(key.with_lock(lock)))
    }

    /// The key to store `user`'s new credentials under `profile` with.
    /// While the user holds no other secret in the store, that is
    /// [`Ctx::keyring`] with the key file made if need be; once they do, it
    /// must be the key of those (exit 8 otherwise), or the user's secrets
    /// would be under two keys and could no longer all be read or rotated.
    /// Other users' secrets do not matter: each user has a key of their own.
    pub fn keyring_to_store(&mut self, user: RowId, profile: &str) -> Result<Arc<Keyring>> {
        if self.store()?.key_samples(user, Some(profile))?.is_empty() {
            return self.keyring(true);
        }
        let hint = "your other credentials or instance settings in this store are encrypted with your key: set AMCCTL_KEY to it or restore the key file (`amcctl key path`)";
        let keyring = self.keyring(false).map_err(|e| e.with_hint(hint))?;
        // The samples are read again under the key lock: a read before it
        // may be from before a rotation that has replaced the key since.
        let samples = self.store()?.key_samples(user, Some(profile))?;
        check_own_key(&keyring, &samples, hint)?;
        Ok(keyring)
    }

    /// The client of this run, with flags over config over defaults.
    pub fn amc_client(&self, net: &NetArgs) -> Result<AmcClient> {
        self.amc_client_bounded(net, None)
    }

    /// [`Ctx::amc_client`] with at most `in_flight` requests at once
    /// (`None`: no bound beyond the rate).
    pub fn amc_client_bounded(&self, net: &NetArgs, in_flight: Option<usize>) -> Result<AmcClient> {
        let config_timeout = self
            .config
            .timeout
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(Error::usage)?;
        let (timeout, timeout_from) = layered(net.timeout, config_timeout, Duration::from_secs(30));
        let (rate, rate_from) = layered(net.rate, self.config.rate, 10.0);
        // Which layer each setting came from is the first question when a
        // run behaves unexpectedly; -v answers it.
        tracing::debug!(
            "AMC client: rate {rate}/s ({rate_from}), timeout {} ({timeout_from}), retries {}",
            humantime::format_duration(timeout),
            net.retries
        );
        let config = ClientConfig {
            api_url: self.env.non_empty(env::API_URL).map(str::to_owned),
            auth_url: self.env.non_empty(env::AUTH_URL).map(str::to_owned),
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            retries: net.retries,
            rate,
            extra_roots: self.ca_bundle()?,
            max_in_flight: in_flight,
            ..ClientConfig::default()
        };
        Ok(AmcClient::new(config)?)
    }

    /// The certificates of `--ca-bundle` / `AMCCTL_CA_BUNDLE` / config
    /// `ca_bundle`, trusted besides the bundled and the system's roots. A
    /// file that cannot be read or holds no certificate is exit 2.
    fn ca_bundle(&self) -> Result<Vec<reqwest::Certificate>> {
        let Some(path) = self.ca_bundle.clone() else {
            return Ok(Vec::new());
        };
        let shown = path.display();
        let pem = std::fs::read(&path)
            .map_err(|e| Error::usage(format!("cannot read the CA bundle {shown}: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| Error::usage(format!("the CA bundle {shown} is not valid PEM")))?;
        if certs.is_empty() {
            return Err(Error::usage(format!(
                "the CA bundle {shown} holds no PEM certificate"
            )));
        }
        tracing::debug!("trusting {} certificate(s) from {shown}", certs.len());
        Ok(certs)
    }

    /// Health-check concurrency: flag over config over 16.
    pub fn concurrency(&self, flag: Option<usize>) -> Result<usize> {
        let (c, from) = layered(flag, self.config.concurrency, 16);
        tracing::debug!("health-check concurrency {c} ({from})");
        check_concurrency(c).map_err(Error::usage)
    }

    /// The profile `user`'s commands use where no account names one:
    /// `--profile`/`AMCCTL_PROFILE` for the acting user, else the profile
    /// the user made their default (`auth switch`), else `default`.
    pub fn profile_of(&mut self, user: &User) -> Result<String> {
        let acting = self.user()?;
        if user.id == acting.id
            && let Some(p) = self.profile_flag.clone()
        {
            return Ok(validate_profile(&p)?.to_owned());
        }
        Ok(self.store()?.default_profile(user.id)?)
    }

    /// The profile that serves `instance`: its account's, else the default
    /// of the user whose login serves it (see [`Ctx::login_for`]).
    pub fn instance_profile(&mut self, instance: &Instance) -> Result<String> {
        if let Some(p) = &instance.account.profile {
            return Ok(p.clone());
        }
        let login = self.login_for(instance)?;
        self.profile_of(&login)
    }

    /// The profile `--profile` names on the command line (not from
    /// `AMCCTL_PROFILE`, so an exported profile never rebinds an account by
    /// accident), checked to be one of the acting user's: exit 3 listing
    /// them when it is not.
    pub fn profile_to_bind(&mut self) -> Result<Option<String>> {
        let Some(p) = self.profile_flag.clone() else {
            return Ok(None);
        };
        if self.env.get(env::PROFILE) == Some(p.as_str()) {
            return Ok(None);
        }
        validate_profile(&p)?;
        let user = self.user()?;
        let profiles = self.store()?.profiles(user.id)?;
        if profiles.iter().any(|c| c.profile == p) {
            return Ok(Some(p));
        }
        let names: Vec<&str> = profiles.iter().map(|c| c.profile.as_str()).collect();
        let listed = if names.is_empty() {
            "none: log in first".to_owned()
        } else {
            names.join(", ")
        };
        Err(Error::not_found(format!(
            "user {} has no profile {p:?}; profiles: {listed}",
            user.name
        ))
        .with_hint(format!(
            "log in to it with `amcctl auth login --profile {p}`"
        )))
    }

    /// The user whose login serves `instance`: the acting user for their
    /// own instances and those shared with them, and in the team store for
    /// every instance (no one reads another user's credentials there); only
    /// another user's instance in a SQLite store's `--all-users` run is
    /// served by its owner's login.
    pub fn login_for(&mut self, instance: &Instance) -> Result<User> {
        let acting = self.user()?;
        if instance.user_id == acting.id
            || self.in_team_store
            || self.shared_with_me()?.contains_key(&instance.id)
        {
            return Ok(acting);
        }
        self.store()?
            .user(&instance.owner)?
            .ok_or_else(|| Error::not_found(format!("no user {}", instance.owner)))
    }

    /// A session for `user`'s `profile`: credentials from `AMCCTL_CLIENT_ID`/
    /// `_SECRET`/`_REFRESH_TOKEN` when `env_allowed` and all three are set,
    /// else the profile's stored login (exit 7 if the user has none at all,
    /// exit 3 listing the profiles if not this one). The access token is
    /// cached encrypted in the store, shared across processes.
    pub fn session(
        &mut self,
        client: &AmcClient,
        user: &User,
        profile: &str,
        env_allowed: bool,
    ) -> Result<Session> {
        let keyring = self.keyring(false);
        let stored = self.store()?.credentials(user.id, profile)?;
        let from_env = if env_allowed {
            env_credentials(&self.env, self.config.region)
        } else {
            None
        };
        let (credentials, cacheable) = match (from_env, stored) {
            (Some(c), stored) => {
                // The stored login's token cache serves the same client, and
                // only under the key of the stored secrets (never mix keys).
                let same_client = stored.as_ref().is_some_and(|s| {
                    s.client_id == c.client_id
                        && keyring.as_ref().is_ok_and(|k| {
                            k.check_recorded(s.key_fingerprint.as_deref(), &s.secret_of())
                                .is_ok()
                                && k.can_decrypt(&s.client_secret_enc)
                        })
                });
                (c, same_client)
            }
            (None, Some(s)) => {
                let keyring = match keyring {
                    Ok(ref k) => Arc::clone(k),
                    Err(e) => return Err(e),
                };
                // A login recorded under another key (another user's, or
                // this user's from another host) is named as such, not
                // tried.
                keyring.check_recorded(s.key_fingerprint.as_deref(), &s.secret_of())?;
                (
                    Credentials {
                        client_id: s.client_id,
                        client_secret: keyring.decrypt(&s.client_secret_enc)?,
                        refresh_token: keyring.decrypt(&s.refresh_token_enc)?,
                        region: s.region,
                    },
                    true,
                )
            }
            (None, None) => return Err(self.no_profile(user, profile)?),
        };
        let cache: Arc<dyn TokenCache> = match (cacheable, keyring) {
            (true, Ok(keyring)) => Arc::new(StoreTokenCache {
                store: Mutex::new(Store::open(&self.paths.db)?),
                user: user.id,
                profile: profile.to_owned(),
                keyring,
            }),
            _ => Arc::new(crate::amc::NoTokenCache),
        };
        Ok(client.session(credentials, cache))
    }

    /// The error for `user` having no login under `profile`: exit 7 when
    /// they have none at all, else exit 3 listing the profiles they have.
    pub fn no_profile(&mut self, user: &User, profile: &str) -> Result<Error> {
        let profiles = self.store()?.profiles(user.id)?;
        if profiles.is_empty() {
            return Ok(Error::new(Kind::Auth, format!("user {} has no AMC credentials", user.name))
                .with_hint("run `amcctl auth login`, or set AMCCTL_CLIENT_ID, AMCCTL_CLIENT_SECRET and AMCCTL_REFRESH_TOKEN"));
        }
        let names: Vec<&str> = profiles.iter().map(|p| p.profile.as_str()).collect();
        Ok(Error::not_found(format!(
            "user {} has no profile {profile:?}; profiles: {}",
            user.name,
            names.join(", ")
        ))
        .with_hint(format!(
            "log in to it with `amcctl auth login --profile {profile}`, or pick one of those"
        )))
    }
}

/// Checks that `keyring` is the key of a user's stored secrets, given one
/// of them per key they are recorded under ([`Store::key_samples`]): one
/// recorded under another key is exit 8 naming both keys; one stored
/// before fingerprints must decrypt (exit 8 with `hint` otherwise).
pub fn check_own_key(
    keyring: &Keyring,
    samples: &[crate::domain::SealedSecret],
    hint: &str,
) -> Result<()> {
    for s in samples {
        keyring.check_recorded(s.key_fingerprint.as_deref(), &s.of)?;
    }
    if let Some(s) = samples.iter().find(|s| s.key_fingerprint.is_none()) {
        keyring
            .decrypt(&s.token)
            .map_err(|e| Error::from(e).with_hint(hint))?;
    }
    Ok(())
}

/// A setting from its flag, else the config file, else the default, with
/// the name of the layer it came from.
fn layered<T>(flag: Option<T>, config: Option<T>, default: T) -> (T, &'static str) {
    match (flag, config) {
        (Some(v), _) => (v, "flag"),
        (None, Some(v)) => (v, "config"),
        (None, None) => (default, "default"),
    }
}

/// Credentials from the environment, when all three variables are set.
pub fn env_credentials(vars: &Env, region: Option<Region>) -> Option<Credentials> {
    let get = |k: &str| vars.non_empty(k).map(str::to_owned);
    Some(Credentials {
        client_id: get(env::CLIENT_ID)?,
        client_secret: SecretString::from(get(env::CLIENT_SECRET)?),
        refresh_token: SecretString::from(get(env::REFRESH_TOKEN)?),
        region: region.unwrap_or(Region::Na),
    })
}

/// The access-token cache of one user's profile, encrypted in the store.
struct StoreTokenCache {
    store: Mutex<Store>,
    user: RowId,
    profile: String,
    keyring: Arc<Keyring>,
}

impl TokenCache for StoreTokenCache {
    fn load(&self) -> Option<CachedToken> {
        let store = self.store.lock().ok()?;
        let c = store.credentials(self.user, &self.profile).ok()??;
        // A login replaced meanwhile under another key: no cached token.
        self.keyring
            .check_recorded(c.key_fingerprint.as_deref(), &c.secret_of())
            .ok()?;
        let token = self.keyring.decrypt(c.access_token_enc.as_deref()?).ok()?;
        Some(CachedToken {
            access_token: token,
            expires_at: c.access_token_expires?,
        })
    }

    fn save(&self, token: &CachedToken) {
        let Ok(mut store) = self.store.lock() else {
            return;
        };
        let enc = self.keyring.encrypt(token.access_token.expose_secret());
        if let Err(e) = store.save_access_token(
            self.user,
            &self.profile,
            &enc,
            &fmt_time(&token.expires_at),
            self.keyring.fingerprint(),
        ) {
            tracing::warn!(
                "could not cache the access token: {}",
                Error::from(e).message
            );
        }
    }
}
