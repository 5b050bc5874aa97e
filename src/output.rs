//! Rendering results: tables for people, JSON / NDJSON / CSV for programs.
//!
//! Results go to stdout and nothing else does; messages go to stderr. Both
//! streams belong to [`Output`] ([`Streams`]): no command writes to the
//! process's own, so a test can run a command over buffers instead. Tables
//! get headers and colour only on a terminal; piped, they become plain
//! tab-separated lines that `cut` and `awk` can take apart.

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use serde::Serialize;

use crate::domain::{HealthStatus, is_hostile_char, printable, printable_lines};
use crate::error::{Error, Result};
use crate::exit::ExitStatus;

/// The output format (`-o`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// Comma-separated values with a header line.
    Csv,
}

impl Format {
    /// Whether the format is for programs (stdout must hold nothing else).
    pub fn is_machine(self) -> bool {
        self != Format::Table
    }
}

/// When to use colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// A type that can be shown as table rows and CSV records.
pub trait Tabular {
    /// Column headers of the table.
    fn columns() -> Vec<&'static str>;
    /// The cells of one row; colour is applied only when the table is styled.
    fn row(&self) -> Vec<Cell>;
    /// Column headers in CSV (defaults to the table's): a type with a CSV
    /// record of its own returns [`csv_header`] of its serde view.
    fn csv_columns() -> Vec<String> {
        Self::columns().into_iter().map(String::from).collect()
    }
    /// One CSV record (defaults to the table row's text): [`csv_cells`]
    /// of the same view.
    fn csv_row(&self) -> Vec<String> {
        self.row().iter().map(|c| c.content()).collect()
    }
}

/// A writer one of the two streams goes to.
pub type Writer = Box<dyn Write + Send>;

/// The two streams every result and message goes to: the process's own
/// stdout and stderr, or buffers a test reads back.
pub struct Streams {
    stdout: Mutex<Writer>,
    stderr: Mutex<Writer>,
    stdout_tty: bool,
    stderr_tty: bool,
    /// Whether these are the process's own streams, which clap may style.
    process: bool,
}

impl Streams {
    /// The process's stdout and stderr.
    pub fn process() -> Self {
        Self {
            stdout: Mutex::new(Box::new(io::stdout())),
            stderr: Mutex::new(Box::new(io::stderr())),
            stdout_tty: io::stdout().is_terminal(),
            stderr_tty: io::stderr().is_terminal(),
            process: true,
        }
    }

    /// Streams into `stdout` and `stderr`, neither of them a terminal.
    pub fn new(stdout: Writer, stderr: Writer) -> Self {
        Self {
            stdout: Mutex::new(stdout),
            stderr: Mutex::new(stderr),
            stdout_tty: false,
            stderr_tty: false,
            process: false,
        }
    }

    /// Whether stderr is a terminal.
    pub fn stderr_tty(&self) -> bool {
        self.stderr_tty
    }

    /// Prints what clap has to say about the command line: help and the
    /// version on stdout, an error on stderr. On the process's streams clap
    /// prints it, styled as clap decides; elsewhere it is plain text.
    pub fn clap_message(&self, e: &clap::Error) {
        if self.process {
            let _ = e.print();
            return;
        }
        let stream = if e.use_stderr() {
            &self.stderr
        } else {
            &self.stdout
        };
        let mut w = stream.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = write!(w, "{}", e.render());
    }

    /// Streams into two fresh buffers, returned for reading back.
    pub fn captured() -> (Self, Captured, Captured) {
        let (stdout, stderr) = (Captured::default(), Captured::default());
        let streams = Self::new(Box::new(stdout.clone()), Box::new(stderr.clone()));
        (streams, stdout, stderr)
    }
}

/// An in-memory stream that can be read back while it is written to: what
/// a command printed, for a test that runs it in-process.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("stdout_tty", &self.stdout_tty)
            .field("stderr_tty", &self.stderr_tty)
            .finish_non_exhaustive()
    }
}

