//! The protocols behind the commands, as library functions: plain inputs
//! (the store, a session, paths, settings), an outcome struct and events,
//! no terminal. The command handlers in `cli` turn arguments into these
//! inputs and render the outcomes.

mod bulk;
pub mod check;
pub mod discover;
pub mod import;
pub mod login;
pub mod rotate;
pub mod sync;
pub mod weblogin;

use crate::error::{Error, Result};

/// A runtime for an operation that awaits one call at a time.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}
