//! Instance export and import files: JSON (the `instance list -o json` shape)
//! and CSV (one flat record per instance, the same columns `-o csv` prints).
//!
//! Parsing validates every row and reports every problem with its position
//! before the store is touched, so an import is all-or-nothing.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::{
    Country, EntityId, HealthStatus, InstanceId, InstanceStatus, InvalidValue, Region, RowId,
    parse_brands, parse_description, parse_name,
};
use crate::domain::{Health, ImportRow, Instance, NewAccount, NewInstance, fmt_time};
use crate::output::{csv_cells, csv_header, unneutralise};

/// The largest import file accepted.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// The columns of the flat CSV record, in order.
pub fn csv_columns() -> Vec<String> {
    csv_header::<InstanceCsv>()
}

/// Separates brands inside one CSV cell.
const BRAND_SEP: &str = ";";

/// Joins brands into one CSV cell: `;` between them, and a `\` before any
/// `;` or `\` inside a brand, so that every brand name survives the round trip.
fn join_brands(brands: &[String]) -> String {
    let escaped: Vec<String> = brands
        .iter()
        .map(|b| b.replace('\\', "\\\\").replace(';', "\\;"))
        .collect();
    escaped.join(BRAND_SEP)
}

/// Splits a brands cell written by [`join_brands`]. A `\` before anything
/// but `;` or `\` is kept as it is, for files written by hand.
fn split_brands(cell: &str) -> Vec<String> {
    let mut brands = vec![String::new()];
    let mut chars = cell.chars().peekable();
    while let Some(c) = chars.next() {
        let current = brands.last_mut().expect("never empty");
        match c {
            '\\' => match chars.peek() {
                Some(&next @ (';' | '\\')) => {
                    current.push(next);
                    chars.next();
                }
                _ => current.push('\\'),
            },
            ';' => brands.push(String::new()),
            c => current.push(c),
        }
    }
    brands
}

/// The flat CSV record of an instance.
pub fn csv_record(i: &Instance) -> Vec<String> {
    csv_cells(&InstanceCsv {
        id: Some(i.id),
        instance_id: Some(&i.instance_id),
        name: &i.name,
        description: i.description.as_deref(),
        region: Some(i.region),
        status: Some(i.status),
        is_active: i.is_active,
        owner: &i.owner,
        role: i.role,
        account_uuid: Some(i.account.id),
        account_id: i.account.account_id.as_str(),
        account_name: &i.account.account_name,
        advertiser_id: i.account.advertiser_id.as_deref(),
        country_code: i.account.country.code(),
        marketplace_id: i.account.country.marketplace_id(),
        brands: join_brands(&i.brands),
        health_status: Some(i.health.status),
        health_checked_at: i.health.checked_at.as_ref().map(fmt_time),
        health_latency_ms: i.health.latency_ms,
        health_error: i.health.error.as_deref(),
        api_endpoint: i.api_endpoint.as_deref(),
        created_at: fmt_time(&i.created_at),
        updated_at: fmt_time(&i.updated_at),
    })
}

/// The flat CSV record of an instance, the file format of import and
/// export: its account and health flattened, its brands in one cell (see
/// [`join_brands`]). Fields a default cannot fill are options so that an
/// empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct InstanceCsv<'a> {
    id: Option<crate::domain::RowId>,
    instance_id: Option<&'a crate::domain::InstanceId>,
    name: &'a str,
    description: Option<&'a str>,
    region: Option<crate::domain::Region>,
    status: Option<crate::domain::InstanceStatus>,
    is_active: bool,
    owner: &'a str,
    /// What the acting user is to it (`instance list`); an import ignores it.
    role: Option<crate::domain::Role>,
    account_uuid: Option<crate::domain::RowId>,
    account_id: &'a str,
    account_name: &'a str,
    advertiser_id: Option<&'a str>,
    country_code: &'a str,
    marketplace_id: &'a str,
    brands: String,
    health_status: Option<crate::domain::HealthStatus>,
    health_checked_at: Option<String>,
    health_latency_ms: Option<u64>,
    health_error: Option<&'a str>,
    api_endpoint: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

