//! `auth`: logins (secret and browser), profiles, tokens, and the AMC
//! calls the credentials make.

mod e2e;
mod profiles;
mod web_login;
