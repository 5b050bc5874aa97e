//! Asking the user: a [`Prompter`] trait with a terminal implementation
//! (dialoguer) and a no-input one that turns every question into the usage
//! error naming the flag that would have answered it.

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, FuzzySelect, Input, Select};
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

/// Ctrl-C or Esc in a prompt: nothing is saved, exit 130. The prompt may
/// have hidden the cursor and left it mid-line; give both back.
fn interrupted() -> Error {
    let term = console::Term::stderr();
    let _ = term.show_cursor();
    let _ = term.write_line("");
    Error::new(Kind::Interrupted, "interrupted; nothing was saved")
}

/// While alive, Ctrl-C in a prompt comes back as an error (exit 130, cursor
/// restored) instead of killing the process, whenever it is pressed.
///
/// Why: dialoguer reads keys through `console`, which puts the terminal in
/// raw mode for each key and back in between. In raw mode Ctrl-C is the byte
/// 0x03, and `console` answers it by raising SIGINT against its own process
/// before returning an `Interrupted` error; under the default disposition
/// that kills us with the cursor still hidden. So SIGINT is ignored while a
/// prompt runs, and the error reaches [`prompt_err`]. Between keys the
/// terminal is cooked, where the line discipline would turn Ctrl-C into a
/// signal (now ignored, so the key would be lost): the terminal's ISIG is
/// therefore off for the whole prompt, making Ctrl-C always a byte the next
/// key read sees. ECHO is off too, so keys typed ahead of a redraw are not
/// echoed twice. Everything is restored on drop, so Ctrl-C outside prompts
/// behaves as usual and `health check`'s own handler is untouched.
struct PromptGuard {
    sigint: Option<libc::sighandler_t>,
    termios: Option<libc::termios>,
}

impl PromptGuard {
    fn new() -> Self {
        // SAFETY: `signal` with SIG_IGN installs no handler code of ours; it
        // only changes the disposition, which is process-wide and restored in
        // `drop`. Prompts run on the main thread, one at a time.
        let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
        let sigint = (previous != libc::SIG_ERR).then_some(previous);
        // SAFETY: a zeroed termios is a valid value for tcgetattr to fill.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid out pointer; failure (not a terminal) is handled.
        let termios =
            (unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut original) } == 0).then(|| {
                let mut quiet = original;
                quiet.c_lflag &= !(libc::ISIG | libc::ECHO);
                // SAFETY: fd 0 is a terminal (tcgetattr succeeded).
                unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) };
                original
            });
        Self { sigint, termios }
    }
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        if let Some(original) = &self.termios {
            // SAFETY: puts back the settings read in `new`, on the same fd.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, original);
            }
        }
        if let Some(previous) = self.sigint {
            // SAFETY: restores the disposition saved in `new`.
            unsafe {
                libc::signal(libc::SIGINT, previous);
            }
        }
    }
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
        let _guard = PromptGuard::new();
        let mut input = Input::<String>::with_theme(&self.theme)
            .with_prompt(label)
            .allow_empty(true)
            .validate_with(|v: &String| validate(v));
        // An empty default would show as an empty `()`: an optional answer
        // is just Enter, which `allow_empty` already accepts.
        if let Some(d) = default.filter(|d| !d.is_empty()) {
            input = input.default(d.to_owned());
        }
        input.interact_text().map_err(prompt_err)
    }

    fn select(&mut self, label: &str, items: &[String], default: usize, _: &str) -> Result<usize> {
        let _guard = PromptGuard::new();
        Select::with_theme(&self.theme)
            .with_prompt(label)
            .items(&shown(items))
            .default(default)
            .interact_opt()
            .map_err(prompt_err)?
            .ok_or_else(interrupted)
    }

    fn fuzzy_select(&mut self, label: &str, items: &[String], _: &str) -> Result<usize> {
        let _guard = PromptGuard::new();
        FuzzySelect::with_theme(&self.theme)
            .with_prompt(label)
            .items(&shown(items))
            .default(0)
            .max_length(15)
            .interact_opt()
            .map_err(prompt_err)?
            .ok_or_else(interrupted)
    }

    fn confirm(&mut self, label: &str, default: bool, _: &str) -> Result<bool> {
        let _guard = PromptGuard::new();
        Confirm::with_theme(&self.theme)
            .with_prompt(label)
            .default(default)
            .interact_opt()
            .map_err(prompt_err)?
            .ok_or_else(interrupted)
    }

    fn secret(&mut self, label: &str, _: &str) -> Result<SecretString> {
        use dialoguer::theme::Theme;
        let _guard = PromptGuard::new();
        let term = console::Term::stderr();
        loop {
            let mut prompt = String::new();
            self.theme
                .format_password_prompt(&mut prompt, label)
                .map_err(|e| Error::internal(format!("cannot prompt: {e}")))?;
            let value = read_hidden_line(&term, &prompt)?;
            term.write_line("").map_err(io_prompt_err)?;
            if !value.trim().is_empty() {
                return Ok(SecretString::from(value.trim().to_owned()));
            }
        }
    }
}

