//! Asking the user: a [`Prompter`] trait with a terminal implementation
//! (dialoguer) and a no-input one that turns every question into the SPEC
//! section 4 error naming the flag that would have answered it.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, FuzzySelect, Input, Password, Select};
use secrecy::SecretString;

use crate::error::{Error, Kind, Result};

/// A validator: `Ok` or the message shown before asking again.
pub type Validator<'a> = &'a dyn Fn(&str) -> std::result::Result<(), String>;

/// Something that can ask the user questions.
pub trait Prompter {
    /// Free text, re-asked until `validate` accepts it. `flag` names the flag
    /// that answers the question non-interactively.
    fn text(
        &mut self,
        label: &str,
        default: Option<&str>,
        validate: Validator,
        flag: &str,
    ) -> Result<String>;
    /// One of `items`, by index.
    fn select(
        &mut self,
        label: &str,
        items: &[String],
        default: usize,
        flag: &str,
    ) -> Result<usize>;
    /// One of `items`, typed to narrow down.
    fn fuzzy_select(&mut self, label: &str, items: &[String], flag: &str) -> Result<usize>;
    /// Yes or no.
    fn confirm(&mut self, label: &str, default: bool, flag: &str) -> Result<bool>;
    /// A secret, typed without echo.
    fn secret(&mut self, label: &str, flag: &str) -> Result<SecretString>;
}

/// Answers nothing: every question fails with exit 2 naming the flag.
pub struct NoInput;

impl Prompter for NoInput {
    fn text(&mut self, _: &str, _: Option<&str>, _: Validator, flag: &str) -> Result<String> {
        Err(Error::missing_flag(flag))
    }
    fn select(&mut self, _: &str, _: &[String], _: usize, flag: &str) -> Result<usize> {
        Err(Error::missing_flag(flag))
    }
    fn fuzzy_select(&mut self, _: &str, _: &[String], flag: &str) -> Result<usize> {
        Err(Error::missing_flag(flag))
    }
    fn confirm(&mut self, _: &str, _: bool, flag: &str) -> Result<bool> {
        Err(Error::missing_flag(flag))
    }
    fn secret(&mut self, _: &str, flag: &str) -> Result<SecretString> {
        Err(Error::missing_flag(flag))
    }
}

/// Asks on the terminal (stderr) with dialoguer.
pub struct Console {
    theme: ColorfulTheme,
}

impl Console {
    /// A console prompter.
    pub fn new() -> Self {
        Self {
            theme: ColorfulTheme::default(),
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

/// Ctrl-C or Esc in a prompt: nothing is saved, exit 130.
fn interrupted() -> Error {
    let _ = console::Term::stderr().show_cursor();
    Error::new(Kind::Interrupted, "interrupted; nothing was saved")
}

fn prompt_err(e: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        interrupted()
    } else {
        Error::internal(format!("cannot prompt: {io}"))
    }
}

impl Prompter for Console {
    fn text(
        &mut self,
        label: &str,
        default: Option<&str>,
        validate: Validator,
        _: &str,
    ) -> Result<String> {
        let mut input = Input::<String>::with_theme(&self.theme)
            .with_prompt(label)
            .allow_empty(true)
            .validate_with(|v: &String| validate(v));
        if let Some(d) = default {
            input = input.default(d.to_owned());
        }
        input.interact_text().map_err(prompt_err)
    }

    fn select(&mut self, label: &str, items: &[String], default: usize, _: &str) -> Result<usize> {
        Select::with_theme(&self.theme)
            .with_prompt(label)
            .items(items)
            .default(default)
            .interact_opt()
            .map_err(prompt_err)?
            .ok_or_else(interrupted)
    }

    fn fuzzy_select(&mut self, label: &str, items: &[String], _: &str) -> Result<usize> {
        FuzzySelect::with_theme(&self.theme)
            .with_prompt(label)
            .items(items)
            .default(0)
            .max_length(15)
            .interact_opt()
            .map_err(prompt_err)?
            .ok_or_else(interrupted)
    }

    fn confirm(&mut self, label: &str, default: bool, _: &str) -> Result<bool> {
        Confirm::with_theme(&self.theme)
            .with_prompt(label)
            .default(default)
            .interact_opt()
            .map_err(prompt_err)?
            .ok_or_else(interrupted)
    }

    fn secret(&mut self, label: &str, _: &str) -> Result<SecretString> {
        Password::with_theme(&self.theme)
            .with_prompt(label)
            .interact()
            .map(SecretString::from)
            .map_err(prompt_err)
    }
}

/// A prompter that replays scripted answers, for tests of command logic.
#[derive(Debug, Default)]
pub struct Scripted {
    /// Answers, consumed front to back: text as given, selections as the index in decimal,
    /// confirmations as "y"/"n".
    pub answers: std::collections::VecDeque<String>,
    /// Every label asked, in order.
    pub asked: Vec<String>,
}

impl Scripted {
    fn next(&mut self, label: &str, flag: &str) -> Result<String> {
        self.asked.push(label.to_owned());
        self.answers
            .pop_front()
            .ok_or_else(|| Error::missing_flag(flag))
    }
}

impl Prompter for Scripted {
    fn text(
        &mut self,
        label: &str,
        default: Option<&str>,
        validate: Validator,
        flag: &str,
    ) -> Result<String> {
        loop {
            let mut a = self.next(label, flag)?;
            if a.is_empty() {
                a = default.unwrap_or_default().to_owned();
            }
            if validate(&a).is_ok() {
                return Ok(a);
            }
        }
    }
    fn select(&mut self, label: &str, items: &[String], _: usize, flag: &str) -> Result<usize> {
        let a = self.next(label, flag)?;
        a.parse()
            .ok()
            .filter(|i| *i < items.len())
            .ok_or_else(|| Error::usage("bad scripted choice"))
    }
    fn fuzzy_select(&mut self, label: &str, items: &[String], flag: &str) -> Result<usize> {
        self.select(label, items, 0, flag)
    }
    fn confirm(&mut self, label: &str, _: bool, flag: &str) -> Result<bool> {
        Ok(self.next(label, flag)? == "y")
    }
    fn secret(&mut self, label: &str, flag: &str) -> Result<SecretString> {
        self.next(label, flag).map(SecretString::from)
    }
}
