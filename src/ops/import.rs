//! Instance import: a JSON or CSV file applied to the store, all or nothing.

use std::collections::HashMap;

use crate::domain::RowId;
use crate::domain::{AuditNote, ImportOutcome, ImportRow};
use crate::error::{Kind, Result};
use crate::store::Store;
use crate::transfer::{self, FileFormat};

/// Why an import file was refused as a whole: nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// `Usage` for a file that does not parse or validate, `NotFound` for
    /// rows naming accounts that do not exist and cannot be created.
    pub kind: Kind,
    /// Every problem found, each prefixed with its position in the file.
    pub problems: Vec<String>,
}

/// Parses and validates an import file's `text`; no store is needed, so a
/// bad file is refused before anything (the acting user included) is made.
pub fn parse(text: &str, format: FileFormat) -> std::result::Result<Vec<ImportRow>, Rejected> {
    transfer::parse(text, format).map_err(|problems| Rejected {
        kind: Kind::Usage,
        problems,
    })
}

/// Imports `rows` for `owner` in one transaction; with `dry_run` only the
/// counts are computed. Rows that name an unknown account without the
/// `account_name` to create it reject the whole file. A real import
/// appends the audit entry `note` makes of its counts in the same
/// transaction.
pub fn apply(
    store: &mut Store,
    owner: RowId,
    rows: &[ImportRow],
    dry_run: bool,
    note: impl Fn(&ImportOutcome) -> AuditNote + Sync,
) -> Result<std::result::Result<ImportOutcome, Rejected>> {
    // Each account is looked up once, however many rows name it.
    let mut known: HashMap<&str, bool> = HashMap::new();
    let mut unknown = Vec::new();
    for r in rows.iter().filter(|r| r.new_account.is_none()) {
        let entity = r.account_entity.as_str();
        let exists = match known.get(entity) {
            Some(&exists) => exists,
            None => {
                let exists = store.account_by_entity(entity)?.is_some();
                known.insert(entity, exists);
                exists
            }
        };
        if !exists {
            unknown.push(format!(
                "{}: unknown account {entity}: instance {} has no account_name to create it",
                r.position, r.instance.instance_id
            ));
        }
    }
    if !unknown.is_empty() {
        return Ok(Err(Rejected {
            kind: Kind::NotFound,
            problems: unknown,
        }));
    }
    Ok(Ok(store.import(owner, rows, dry_run, &note)?))
}

/// The summary of an import for the audit trail: `12 rows: 3 created, 2
/// updated, 7 unchanged` (and the accounts it created, if any).
pub fn summary(outcome: &ImportOutcome) -> String {
    let rows = outcome.created + outcome.updated + outcome.unchanged;
    let mut text = format!(
        "{rows} rows: {} created, {} updated, {} unchanged",
        outcome.created, outcome.updated, outcome.unchanged
    );
    if outcome.accounts_created > 0 {
        text.push_str(&format!(
            ", {} account(s) created",
            outcome.accounts_created
        ));
    }
    text
}