/// The file formats of import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// A JSON array of instances.
    Json,
    /// CSV with a header line.
    Csv,
}

/// One instance of an import file before validation: every field optional
/// text, so that each problem can be reported by name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawInstance {
    id: Option<String>,
    instance_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    region: Option<String>,
    status: Option<String>,
    is_active: Option<bool>,
    account: Option<RawAccount>,
    brands: Option<Vec<String>>,
    health: Option<RawHealth>,
    api_endpoint: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawAccount {
    id: Option<String>,
    account_id: Option<String>,
    account_name: Option<String>,
    advertiser_id: Option<String>,
    country_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHealth {
    status: Option<String>,
    checked_at: Option<String>,
    latency_ms: Option<u64>,
    error: Option<String>,
}

/// Parses and validates an import file. `Err` holds every problem found, each
/// prefixed with its position (`line 3` for CSV, `[2]` for JSON).
pub fn parse(text: &str, format: FileFormat) -> Result<Vec<ImportRow>, Vec<String>> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(vec![format!(
            "the file is larger than {} MiB",
            MAX_IMPORT_BYTES >> 20
        )]);
    }
    // Windows tools (PowerShell's `Out-File -Encoding utf8`, Notepad,
    // Excel's "CSV UTF-8") start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let raw = match format {
        FileFormat::Json => parse_json(text)?,
        FileFormat::Csv => parse_csv(text)?,
    };
    let mut rows = Vec::with_capacity(raw.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (pos, r) in raw {
        match r.and_then(|r| validate(r).map_err(|e| e.to_string())) {
            Ok(row) => {
                let key = row.instance.instance_id.to_string();
                if let Some(first) = seen.insert(key.clone(), pos.clone()) {
                    errors.push(format!(
                        "{pos}: duplicate instance_id: {key}, first at {first}"
                    ));
                } else {
                    rows.push(ImportRow {
                        position: pos,
                        ..row
                    });
                }
            }
            Err(e) => errors.push(clip(format!("{pos}: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Longest piece of a file quoted in a problem, in characters.
const MAX_QUOTED: usize = 40;
/// Longest problem line, in characters.
const MAX_PROBLEM: usize = 300;
/// Most unknown columns a problem names.
const MAX_NAMED: usize = 5;

/// Text from a file, as a message quotes it: escaped, so that no control
/// character or bidirectional mark reaches the terminal, and cut short.
fn quote(text: &str) -> String {
    let head: String = text.chars().take(MAX_QUOTED).collect();
    if head.len() < text.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// A problem line cut to a readable length: a parser's message may quote a
/// whole (huge) value from the file.
fn clip(problem: String) -> String {
    match problem.char_indices().nth(MAX_PROBLEM) {
        Some((i, _)) => format!("{}…", &problem[..i]),
        None => problem,
    }
}

/// The rows of a file, each with its position (`[2]`, `line 3`) and either
/// its fields or why they could not be read. Problems of single rows are
/// kept in place so that [`parse`] reports them together with the
/// validation problems of the other rows, in file order.
type RawRows = Vec<(String, Result<RawInstance, String>)>;

fn parse_json(text: &str) -> Result<RawRows, Vec<String>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| vec![format!("not a JSON array of instances: {e}")])?;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let row = serde_json::from_value::<RawInstance>(v).map_err(|e| e.to_string());
            (format!("[{i}]"), row)
        })
        .collect())
}

fn parse_csv(text: &str) -> Result<RawRows, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![format!("line 1: cannot read the header: {e}")])?
        .clone();
    let known = csv_columns();
    let unknown: Vec<&str> = headers
        .iter()
        .filter(|h| !known.iter().any(|k| k == h))
        .collect();
    if !unknown.is_empty() {
        let mut named: Vec<String> = unknown.iter().take(MAX_NAMED).map(|h| quote(h)).collect();
        if unknown.len() > MAX_NAMED {
            named.push(format!("and {} more", unknown.len() - MAX_NAMED));
        }
        return Err(vec![format!(
            "line 1: unknown column(s) {}; known columns: {}",
            named.join(", "),
            known.join(", ")
        )]);
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.push((format!("line {line}"), Err(e.to_string())));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let get = |col: &str| {
            headers
                .iter()
                .position(|h| h == col)
                .and_then(|i| record.get(i))
                .map(unneutralise)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let is_active = match get("is_active").as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                let e = "invalid is_active: must be true or false";
                out.push((format!("line {line}"), Err(e.into())));
                continue;
            }
        };
        let latency = match get("health_latency_ms").map(|v| v.parse::<u64>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                let e = "invalid health_latency_ms: not a whole number";
                out.push((format!("line {line}"), Err(e.into())));
                continue;
            }
        };
        let raw = RawInstance {
            id: get("id"),
            instance_id: get("instance_id"),
            name: get("name"),
            description: get("description"),
            region: get("region"),
            status: get("status"),
            is_active,
            account: Some(RawAccount {
                id: get("account_uuid"),
                account_id: get("account_id"),
                account_name: get("account_name"),
                advertiser_id: get("advertiser_id"),
                country_code: get("country_code"),
            }),
            brands: get("brands").map(|b| split_brands(&b)),
            health: Some(RawHealth {
                status: get("health_status"),
                checked_at: get("health_checked_at"),
                latency_ms: latency,
                error: get("health_error"),
            }),
            api_endpoint: get("api_endpoint"),
            created_at: get("created_at"),
            updated_at: get("updated_at"),
        };
        out.push((format!("line {line}"), Ok(raw)));
    }
    Ok(out)
}

