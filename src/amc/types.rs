//! The AMC API's JSON, decoded leniently: unknown fields are ignored and
//! everything but the identifiers is optional, so a field Amazon adds or
//! drops does not break discovery. Identifiers stay plain strings here; the
//! caller validates them into [`InstanceId`]/[`EntityId`] one row at a time,
//! so one odd row does not sink a whole listing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{EntityId, InstanceId, InvalidValue};

/// One AMC account (`GET /amc/accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcAccount {
    /// The account's entity ID (the advertiser ID of later calls).
    pub account_id: String,
    /// Its display name.
    #[serde(default)]
    pub account_name: Option<String>,
    /// The marketplace it belongs to.
    #[serde(default)]
    pub marketplace_id: Option<String>,
}

impl AmcAccount {
    /// The entity ID, validated.
    pub fn entity_id(&self) -> Result<EntityId, InvalidValue> {
        EntityId::parse(&self.account_id)
    }
}

/// One page of `GET /amc/accounts`. A page without its array is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountsPage {
    #[serde(default)]
    pub amc_accounts: Vec<AmcAccount>,
    #[serde(default)]
    pub next_token: Option<String>,
}

/// A page of a listing: its rows and the token of the next page.
pub(crate) trait Page: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

impl Page for AccountsPage {
    type Item = AmcAccount;
    fn into_parts(self) -> (Vec<AmcAccount>, Option<String>) {
        (self.amc_accounts, self.next_token)
    }
}

impl Page for InstancesPage {
    type Item = AmcInstance;
    fn into_parts(self) -> (Vec<AmcInstance>, Option<String>) {
        (self.instances, self.next_token)
    }
}

/// One AMC instance, from a listing or `GET /amc/instances/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmcInstance {
    /// AMC's instance ID.
    pub instance_id: String,
    /// Its display name.
    #[serde(default)]
    pub instance_name: Option<String>,
    /// The base URL to use for this instance's calls, when AMC says.
    #[serde(default)]
    pub api_endpoint: Option<String>,
    /// `COMPLETED` once the instance is usable; other values while it is
    /// being built or after it failed. Shown to people, so made printable
    /// when decoded.
    #[serde(default, deserialize_with = "display_string")]
    pub creation_status: Option<String>,
    /// `STANDARD`, `SANDBOX`, … when given (made printable when decoded).
    #[serde(default, deserialize_with = "display_string")]
    pub instance_type: Option<String>,
    /// When AMC created it, as AMC formats it (made printable when decoded).
    #[serde(default, deserialize_with = "display_string")]
    pub creation_datetime: Option<String>,
    /// The advertiser's name as AMC knows it, when given.
    #[serde(default)]
    pub customer_canonical_name: Option<String>,
    /// The AWS account that uploads first-party data to the instance, when given.
    #[serde(default, alias = "dataUploadAwsAccountId")]
    pub data_upload_account_id: Option<String>,
}

impl AmcInstance {
    /// The instance ID, validated.
    pub fn parsed_id(&self) -> Result<InstanceId, InvalidValue> {
        InstanceId::parse(&self.instance_id)
    }

    /// Whether the instance finished creation and can be used: `COMPLETED`,
    /// or `SUCCEEDED`, the older spelling AMC still sends.
    pub fn is_completed(&self) -> bool {
        self.creation_status.as_deref().is_some_and(|s| {
            let s = s.trim();
            s.eq_ignore_ascii_case("COMPLETED") || s.eq_ignore_ascii_case("SUCCEEDED")
        })
    }
}

/// One page of `GET /amc/instances`. A page without its array is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InstancesPage {
    #[serde(default)]
    pub instances: Vec<AmcInstance>,
    #[serde(default)]
    pub next_token: Option<String>,
}

/// The body of `GET /amc/instances/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InstanceEnvelope {
    pub instance: AmcInstance,
}

/// One workflow (`GET /amc/reporting/{id}/workflows`); only its ID matters
/// to a deep health check, which wants to know the reporting API answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// The workflow's ID.
    #[serde(default)]
    pub workflow_id: Option<String>,
}

/// The body of `GET /amc/reporting/{id}/workflows`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WorkflowsPage {
    #[serde(default)]
    pub workflows: Vec<Workflow>,
}

/// An error body from AMC. Its shape varies between services, so every
/// field is optional and numbers are accepted where strings are expected.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message_subject: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: Option<String>,
}

/// The body of a Login-with-Amazon token response, success or error.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenBody {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Longest status-like text kept from an answer.
const MAX_DISPLAY_TEXT: usize = 64;

/// A string that will be shown as it is: [`lenient_string`], with control
/// and bidi characters escaped and cut to [`MAX_DISPLAY_TEXT`] characters,
/// so that no answer can reach a terminal, a table or the store raw.
fn display_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(lenient_string(d)?
        .map(|s| super::error::shorten(&crate::domain::printable(&s), MAX_DISPLAY_TEXT)))
}

/// A string, or any other JSON scalar rendered as text; `null` is `None`.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_decode_leniently() {
        let page: InstancesPage = serde_json::from_str(
            r#"{"instances":[{"instanceId":"amcibersblt","creationStatus":"COMPLETED","extra":1},
                             {"instanceId":"amcxxxx0001","apiEndpoint":null}],"nextToken":"t1"}"#,
        )
        .unwrap();
        assert_eq!(page.instances.len(), 2);
        assert!(page.instances[0].is_completed());
        assert!(!page.instances[1].is_completed());
        assert_eq!(page.next_token.as_deref(), Some("t1"));
    }

    #[test]
    fn error_bodies_decode_leniently() {
        let e: ErrorBody =
            serde_json::from_str(r#"{"code":400,"details":"bad","statusReason":null}"#).unwrap();
        assert_eq!(e.code.as_deref(), Some("400"));
        assert_eq!(e.details.as_deref(), Some("bad"));
        assert_eq!(e.status_reason, None);
        let e: ErrorBody = serde_json::from_str(
            r#"{"message":"Forbidden","messageSubject":"Instance","requestId":"R1"}"#,
        )
        .unwrap();
        assert_eq!(e.message_subject.as_deref(), Some("Instance"));
        assert_eq!(e.request_id.as_deref(), Some("R1"));
    }

    #[test]
    fn list_pages_without_their_array_are_empty() {
        let page: InstancesPage = serde_json::from_str("{}").unwrap();
        assert!(page.instances.is_empty() && page.next_token.is_none());
        let page: AccountsPage = serde_json::from_str(r#"{"nextToken":null}"#).unwrap();
        assert!(page.amc_accounts.is_empty());
    }

    #[test]
    fn succeeded_means_ready() {
        let i: AmcInstance =
            serde_json::from_str(r#"{"instanceId":"amcibersblt","creationStatus":"SUCCEEDED"}"#)
                .unwrap();
        assert!(i.is_completed());
    }
}
