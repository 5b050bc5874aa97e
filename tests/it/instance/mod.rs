//! `instance`, `account`, `brand`, `user`: the registry, its access
//! control, bad and hostile input, and encrypted settings.

mod access_control;
mod bad_input;
mod first_run;
mod hostile;
mod human;
mod impersonation;
mod registry;
mod roles;
mod settings;
mod sharing;