fn required(field: &'static str, v: Option<String>) -> Result<String, InvalidValue> {
    v.ok_or_else(|| InvalidValue::new(field, "is required"))
}

fn timestamp(
    field: &'static str,
    v: Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, InvalidValue> {
    v.map(|s| {
        crate::domain::parse_time(&s).ok_or_else(|| {
            InvalidValue::new(field, "must be an RFC 3339 time like 2026-11-24T18:00:00Z")
        })
    })
    .transpose()
}

/// Checks an API endpoint: an http(s) URL without spaces, at most 255 characters.
pub fn parse_endpoint(v: &str) -> Result<String, InvalidValue> {
    let v = v.trim();
    let ok = (v.starts_with("https://") || v.starts_with("http://"))
        && v.len() <= 255
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(v.trim_end_matches('/').to_owned())
    } else {
        Err(InvalidValue::new("api_endpoint", "must be an http(s) URL"))
    }
}

fn validate(r: RawInstance) -> Result<ImportRow, InvalidValue> {
    let instance_id = InstanceId::parse(&required("instance_id", r.instance_id)?)?;
    let name = parse_name("name", &required("name", r.name)?)?;
    let description = r
        .description
        .filter(|d| !d.trim().is_empty())
        .map(|d| parse_description(&d))
        .transpose()?;
    let region: Region = required("region", r.region)?.parse()?;
    let id = r.id.map(|s| s.parse::<RowId>()).transpose()?;
    let account = r.account.unwrap_or_default();
    let entity = EntityId::parse(&required("account_id", account.account_id)?)?;
    let new_account = match account.account_name {
        Some(n) => Some(NewAccount {
            profile: None,
            id: account.id.map(|s| s.parse::<RowId>()).transpose()?,
            account_id: entity.clone(),
            account_name: parse_name("account_name", &n)?,
            advertiser_id: account
                .advertiser_id
                .as_deref()
                .map(crate::domain::parse_advertiser_id)
                .transpose()?
                .flatten(),
            country: account
                .country_code
                .as_deref()
                .map(Country::parse)
                .transpose()?
                .unwrap_or(Country::US),
        }),
        None => None,
    };
    let status: InstanceStatus = match r.status {
        Some(s) => s.parse()?,
        None if r.is_active == Some(false) => InstanceStatus::Inactive,
        None => InstanceStatus::Pending,
    };
    if let Some(active) = r.is_active
        && active != (status != InstanceStatus::Inactive)
    {
        return Err(InvalidValue::new(
            "is_active",
            "must be false exactly when status is INACTIVE",
        ));
    }
    let brands = parse_brands(&r.brands.unwrap_or_default())?;
    let h = r.health.unwrap_or_default();
    let health_status: HealthStatus = h
        .status
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(HealthStatus::Unknown);
    let health = Health {
        status: health_status,
        checked_at: timestamp("health.checked_at", h.checked_at)?,
        latency_ms: h.latency_ms,
        error: h
            .error
            .map(|e| crate::domain::clean_text("health.error", &e, 2000))
            .transpose()?,
    };
    Ok(ImportRow {
        position: String::new(),
        instance: NewInstance {
            id,
            instance_id,
            name,
            description,
            region,
            account: RowId::new(),
            status,
            brands,
            api_endpoint: r.api_endpoint.as_deref().map(parse_endpoint).transpose()?,
        },
        account_entity: entity,
        new_account,
        is_active: status != InstanceStatus::Inactive,
        health,
        created_at: timestamp("created_at", r.created_at)?,
        updated_at: timestamp("updated_at", r.updated_at)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_row_is_reported_with_its_position() {
        let csv = "instance_id,name,region,account_id\n\
                   amcaaaaaaaa,A,na,ENTITY1AA1AA11AAA1\n\
                   BAD,B,na,ENTITY1AA1AA11AAA1\n\
                   amcbbbbbbbb,C,mars,ENTITY1AA1AA11AAA1\n\
                   amcaaaaaaaa,D,na,ENTITY1AA1AA11AAA1\n";
        let errs = parse(csv, FileFormat::Csv).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("line 3: invalid instance_id"),
            "{errs:?}"
        );
        assert!(errs[1].starts_with("line 4: invalid region"), "{errs:?}");
        assert!(errs[2].starts_with("line 5: duplicate"), "{errs:?}");
    }

    #[test]
    fn brands_with_separators_survive_a_csv_cell() {
        let brands: Vec<String> = ["A;B", "back\\slash", "\\;", "plain", "end\\"]
            .map(String::from)
            .to_vec();
        let cell = join_brands(&brands);
        assert_eq!(cell, "A\\;B;back\\\\slash;\\\\\\;;plain;end\\\\");
        assert_eq!(split_brands(&cell), brands);
        assert_eq!(split_brands("A;B"), ["A", "B"]);
        assert_eq!(split_brands("C:\\dir"), ["C:\\dir"]);
    }

    #[test]
    fn problems_quote_the_file_escaped_and_short() {
        let header = format!("instance_id,\u{1b}]0;pwned\u{7},{}\n", "x".repeat(100_000));
        let errs = parse(&header, FileFormat::Csv).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].len() < 1000, "{} bytes", errs[0].len());
        assert!(
            !errs[0].contains('\u{1b}') && errs[0].contains("\\u{1b}"),
            "{}",
            errs[0]
        );
        let many = (0..1000)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let errs = parse(&many, FileFormat::Csv).unwrap_err();
        assert!(errs[0].contains("and 995 more"), "{}", errs[0]);
        let huge = format!(
            "[{{\"instance_id\":\"amcaaaaaaaa\",\"is_active\":\"{}\"}}]",
            "y".repeat(100_000)
        );
        let errs = parse(&huge, FileFormat::Json).unwrap_err();
        assert!(
            errs.iter().all(|e| e.chars().count() <= MAX_PROBLEM + 1),
            "{errs:?}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let json = "\u{FEFF}[{\"instance_id\":\"amcaaaaaaaa\",\"name\":\"A\",\"region\":\"na\",\
                    \"account\":{\"account_id\":\"ENTITY1AA1AA11AAA1\"}}]";
        assert_eq!(parse(json, FileFormat::Json).map(|r| r.len()), Ok(1));
        let csv =
            "\u{FEFF}instance_id,name,region,account_id\r\namcaaaaaaaa,A,na,ENTITY1AA1AA11AAA1\r\n";
        assert_eq!(parse(csv, FileFormat::Csv).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn json_positions_and_nesting() {
        let errs = parse(
            r#"[{"instance_id":"amcaaaaaaaa"},{"name":1}]"#,
            FileFormat::Json,
        )
        .unwrap_err();
        assert!(errs[0].starts_with("[0]: invalid name"), "{errs:?}");
        assert!(errs[1].starts_with("[1]:"), "{errs:?}");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep, FileFormat::Json).is_err());
    }
}
