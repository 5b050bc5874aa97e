//! The protocols behind the commands, as library functions: plain inputs
//! (the store, a session, paths, settings), an outcome struct and events,
//! no terminal. The command handlers in `cli` turn arguments into these
//! inputs and render the outcomes.

pub mod discover;
pub mod import;
pub mod login;
pub mod rotate;
pub mod weblogin;