/// Where and how results and messages are written.
#[derive(Debug, Clone)]
pub struct Output {
    streams: Arc<Streams>,
    /// The chosen format.
    pub format: Format,
    /// Whether stdout is a terminal.
    pub stdout_tty: bool,
    /// Whether stderr is a terminal.
    pub stderr_tty: bool,
    /// Whether to colour results on stdout.
    pub color: bool,
    /// Whether to colour messages, prompts and logs on stderr.
    pub stderr_color: bool,
    /// `-q`: only results and errors.
    pub quiet: bool,
    /// `-v`: errors show Amazon's request ID too.
    pub verbose: bool,
    /// `--jq EXPR`: every JSON result passes through this filter.
    pub jq: Option<std::sync::Arc<crate::jq::Jq>>,
}

/// Whether a stream gets colour: `always` and `never` are obeyed as given (a
/// flag is an explicit request, so it beats `NO_COLOR`); `auto` colours a
/// terminal (the caller has already said no when `NO_COLOR` is set).
fn use_color(when: ColorWhen, is_terminal: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => is_terminal,
    }
}

impl Output {
    /// Output to `streams`. `no_color` is whether `NO_COLOR` asks `auto`
    /// not to colour.
    pub fn new(
        streams: Arc<Streams>,
        format: Format,
        color: ColorWhen,
        no_color: bool,
        quiet: bool,
    ) -> Self {
        let (stdout_tty, stderr_tty) = (streams.stdout_tty, streams.stderr_tty);
        let use_color = |tty| use_color(color, tty && !no_color);
        Self {
            streams,
            format,
            stdout_tty,
            stderr_tty,
            color: use_color(stdout_tty),
            stderr_color: use_color(stderr_tty),
            quiet,
            verbose: false,
            jq: None,
        }
    }

    /// Settings from the global flags: `format` unless `--jq` asks for
    /// JSON; a `--jq` expression that does not compile is exit 2.
    pub fn for_args(
        streams: Arc<Streams>,
        g: &crate::cli::GlobalArgs,
        format: Format,
        no_color: bool,
    ) -> Result<Self> {
        let jq =
            g.jq.as_deref()
                .map(crate::jq::Jq::compile)
                .transpose()?
                .map(std::sync::Arc::new);
        let format = if jq.is_some() { Format::Json } else { format };
        let mut out = Output::new(streams, format, g.color, no_color, g.quiet);
        out.verbose = g.verbose > 0;
        out.jq = jq;
        Ok(out)
    }

    /// The stdout writer, held until the guard is dropped. Results only:
    /// stdout holds nothing else.
    pub fn stdout(&self) -> MutexGuard<'_, Writer> {
        // A writer poisoned by a panic elsewhere still writes.
        self.streams
            .stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The stderr writer, held until the guard is dropped.
    pub fn stderr(&self) -> MutexGuard<'_, Writer> {
        self.streams
            .stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `bytes` to stdout as they are, and flushes.
    pub fn print(&self, bytes: impl AsRef<[u8]>) -> Result<()> {
        let mut out = self.stdout();
        out.write_all(bytes.as_ref())?;
        out.flush()?;
        Ok(())
    }

    /// Prints `value` alone on a line (for `$(amcctl …)`), or, in a machine
    /// format, the object `{field: value}`.
    pub fn value(&self, field: &str, value: &str) -> Result<()> {
        if self.format.is_machine() {
            let mut map = serde_json::Map::new();
            map.insert(field.to_owned(), value.into());
            self.one(&map)
        } else {
            self.print(format!("{value}\n"))
        }
    }

    /// Prints `line` for people, or, in a machine format, `item`.
    pub fn line_or<T: Serialize>(&self, line: &str, item: &T) -> Result<()> {
        if self.format.is_machine() {
            self.one(item)
        } else {
            self.print(format!("{line}\n"))
        }
    }

    /// Writes one JSON document (indented, with a final newline), or what
    /// `--jq` makes of it.
    pub fn write_json<T: Serialize + ?Sized>(&self, out: &mut impl Write, item: &T) -> Result<()> {
        match &self.jq {
            Some(jq) => jq.write(out, serde_json::to_value(item)?),
            None => {
                write_json_pretty(&mut *out, item)?;
                writeln!(out)?;
                Ok(())
            }
        }
    }

