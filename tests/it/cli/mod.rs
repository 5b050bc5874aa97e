//! The command line as a shell and a terminal meet it: completions,
//! config, `db`, `man`, prompts, and hardening against hostile peers.

mod completions;
mod hardening;
mod help;
mod in_process;
mod prompts_pty;
mod terminal;