fn io_prompt_err(e: std::io::Error) -> Error {
    prompt_err(dialoguer::Error::IO(e))
}

/// Shows `prompt` and reads one line from the terminal on stdin without
/// echo, in raw mode for the whole line. Raw mode starts before the prompt
/// is shown, so keys typed (or pasted) the moment it appears are never echoed.
///
/// Why not dialoguer's `Password`: it reads in cooked mode with echo off, so
/// Ctrl-C is a real SIGINT that either kills the process with echo still off
/// or, ignored, is lost while `read_line` waits on. Raw mode for the whole
/// line also keeps a fast paste from being echoed between keys. Ctrl-C (or
/// Esc) is exit 130, Backspace deletes, Ctrl-U clears, Enter ends.
fn read_hidden_line(term: &console::Term, prompt: &str) -> Result<String> {
    use std::io::Read;
    let fd = libc::STDIN_FILENO;
    // SAFETY: a zeroed termios is a valid value to be filled by tcgetattr.
    let mut original: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is stdin, original is a valid out pointer.
    if unsafe { libc::tcgetattr(fd, &mut original) } != 0 {
        return Err(io_prompt_err(std::io::Error::last_os_error()));
    }
    let mut raw = original;
    // SAFETY: cfmakeraw only edits the struct it is given.
    unsafe { libc::cfmakeraw(&mut raw) };
    // Keep output processing so our newline still returns the carriage.
    raw.c_oflag = original.c_oflag;
    // SAFETY: fd is a terminal (tcgetattr succeeded), raw is initialised.
    if unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &raw) } != 0 {
        return Err(io_prompt_err(std::io::Error::last_os_error()));
    }
    struct Restore(libc::termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back the settings read above, on the same fd.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.0);
            }
        }
    }
    let _restore = Restore(original);
    term.write_str(prompt).map_err(io_prompt_err)?;

    let mut line = Vec::new();
    // Straight from the descriptor, not through `std::io::stdin()`: a caller
    // may hold the stdin lock (to read secrets piped on stdin), and locking
    // it again here would deadlock. ManuallyDrop: the descriptor is not ours
    // to close.
    // SAFETY: fd 0 is open (tcgetattr succeeded on it) for the whole call.
    let mut stdin = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
    });
    let mut byte = [0u8; 1];
    // Arrow and function keys arrive as escape sequences (ESC [ … final
    // byte); they are swallowed whole rather than typed into the secret.
    let mut escape = Escape::None;
    loop {
        match stdin.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_prompt_err(e)),
        }
        let b = byte[0];
        match escape {
            Escape::Started => {
                escape = if b == b'[' || b == b'O' {
                    Escape::Sequence
                } else {
                    Escape::None
                };
                continue;
            }
            Escape::Sequence => {
                if (0x40..=0x7e).contains(&b) {
                    escape = Escape::None;
                }
                continue;
            }
            Escape::None => {}
        }
        if line.len() >= crate::cli::MAX_SECRET_BYTES {
            return Err(Error::usage(format!(
                "the input is longer than {} KiB",
                crate::cli::MAX_SECRET_BYTES / 1024
            )));
        }
        match b {
            0x1b => escape = Escape::Started,
            b'\r' | b'\n' => break,
            0x03 => return Err(interrupted()),
            0x04 if line.is_empty() => return Err(interrupted()),
            0x7f | 0x08 => {
                // Drop one whole UTF-8 character, not one byte of it.
                while let Some(b) = line.pop() {
                    if b & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => line.clear(),
            b if b < 0x20 => {}
            b => line.push(b),
        }
    }
    String::from_utf8(line).map_err(|_| Error::usage("the secret is not UTF-8 text"))
}

/// Where [`read_hidden_line`] is in an escape sequence.
#[derive(Clone, Copy)]
enum Escape {
    None,
    Started,
    Sequence,
}

/// Choices as the terminal shows them: names come from the store, which
/// another tool may have written, so control characters are escaped.
fn shown(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|i| crate::domain::printable(i).into_owned())
        .collect()
}
