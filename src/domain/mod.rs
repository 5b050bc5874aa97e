//! The records and value types every layer shares: what the store keeps
//! and returns, what commands print, and the arithmetic on them that is not
//! a query (percentiles, worst-first order, fleet summaries). No SQL here.
//!
//! Everything here is parsed from untrusted text (flags, import files, API
//! responses) exactly once; the rest of the program trusts these types. The
//! two identifiers that the old web service kept confusing — the row UUID and
//! AMC's instance ID — are distinct types so the compiler keeps them apart.

mod access;
mod account;
mod audit;
mod credentials;
mod discovery;
mod health;
mod instance;
mod usage;
mod user;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use access::{Action, Role, Share, ShareChange, ShareRole};
pub use account::{Account, AccountPatch, NewAccount};
pub use audit::{AuditEntry, AuditFilter, AuditNote, AuditObject};
pub use credentials::{
    DEFAULT_PROFILE, SealedSecret, SecretOf, StoredCredentials, validate_profile,
};
pub use discovery::{DiscoveredInstance, UpsertCounts};
pub use health::{
    DayLatency, HealthFleet, HealthRecord, HealthSummary, HealthTally, HistoryRow, LatencyDays,
    percentile, worst_first,
};
pub use instance::{
    AccountBrief, Health, ImportDiff, ImportOutcome, ImportRow, Instance, InstanceFilter,
    InstancePatch, NewInstance, UpsertResult,
};
pub use usage::{
    DayExecutions, Durations, ExecutionDays, ExecutionRow, Failure, ScheduleRow, StatusCounts,
    SyncMark, UsageFigures, UsageFleet, UsageRow,
};
pub use user::{User, validate_name};

/// Why a value was rejected; `field` names the flag or column it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidValue {
    /// The user-facing name of the field (`instance_id`, `region`, …).
    pub field: &'static str,
    /// What is wrong with the value, without echoing secrets.
    pub reason: String,
}

impl InvalidValue {
    /// A rejection of `field` for `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The internal primary key of a row (UUID v4). Never sent to AMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowId(pub Uuid);

impl RowId {
    /// A fresh random id (seeded under test: see [`crate::clock`]).
    pub fn new() -> Self {
        Self(crate::clock::uuid_v4())
    }
}

impl Default for RowId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RowId {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| InvalidValue::new("id", "not a UUID"))
    }
}

/// AMC's own identifier of an instance (`amcibersblt`): what every API call uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// Parses `[a-z0-9][a-z0-9-]{2,63}`.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let ok_len = (3..=64).contains(&s.len());
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok_len && first_ok && rest_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "instance_id",
                "must be 3-64 lowercase letters, digits or '-', starting with a letter or digit (like amcibersblt)",
            ))
        }
    }

    /// Whether the ID has the shape real AMC instance IDs have: `amc` and 8 letters or digits.
    pub fn has_usual_shape(&self) -> bool {
        self.0.len() == 11
            && self.0.starts_with("amc")
            && self.0[3..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The entity ID of an Amazon Ads AMC account (`ENTITY1AA1AA11AAA1`); sent as
/// the `Amazon-Advertising-API-AdvertiserId` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EntityId(String);

impl EntityId {
    /// Parses `ENTITY` followed by 6–40 ASCII letters or digits, case kept.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let ok = s.strip_prefix("ENTITY").is_some_and(|rest| {
            (6..=40).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "account_id",
                "must be ENTITY followed by 6-40 letters or digits (like ENTITY1AA1AA11AAA1)",
            ))
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An Amazon Ads API region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// North America.
    Na,
    /// Europe.
    Eu,
    /// Far East.
    Fe,
}

impl Region {
    /// Every region, in display order.
    pub const ALL: [Region; 3] = [Region::Na, Region::Eu, Region::Fe];

    /// The stored and displayed code.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Na => "na",
            Region::Eu => "eu",
            Region::Fe => "fe",
        }
    }

    /// The Amazon Ads API base URL of the region.
    pub fn api_url(self) -> &'static str {
        match self {
            Region::Na => "https://advertising-api.amazon.com",
            Region::Eu => "https://advertising-api-eu.amazon.com",
            Region::Fe => "https://advertising-api-fe.amazon.com",
        }
    }

    /// The Login-with-Amazon token endpoint of the region.
    pub fn token_url(self) -> &'static str {
        match self {
            Region::Na => "https://api.amazon.com/auth/o2/token",
            Region::Eu => "https://api.amazon.co.uk/auth/o2/token",
            Region::Fe => "https://api.amazon.co.jp/auth/o2/token",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "na" => Ok(Region::Na),
            "eu" => Ok(Region::Eu),
            "fe" => Ok(Region::Fe),
            _ => Err(InvalidValue::new("region", "must be one of na, eu, fe")),
        }
    }
}