    /// Prints a list in the chosen format.
    pub fn list<T: Serialize + Tabular>(&self, items: &[T]) -> Result<()> {
        // Buffered: a 10,000-row list is one write, not one per line.
        let mut stdout = self.stdout();
        let mut out = io::BufWriter::new(&mut *stdout);
        match self.format {
            Format::Json => self.write_json(&mut out, items)?,
            Format::Ndjson => {
                for item in items {
                    write_json(&mut out, item)?;
                    writeln!(out)?;
                }
            }
            Format::Csv => write_csv(&mut out, T::csv_columns(), items.iter().map(T::csv_row))?,
            Format::Table => self.table(&mut out, T::columns(), items.iter().map(T::row))?,
        }
        out.flush()?;
        Ok(())
    }

    /// Prints one object: a two-column field/value table, or the object in the machine format.
    pub fn one<T: Serialize>(&self, item: &T) -> Result<()> {
        // Buffered: a 10,000-row list is one write, not one per line.
        let mut stdout = self.stdout();
        let mut out = io::BufWriter::new(&mut *stdout);
        match self.format {
            Format::Json => self.write_json(&mut out, item)?,
            Format::Ndjson => {
                write_json(&mut out, item)?;
                writeln!(out)?;
            }
            Format::Csv | Format::Table => {
                let value = serde_json::to_value(item)?;
                let mut fields = Vec::new();
                flatten("", &value, &mut fields);
                if self.format == Format::Csv {
                    let (keys, values): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
                    write_csv(&mut out, keys, std::iter::once(values))?;
                } else {
                    let rows = fields.into_iter().map(|(k, v)| {
                        let color = health_color(&v);
                        let mut value = Cell::new(v);
                        if let Some(c) = color {
                            value = value.fg(c);
                        }
                        vec![Cell::new(k).add_attribute(Attribute::Bold), value]
                    });
                    self.table(&mut out, vec!["FIELD", "VALUE"], rows)?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }

    /// Prints what a change produced, for scripts: in the machine formats
    /// only. People got a line on stderr saying what changed.
    pub fn changed<T: Serialize>(&self, item: &T) -> Result<()> {
        if self.format.is_machine() {
            self.one(item)
        } else {
            Ok(())
        }
    }

    fn table(
        &self,
        out: &mut impl Write,
        headers: Vec<&str>,
        rows: impl Iterator<Item = Vec<Cell>>,
    ) -> Result<()> {
        if !self.stdout_tty {
            for row in rows {
                let line: Vec<String> = row
                    .iter()
                    .map(|c| {
                        let text = c.content();
                        // The health dot is decoration for people; scripts get the word.
                        // Tabs and line breaks become escapes, so a cell never
                        // splits into two fields or forges a line.
                        printable(text.strip_prefix("● ").unwrap_or(&text)).into_owned()
                    })
                    .collect();
                writeln!(out, "{}", line.join("\t"))?;
            }
            return Ok(());
        }
        // A cell holding a control or bidi character is rebuilt from its
        // escaped text (losing only its colour, which no such cell has).
        let rows = rows.map(|row| {
            row.into_iter()
                .map(|c| {
                    let text = c.content();
                    match printable(&text) {
                        std::borrow::Cow::Borrowed(_) => c,
                        std::borrow::Cow::Owned(safe) => Cell::new(safe),
                    }
                })
                .collect::<Vec<Cell>>()
        });
        let mut table = Table::new();
        table.load_preset(presets::NOTHING).set_header(
            headers
                .iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
        if self.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        // The width is said explicitly: comfy-table only measures the terminal
        // itself when it may style, so without colour (NO_COLOR, --color never)
        // a table would overflow the terminal instead of wrapping its cells.
        // A terminal that reports no width (0 columns: some pseudo-terminals,
        // `docker exec` without a size) gets cells at their natural width, not
        // squeezed into one column of letters.
        match console::Term::stdout().size_checked() {
            Some((_, cols)) if cols > 0 => {
                table
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(cols);
            }
            _ => {
                table.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        for row in rows {
            table.add_row(row);
        }
        // Identifiers are copied and pasted: names and brands wrap instead.
        for (i, h) in headers.iter().enumerate() {
            if h.ends_with("ID")
                && let Some(column) = table.column_mut(i)
            {
                column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
            }
        }
        writeln!(out, "{table}")?;
        Ok(())
    }

    /// A progress or status line on stderr (silenced by `-q`).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(self.stderr(), "{}", printable_lines(msg.as_ref()));
        }
    }

    /// Text on stderr that the user must act on, as it is: `-q` does not
    /// silence it.
    pub fn tell(&self, msg: impl AsRef<str>) {
        let _ = writeln!(self.stderr(), "{}", msg.as_ref());
    }

    /// A warning on stderr (silenced by `-q`).
    pub fn warn(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(self.stderr(), "warning: {}", printable_lines(msg.as_ref()));
        }
    }

    /// Prints an error on stderr: JSON with a machine format, text otherwise.
    pub fn error(&self, e: &Error) {
        self.report(e.kind.code(), &e.message, Some(e));
    }

    /// Prints what an outcome that is not a clean success has to say on
    /// stderr, the way an error is printed; nothing for the others.
    pub fn outcome(&self, status: &ExitStatus) {
        if let Some((code, message)) = status.report() {
            self.report(code, message, None);
        }
    }

    /// An error or an outcome on stderr: its machine-readable `code` and
    /// `message`, and what else the error `e` carries. With `-v`, a text
    /// error ends with the errors it was caused by, one per line.
    fn report(&self, code: &str, message: &str, e: Option<&Error>) {
        self.write_report(&mut *self.stderr(), code, message, e);
    }

    fn write_report(&self, err: &mut impl Write, code: &str, message: &str, e: Option<&Error>) {
        let hint = e.and_then(|e| e.hint.as_deref());
        if self.format.is_machine() {
            let mut body =
                serde_json::json!({"error": {"code": code, "message": message, "hint": hint}});
            if let Some(id) = e.and_then(|e| e.request_id.as_deref()) {
                body["error"]["request_id"] = serde_json::Value::String(id.to_owned());
            }
            if let Some(e) = e.filter(|e| !e.problems.is_empty()) {
                let all = e.problems.join("\n  ");
                body["error"]["message"] = format!("{message}:\n  {all}").into();
                body["error"]["problems"] = e.problems.clone().into();
            }
            let _ = write_json(&mut *err, &body).and_then(|()| writeln!(err));
        } else {
            let (error, hint_label) = if self.stderr_color {
                (
                    console::style("error:").red().bold().force_styling(true),
                    console::style("hint:").cyan().force_styling(true),
                )
            } else {
                (console::style("error:"), console::style("hint:"))
            };
            let _ = writeln!(err, "{error} {}", printable_lines(message));
            let problems = e.map(Error::problem_summary).unwrap_or_default();
            if !problems.is_empty() {
                let _ = writeln!(err, "  {}", printable_lines(&problems.join("\n  ")));
            }
            if let Some(h) = hint {
                let _ = writeln!(err, "{hint_label} {}", printable_lines(h));
            }
            if let Some(id) = e
                .and_then(|e| e.request_id.as_deref())
                .filter(|_| self.verbose)
            {
                let _ = writeln!(err, "request ID: {id}");
            }
            let causes = e
                .filter(|_| self.verbose)
                .map(Error::causes)
                .unwrap_or_default();
            if !causes.is_empty() {
                let _ = writeln!(err, "\nCaused by:");
                for cause in causes {
                    let _ = writeln!(err, "  {}", printable_lines(&cause).replace('\n', "\n  "));
                }
            }
        }
    }
}

/// The colour of a health or status word.
pub fn health_color(value: &str) -> Option<Color> {
    match value {
        "HEALTHY" | "ACTIVE" => Some(Color::Green),
        "UNHEALTHY" | "PENDING" => Some(Color::Yellow),
        "ERROR" => Some(Color::Red),
        "UNKNOWN" | "INACTIVE" => Some(Color::DarkGrey),
        _ => None,
    }
}

/// A coloured dot and the health word.
pub fn health_cell(h: HealthStatus) -> Cell {
    let cell = Cell::new(format!("● {h}"));
    match health_color(h.as_str()) {
        Some(c) => cell.fg(c),
        None => cell,
    }
}

/// A status word, coloured.
pub fn status_cell(s: &str) -> Cell {
    let cell = Cell::new(s);
    match health_color(s) {
        Some(c) => cell.fg(c),
        None => cell,
    }
}

/// Flattens a JSON value into `a.b` keys with display strings (for one-object tables and CSV).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            out.push((prefix.to_owned(), parts.join("; ")));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), item, out);
            }
        }
        other => out.push((prefix.to_owned(), scalar(other))),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `value` as compact JSON in which no character can act on a
/// terminal: besides the C0 controls JSON always escapes, C1 controls, DEL
/// and the characters that reorder or hide text are written as `\uXXXX`.
/// A JSON reader gets the same strings back.
pub fn write_json<W: Write, T: Serialize + ?Sized>(out: &mut W, value: &T) -> io::Result<()> {
    let mut ser =
        serde_json::Serializer::with_formatter(out, SafeJson(serde_json::ser::CompactFormatter));
    value.serialize(&mut ser).map_err(io::Error::from)
}

/// [`write_json`], indented.
pub fn write_json_pretty<W: Write, T: Serialize + ?Sized>(
    out: &mut W,
    value: &T,
) -> io::Result<()> {
    let pretty = serde_json::ser::PrettyFormatter::new();
    let mut ser = serde_json::Serializer::with_formatter(out, SafeJson(pretty));
    value.serialize(&mut ser).map_err(io::Error::from)
}

/// [`write_json`] into a string.
pub fn json_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut buf = Vec::new();
    // Writing into memory fails only if serialisation does, which for the
    // program's own types it does not.
    let _ = write_json(&mut buf, value);
    String::from_utf8(buf).unwrap_or_default()
}

