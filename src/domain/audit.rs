//! The audit trail: one entry for every command that changed the store.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::RowId;

/// What kind of thing an audit entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditObject {
    /// An instance (its brands, state, shares included).
    Instance,
    /// An account.
    Account,
    /// A user of the store.
    User,
    /// A login (a profile's credentials).
    Login,
    /// Many instances or accounts at once: an import, a discovery, a key
    /// rotation.
    Store,
}

impl AuditObject {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditObject::Instance => "instance",
            AuditObject::Account => "account",
            AuditObject::User => "user",
            AuditObject::Login => "login",
            AuditObject::Store => "store",
        }
    }

    /// The stored name read back.
    pub fn parse(s: &str) -> Option<AuditObject> {
        [
            AuditObject::Instance,
            AuditObject::Account,
            AuditObject::User,
            AuditObject::Login,
            AuditObject::Store,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An entry about to be written: who did what to which object. The
/// summary says what changed and never holds a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditNote {
    /// The acting user's name.
    pub actor: String,
    /// The command, as typed without its arguments: `instance edit`.
    pub command: String,
    /// What kind of object.
    pub object_kind: AuditObject,
    /// The object's row id (an instance's or account's), when it has one.
    pub object_id: Option<String>,
    /// The object as people name it: the AMC instance ID, the entity ID,
    /// a user's name, a profile.
    pub object_name: Option<String>,
    /// The instance the entry is about, which decides who may read it.
    pub instance: Option<RowId>,
    /// What changed.
    pub summary: String,
}

/// An entry of the trail, as `audit list` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Its number: entries are numbered in the order they were written.
    pub id: i64,
    /// When.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// The command.
    pub command: String,
    /// What kind of object.
    pub object_kind: AuditObject,
    /// The object's row id.
    pub object_id: Option<String>,
    /// The object's name.
    pub object_name: Option<String>,
    /// What changed.
    pub summary: String,
}

/// Which entries `audit list` shows; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only about this instance.
    pub instance: Option<RowId>,
    /// Only by this user.
    pub actor: Option<String>,
    /// Only written since then.
    pub since: Option<DateTime<Utc>>,
}

impl AuditNote {
    /// An entry by `actor` about the instance `instance`.
    pub fn instance(
        actor: &str,
        command: &str,
        instance: &super::Instance,
        summary: impl Into<String>,
    ) -> AuditNote {
        AuditNote {
            actor: actor.to_owned(),
            command: command.to_owned(),
            object_kind: AuditObject::Instance,
            object_id: Some(instance.id.to_string()),
            object_name: Some(instance.instance_id.to_string()),
            instance: Some(instance.id),
            summary: summary.into(),
        }
    }

    /// An entry by `actor` about anything but one instance: `object_id` is
    /// the row id, when the object has one; `object_name` what people call it.
    pub fn other(
        actor: &str,
        command: &str,
        kind: AuditObject,
        object_id: Option<String>,
        object_name: Option<String>,
        summary: impl Into<String>,
    ) -> AuditNote {
        AuditNote {
            actor: actor.to_owned(),
            command: command.to_owned(),
            object_kind: kind,
            object_id,
            object_name,
            instance: None,
            summary: summary.into(),
        }
    }
}