/// Countries with an Amazon Ads marketplace, and their marketplace IDs.
const MARKETPLACES: [(&str, &str); 22] = [
    ("US", "ATVPDKIKX0DER"),
    ("CA", "A2EUQ1WTGCTBG2"),
    ("MX", "A1AM78C64UM0Y8"),
    ("BR", "A2Q3Y263D00KWC"),
    ("UK", "A1F83G8C2ARO7P"),
    ("DE", "A1PA6795UKMFR9"),
    ("FR", "A13V1IB3VIYZZH"),
    ("IT", "APJ6JRA9NG5V4"),
    ("ES", "A1RKKUPIHCS9HS"),
    ("NL", "A1805IZSGTT6HS"),
    ("SE", "A2NODRKZP88ZB9"),
    ("PL", "A1C3SOZRARQ6R3"),
    ("TR", "A33AVAJ2PDY3EV"),
    ("AE", "A2VIGQ35RCS4UG"),
    ("SA", "A17E79C6D8DWNP"),
    ("BE", "AMEN7PMS3EDWL"),
    ("ZA", "AE08WJ6YKNBMC"),
    ("EG", "ARBP9OOSHTCHU"),
    ("IN", "A21TJRUUN4KGV"),
    ("JP", "A1VC38T7YXB528"),
    ("AU", "A39IBJ37TRP1C6"),
    ("SG", "A19VAU5U5O7RUS"),
];

/// A marketplace country (`US`, `DE`, …); the marketplace ID follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(&'static str, &'static str);

impl Country {
    /// The default country of a new account.
    pub const US: Country = Country("US", "ATVPDKIKX0DER");

    /// Parses a two-letter country code, case-insensitively (`GB` is taken as `UK`).
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let code = s.trim().to_ascii_uppercase();
        let code = if code == "GB" { "UK".to_owned() } else { code };
        MARKETPLACES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, m)| Country(c, m))
            .ok_or_else(|| {
                let known: Vec<&str> = MARKETPLACES.iter().map(|(c, _)| *c).collect();
                InvalidValue::new("country", format!("must be one of {}", known.join(", ")))
            })
    }

    /// The country a store row names by its code and marketplace ID, as
    /// written (no case folding, no `GB`); `None` for any other pair.
    pub fn stored(code: &str, marketplace_id: &str) -> Option<Self> {
        Self::from_marketplace(marketplace_id).filter(|c| c.0 == code)
    }

    /// The country whose marketplace ID this is.
    pub fn from_marketplace(id: &str) -> Option<Self> {
        MARKETPLACES
            .iter()
            .find(|(_, m)| *m == id)
            .map(|(c, m)| Country(c, m))
    }

    /// Every country, in the order above.
    pub fn all() -> impl Iterator<Item = Country> {
        MARKETPLACES.iter().map(|(c, m)| Country(c, m))
    }

    /// The two-letter code.
    pub fn code(self) -> &'static str {
        self.0
    }

    /// The Amazon marketplace ID.
    pub fn marketplace_id(self) -> &'static str {
        self.1
    }

    /// The Amazon Ads API region that serves the marketplace.
    pub fn region(self) -> Region {
        match self.0 {
            "US" | "CA" | "MX" | "BR" => Region::Na,
            "JP" | "AU" | "SG" => Region::Fe,
            _ => Region::Eu,
        }
    }
}

/// An account's country appears in its JSON as two fields,
/// `country_code` and `marketplace_id`.
impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Country", 2)?;
        st.serialize_field("country_code", self.0)?;
        st.serialize_field("marketplace_id", self.1)?;
        st.end()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The lifecycle state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPERCASE")]
pub enum InstanceStatus {
    /// Saved, not yet validated.
    Pending,
    /// Validated and enabled.
    Active,
    /// Disabled by the user.
    Inactive,
    /// The last check failed.
    Error,
}

impl InstanceStatus {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Pending => "PENDING",
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Inactive => "INACTIVE",
            InstanceStatus::Error => "ERROR",
        }
    }

    /// The status after a health check with `outcome`: the one place the
    /// transition table of instance states lives. A check never changes an
    /// INACTIVE instance.
    pub fn after_check(self, outcome: HealthStatus) -> InstanceStatus {
        match (self, outcome) {
            (InstanceStatus::Inactive, _) => InstanceStatus::Inactive,
            (_, HealthStatus::Healthy) => InstanceStatus::Active,
            (_, HealthStatus::Unknown) => self,
            (_, HealthStatus::Unhealthy | HealthStatus::Error) => InstanceStatus::Error,
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstanceStatus {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => Ok(Self::Pending),
            "ACTIVE" => Ok(Self::Active),
            "INACTIVE" => Ok(Self::Inactive),
            "ERROR" => Ok(Self::Error),
            _ => Err(InvalidValue::new(
                "status",
                "must be one of PENDING, ACTIVE, INACTIVE, ERROR",
            )),
        }
    }
}