/// A JSON formatter that escapes what [`is_hostile_char`] flags.
struct SafeJson<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for SafeJson<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_hostile_char(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{u:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Writes CSV with every cell neutralised against formula injection.
pub fn write_csv(
    out: &mut impl Write,
    headers: Vec<String>,
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&headers)?;
    for row in rows {
        w.write_record(row.iter().map(|c| neutralise(&printable(c)).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

/// The CSV columns of the flat record type `V`: its serde field names, read
/// off a default value so that an empty list still gets its header line.
pub fn csv_header<V: Serialize + Default>() -> Vec<String> {
    csv_fields(&V::default())
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// The CSV cells of a flat record: each top-level field as text, in the
/// order [`csv_header`] names them.
pub fn csv_cells<V: Serialize>(record: &V) -> Vec<String> {
    csv_fields(record).into_iter().map(|(_, v)| v).collect()
}

/// A struct's top-level fields as (name, text) pairs, in declaration order.
/// Anything that is not a struct (or map) has no fields.
fn csv_fields<V: Serialize>(record: &V) -> Vec<(String, String)> {
    match serde_json::to_value(record) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .map(|(k, v)| {
                let text = cell_text(&v);
                (k, text)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// One field as a cell: strings as they are, numbers and booleans as Rust
/// prints them (so `100.0` is `100`), null (a `None`) as an empty cell, and
/// a nested value, which a flat record does not have, as its compact JSON.
fn cell_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => f.to_string(),
            _ => n.to_string(),
        },
        nested => json_string(nested),
    }
}

/// The first characters that make a spreadsheet run a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a cell needs the `'` prefix: it starts like a formula, possibly
/// behind `'`s of its own (which must survive [`unneutralise`] too).
fn needs_prefix(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// Prefixes a cell that a spreadsheet would run as a formula with `'`.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if needs_prefix(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Undoes [`neutralise`] when reading a CSV this tool wrote.
pub fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_prefix(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_output(format: Format) -> Output {
        let streams = Streams::new(Box::new(io::sink()), Box::new(io::sink()));
        Output::new(Arc::new(streams), format, ColorWhen::Never, false, false)
    }

    /// An error with a chain of causes, as `Output::error` prints it.
    fn printed(e: &Error, verbose: bool) -> String {
        let mut out = quiet_output(Format::Table);
        out.verbose = verbose;
        let mut buf = Vec::new();
        out.write_report(&mut buf, e.kind.code(), &e.message, Some(e));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn verbose_errors_end_with_their_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading the page failed")]
        struct Outer(#[source] io::Error);
        let io = io::Error::new(io::ErrorKind::PermissionDenied, "access denied");
        let e = Error::store("cannot load the page")
            .with_hint("try again")
            .with_source(Outer(io));
        assert_eq!(
            printed(&e, false),
            "error: cannot load the page\nhint: try again\n",
            "without -v, nothing of the causes"
        );
        assert_eq!(
            printed(&e, true),
            "error: cannot load the page\nhint: try again\n\
             \nCaused by:\n  reading the page failed\n  access denied\n"
        );

        // A cause the message already quotes is not repeated; with none
        // left there is no `Caused by:` at all.
        let io = io::Error::new(io::ErrorKind::NotFound, "no such file");
        let e = Error::file("open", std::path::Path::new("f.csv"), io);
        assert_eq!(
            printed(&e, true),
            "error: cannot open f.csv: no such file\n"
        );
        let e = Error::from(crate::domain::InvalidValue {
            field: "region",
            reason: "must be na, eu or fe".into(),
        });
        assert_eq!(
            printed(&e, true),
            "error: invalid region: must be na, eu or fe\n"
        );

        // Machine formats print the same object with -v as without.
        let mut out = quiet_output(Format::Json);
        out.verbose = true;
        let mut buf = Vec::new();
        let e = Error::store("cannot load the page").with_source(io::Error::other("deep"));
        out.write_report(&mut buf, e.kind.code(), &e.message, Some(&e));
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"error\":{\"code\":\"store\",\"message\":\"cannot load the page\",\"hint\":null}}\n"
        );
    }

    #[test]
    fn csv_records_come_from_the_fields_serde_names() {
        #[derive(Default, Serialize)]
        struct View<'a> {
            #[serde(rename = "pct")]
            share: Option<f64>,
            status: Option<HealthStatus>,
            name: &'a str,
            count: u32,
            ok: bool,
            nested: Vec<u8>,
        }
        assert_eq!(
            csv_header::<View>(),
            ["pct", "status", "name", "count", "ok", "nested"],
            "a default view names the columns"
        );
        let view = View {
            share: Some(100.0),
            status: Some(HealthStatus::Healthy),
            name: "=a,b",
            count: 3,
            ok: true,
            nested: vec![1, 2],
        };
        assert_eq!(
            csv_cells(&view),
            ["100", "HEALTHY", "=a,b", "3", "true", "[1,2]"],
            "floats print as Rust prints them, nested values as JSON"
        );
        assert_eq!(csv_cells(&View::default())[..2], ["", ""], "None is blank");
        assert!(csv_cells(&"not a struct").is_empty());
    }

    #[test]
    fn csv_injection_is_neutralised_and_restored() {
        for s in ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx"] {
            let n = neutralise(s);
            assert!(n.starts_with('\''), "{s}");
            assert_eq!(unneutralise(&n), s);
        }
        assert_eq!(neutralise("Acme"), "Acme");
        assert_eq!(unneutralise("'quoted"), "'quoted");
        // A value that itself starts with `'` before a formula character
        // comes back as it was, not one `'` shorter.
        for s in ["'=quoted", "''+1", "'quoted", "''"] {
            assert_eq!(unneutralise(&neutralise(s)), s);
        }
    }
}
