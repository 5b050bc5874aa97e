//! `key` and the secrets at rest: no secret in clear anywhere, and Fernet
//! compatibility.

mod db_password;
mod e2e;
mod fernet_vectors;
mod leaks;
mod per_user;