/// The verdict of a health check; `Unknown` means never checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPERCASE")]
pub enum HealthStatus {
    /// AMC answered and the instance is usable.
    Healthy,
    /// AMC answered and the answer is bad (403/404, not COMPLETED).
    Unhealthy,
    /// No usable answer (network, timeout, 5xx or 429 after retries, credentials).
    Error,
    /// Never checked.
    Unknown,
}

impl HealthStatus {
    /// The displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
            HealthStatus::Error => "ERROR",
            HealthStatus::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HealthStatus {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "HEALTHY" => Ok(Self::Healthy),
            "UNHEALTHY" => Ok(Self::Unhealthy),
            "ERROR" => Ok(Self::Error),
            "UNKNOWN" => Ok(Self::Unknown),
            _ => Err(InvalidValue::new(
                "health",
                "must be one of HEALTHY, UNHEALTHY, ERROR, UNKNOWN",
            )),
        }
    }
}

/// Checks a free-text field: trimmed, 1..=`max` characters, no control characters.
pub fn clean_text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidValue> {
    let v = value.trim();
    if v.is_empty() {
        return Err(InvalidValue::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(InvalidValue::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() || is_invisible_format(c)) {
        return Err(InvalidValue::new(
            field,
            "must not contain control characters or bidirectional marks",
        ));
    }
    Ok(v.to_owned())
}

/// Whether `c` must never reach a terminal as it is: a C0 or C1 control
/// (ESC, CSI, OSC, BEL, CR, LF, …), DEL, or a character that reorders or
/// hides text.
pub fn is_hostile_char(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Text from outside (a server's answer, a stored or configured string)
/// made safe to show: every [`is_hostile_char`] becomes a visible escape
/// (`\u{1b}`, `\n`), so it can neither move the cursor, retitle the window,
/// forge a line nor reorder what follows. Text without one is returned as is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_hostile_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hostile_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// [`printable`] for text that may keep its line breaks (multi-line
/// messages on stderr): only `\n` is let through.
pub fn printable_lines(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_hostile_char(c)) {
        return text.into();
    }
    let lines: Vec<std::borrow::Cow<'_, str>> = text.split('\n').map(printable).collect();
    lines.join("\n").into()
}

/// Unicode characters that reorder or hide text (every Bidi_Control
/// character, the Arabic letter mark U+061C included; zero-width and
/// invisible marks), or split a one-line field into lines a reader does
/// not expect (line and paragraph separators, which terminals, JSON
/// viewers and log tools may show as line breaks).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}'
        | '\u{3164}'
        | '\u{FFA0}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// Longest instance or account name.
pub const MAX_NAME: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1000;
/// Longest brand name.
pub const MAX_BRAND: usize = 100;
/// Most brands on one instance.
pub const MAX_BRANDS: usize = 100;

/// A validated instance or account name.
/// A name shaped like a UUID is refused: references look UUIDs up as row
/// ids first, so such a name could never be used to pick its row, and it
/// would read as another row's id.
pub fn parse_name(field: &'static str, value: &str) -> Result<String, InvalidValue> {
    let name = clean_text(field, value, MAX_NAME)?;
    if Uuid::parse_str(&name).is_ok() {
        return Err(InvalidValue::new(
            field,
            "must not look like a UUID (those are row ids)",
        ));
    }
    Ok(name)
}

/// A validated description.
pub fn parse_description(value: &str) -> Result<String, InvalidValue> {
    clean_text("description", value, MAX_DESCRIPTION)
}

/// A validated, de-duplicated brand list, order kept.
///
/// The count rule comes first: the list is refused as soon as it holds more
/// than [`MAX_BRANDS`] distinct brands, so a list of 100,000 costs no more
/// than one of 101, and duplicates are found in a set, not by rescanning.
pub fn parse_brands<S: AsRef<str>>(values: &[S]) -> Result<Vec<String>, InvalidValue> {
    let too_many =
        || InvalidValue::new("brand", format!("at most {MAX_BRANDS} brands per instance"));
    let mut out: Vec<String> = Vec::with_capacity(values.len().min(MAX_BRANDS + 1));
    let mut seen = std::collections::HashSet::with_capacity(values.len().min(MAX_BRANDS + 1));
    for v in values {
        // Distinct values beyond the limit fail whatever their content.
        if seen.len() >= MAX_BRANDS && !seen.contains(v.as_ref().trim()) {
            return Err(too_many());
        }
        let b = clean_text("brand", v.as_ref(), MAX_BRAND)?;
        if seen.insert(b.clone()) {
            out.push(b);
        }
    }
    Ok(out)
}

/// Checks an optional advertiser ID: letters, digits, `-`, `_`, at most 64.
pub fn parse_advertiser_id(v: &str) -> std::result::Result<Option<String>, InvalidValue> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(Some(v.to_owned()))
    } else {
        Err(InvalidValue::new(
            "advertiser_id",
            "must be up to 64 letters, digits, '-' or '_'",
        ))
    }
}

/// The current time, at the store's precision.
pub fn now() -> DateTime<Utc> {
    let t = crate::clock::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The store's and the JSON output's timestamp format.
pub fn fmt_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An empty bucket for every UTC day from `since`'s to `now`'s, keyed
/// `YYYY-MM-DD` (so the map iterates oldest first). The per-day reports list
/// the days without activity too, and both store backends must agree on
/// which days those are, whatever their SQL makes of a timestamp.
pub(crate) fn day_buckets<T: Default>(
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> BTreeMap<String, T> {
    let mut days = BTreeMap::new();
    let mut day = since.date_naive();
    while day <= now.date_naive() {
        days.insert(day.to_string(), T::default());
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    days
}

/// Reads a timestamp as the store and the JSON output write it (any RFC 3339
/// offset is taken to UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Timestamps in JSON and CSV: `serialize_with` helpers printing
/// [`fmt_time`].
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// A timestamp.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::fmt_time(t))
    }

    /// A timestamp that may be missing (`null`).
    pub fn option<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids() {
        assert!(InstanceId::parse("amcibersblt").unwrap().has_usual_shape());
        assert!(!InstanceId::parse("my-test-1").unwrap().has_usual_shape());
        for bad in [
            "",
            "ab",
            "-abc",
            "AMCIBERSBLT",
            "amc ibers",
            "amc;drop",
            &"a".repeat(65),
        ] {
            assert!(InstanceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entity_ids() {
        assert!(EntityId::parse("ENTITY1AA1AA11AAA1").is_ok());
        for bad in [
            "ENTITY12345",
            "entity1AA1AA11AAA1",
            "ENTITY1AA1-AA11",
            "1AA1AA11AAA1",
        ] {
            assert!(EntityId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn countries() {
        assert_eq!(
            Country::parse("de").unwrap().marketplace_id(),
            "A1PA6795UKMFR9"
        );
        assert_eq!(Country::parse("GB").unwrap().code(), "UK");
        assert!(Country::parse("XX").is_err());
    }

    #[test]
    fn status_transitions() {
        use HealthStatus::*;
        use InstanceStatus::*;
        let table = [
            (Pending, Healthy, Active),
            (InstanceStatus::Error, Healthy, Active),
            (Active, Healthy, Active),
            (Pending, Unhealthy, InstanceStatus::Error),
            (Active, Unhealthy, InstanceStatus::Error),
            (Pending, HealthStatus::Error, InstanceStatus::Error),
            (Active, HealthStatus::Error, InstanceStatus::Error),
            (
                InstanceStatus::Error,
                HealthStatus::Error,
                InstanceStatus::Error,
            ),
            (Inactive, Healthy, Inactive),
            (Inactive, Unhealthy, Inactive),
            (Inactive, HealthStatus::Error, Inactive),
        ];
        for (from, outcome, to) in table {
            assert_eq!(from.after_check(outcome), to, "{from} + {outcome}");
        }
    }

    #[test]
    fn text_fields() {
        assert_eq!(parse_name("name", "  Acme US ").unwrap(), "Acme US");
        assert!(parse_name("name", "a\u{0}b").is_err());
        assert!(parse_name("name", "evil\u{202E}txt").is_err());
        for hidden in ['\u{061C}', '\u{2028}', '\u{2029}', '\u{2060}', '\u{180E}'] {
            assert!(
                parse_name("name", &format!("a{hidden}b")).is_err(),
                "{hidden:?}"
            );
        }
        assert!(parse_name("name", "alm\u{061C}txt").is_err());
        assert!(parse_name("name", &"x".repeat(129)).is_err());
        assert_eq!(parse_brands(&["A", "B", "A"]).unwrap(), vec!["A", "B"]);
    }
}
