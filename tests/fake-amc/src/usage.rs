//! The reporting and linked-advertiser calls: workflows, workflow
//! executions, schedules and the advertisers linked to an instance.
//!
//! Each instance's lists are scriptable (see [`FakeAmc::set_usage`]) and
//! served as AMC serves them: paged with `limit` (1–100) and `nextToken`,
//! executions filtered by `minCreationTime` (or `workflowId`, one of which
//! is required, else 400). Items are kept as JSON values so a test can serve
//! anything, odd statuses and missing timestamps included. Pages can be
//! told to misbehave one by one ([`FakeAmc::fail_page`],
//! [`FakeAmc::repeat_token`]).

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::{Value, json};

use crate::{
    Answer, FakeAmc, Fault, Flow, Instance, Route, Shared, State, amc_error, apply_fault,
    json_answer,
};

/// One of the paged lists of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsageList {
    /// `GET /amc/reporting/{id}/workflows`.
    Workflows,
    /// `GET /amc/reporting/{id}/workflowExecutions`.
    Executions,
    /// `GET /amc/reporting/{id}/schedules`.
    Schedules,
    /// `GET /amc/instances/{id}/advertisers`.
    Advertisers,
}

impl UsageList {
    fn key(self) -> &'static str {
        match self {
            UsageList::Workflows => "workflows",
            UsageList::Executions => "executions",
            UsageList::Schedules => "schedules",
            UsageList::Advertisers => "advertisers",
        }
    }
}

/// What one instance reports. An instance that was never given one answers
/// with one workflow (`wf-1`), no executions, no schedules, and its own
/// account as the one linked advertiser.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Workflow objects (`{"workflowId","sqlQuery",…}`).
    pub workflows: Vec<Value>,
    /// Execution objects, in the order served (see [`execution`]).
    pub executions: Vec<Value>,
    /// Schedule objects (see [`schedule`]).
    pub schedules: Vec<Value>,
    /// Linked advertisers (`{"id","name","type","marketplaceId"}`).
    pub advertisers: Vec<Value>,
}

/// Scripted trouble with one page of a list.
#[derive(Clone, Debug)]
pub(crate) enum PageTrouble {
    /// Answer with this fault instead of the page.
    Fault(Fault),
    /// Serve the page, but hand back the `nextToken` that asked for it.
    RepeatToken,
}

/// The per-instance usage state kept in the server's state.
#[derive(Default)]
pub(crate) struct UsageState {
    pub(crate) lists: HashMap<String, Usage>,
    /// (instance, list, 0-based page) → trouble; standing until cleared.
    pub(crate) pages: HashMap<(String, UsageList, usize), PageTrouble>,
    /// Extra or replaced fields of an instance's JSON.
    pub(crate) details: HashMap<String, serde_json::Map<String, Value>>,
}

/// Merges the fields set with [`FakeAmc::set_instance_details`] into an instance's JSON.
pub(crate) fn add_details(st: &State, instance_id: &str, v: &mut Value) {
    if let (Some(extra), Some(obj)) = (st.usage.details.get(instance_id), v.as_object_mut()) {
        for (k, x) in extra {
            obj.insert(k.clone(), x.clone());
        }
    }
}

/// An execution as AMC lists it. `create`/`updated` are timestamps like
/// `2026-11-24T18:00:00Z`; `category` is `AD_HOC`, `SCHEDULED`, ….
pub fn execution(
    id: &str,
    workflow_id: &str,
    status: &str,
    create: &str,
    updated: &str,
    category: &str,
) -> Value {
    json!({"workflowExecutionId": id, "workflowId": workflow_id, "status": status,
           "createTime": create, "lastUpdatedTime": updated, "executionCategory": category})
}

/// A schedule as AMC lists it.
pub fn schedule(id: &str, workflow_id: &str, period: &str, hour_utc: u8, enabled: bool) -> Value {
    json!({"scheduleId": id, "workflowId": workflow_id, "aggregationPeriod": period,
           "aggregationHourUtc": hour_utc, "scheduleEnabled": enabled})
}

/// A workflow as AMC lists it.
pub fn workflow(id: &str) -> Value {
    json!({"workflowId": id, "sqlQuery": format!("SELECT count(*) FROM impressions -- {id}")})
}

/// A linked advertiser.
pub fn advertiser(id: &str, name: &str, marketplace_id: &str) -> Value {
    json!({"id": id, "name": name, "type": "SPONSORED_ADS", "marketplaceId": marketplace_id})
}

impl FakeAmc {
    /// Replaces everything `instance_id` reports.
    pub fn set_usage(&self, instance_id: &str, usage: Usage) {
        self.shared
            .lock()
            .usage
            .lists
            .insert(instance_id.to_owned(), usage);
    }

    /// Changes what `instance_id` reports in place (starting from an empty
    /// [`Usage`] when it had none): executions that change state, new ones…
    pub fn update_usage(&self, instance_id: &str, f: impl FnOnce(&mut Usage)) {
        let mut st = self.shared.lock();
        f(st.usage.lists.entry(instance_id.to_owned()).or_default());
    }

    /// Page `page` (0-based) of that list of `instance_id` answers with
    /// `fault` from now on, after the header checks.
    pub fn fail_page(&self, instance_id: &str, list: UsageList, page: usize, fault: Fault) {
        self.shared.lock().usage.pages.insert(
            (instance_id.to_owned(), list, page),
            PageTrouble::Fault(fault),
        );
    }

    /// Page `page` (1 or more) of that list answers with the very
    /// `nextToken` that asked for it: a client without a guard loops.
    pub fn repeat_token(&self, instance_id: &str, list: UsageList, page: usize) {
        self.shared.lock().usage.pages.insert(
            (instance_id.to_owned(), list, page),
            PageTrouble::RepeatToken,
        );
    }

    /// Fields to add to (or replace in) the instance's JSON in listings and
    /// `GET /amc/instances/{id}`, like
    /// `{"instanceType":"SANDBOX","customerCanonicalName":"Acme"}`.
    pub fn set_instance_details(&self, instance_id: &str, fields: Value) {
        if let Value::Object(map) = fields {
            self.shared
                .lock()
                .usage
                .details
                .insert(instance_id.to_owned(), map);
        }
    }

    /// Forgets every scripted page trouble.
    pub fn clear_page_troubles(&self) {
        self.shared.lock().usage.pages.clear();
    }
}

/// Whether `s` has the `yyyy-MM-ddTHH:mm:ss` shape AMC wants.
fn is_amc_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// The answer of one of the usage routes for an instance the caller owns.
pub(crate) fn respond(
    shared: &Shared,
    st: &State,
    route: &Route,
    instance: &Instance,
    advertiser: &str,
    params: &HashMap<String, String>,
    limit: usize,
) -> Answer {
    let list = match route {
        Route::Workflows(_) => UsageList::Workflows,
        Route::Executions(_) => UsageList::Executions,
        Route::Schedules(_) => UsageList::Schedules,
        Route::Advertisers(_) => UsageList::Advertisers,
        _ => return amc_error(StatusCode::NOT_FOUND, "Resource not found"),
    };
    let default;
    let usage = match st.usage.lists.get(&instance.id) {
        Some(u) => u,
        None => {
            let marketplace = st
                .accounts
                .iter()
                .find(|a| a.id == instance.account)
                .map_or("", |a| a.marketplace.as_str());
            default = Usage {
                workflows: vec![json!({"workflowId": "wf-1", "sqlQuery": "SELECT 1"})],
                advertisers: vec![self::advertiser(
                    &instance.account,
                    &instance.name,
                    marketplace,
                )],
                ..Usage::default()
            };
            &default
        }
    };
    let items: Vec<&Value> = match list {
        UsageList::Workflows => usage.workflows.iter().collect(),
        UsageList::Schedules => usage.schedules.iter().collect(),
        UsageList::Advertisers => usage.advertisers.iter().collect(),
        UsageList::Executions => {
            let min = params.get("minCreationTime").filter(|v| !v.is_empty());
            let workflow = params.get("workflowId").filter(|v| !v.is_empty());
            if min.is_none() && workflow.is_none() {
                return amc_error(
                    StatusCode::BAD_REQUEST,
                    "minCreationTime or workflowId is required",
                );
            }
            if let Some(m) = min
                && !is_amc_time(m)
            {
                return amc_error(
                    StatusCode::BAD_REQUEST,
                    "minCreationTime must look like yyyy-MM-ddTHH:mm:ss",
                );
            }
            usage
                .executions
                .iter()
                .filter(|e| {
                    let created = e.get("createTime").and_then(Value::as_str);
                    // Rows without a creation time are served anyway: the
                    // client must cope with them.
                    let recent = match (min, created) {
                        (Some(m), Some(c)) => c.get(..19).unwrap_or(c) >= m.as_str(),
                        _ => true,
                    };
                    let of_workflow = workflow
                        .is_none_or(|w| e.get("workflowId").and_then(Value::as_str) == Some(w));
                    recent && of_workflow
                })
                .collect()
        }
    };
    let scope = format!("{advertiser}|{}|{}", instance.id, list.key());
    let (offset, token) = match params.get("nextToken").filter(|t| !t.is_empty()) {
        None => (0, None),
        Some(token) => match shared.page_offset(&scope, token) {
            Some(offset) => (offset, Some(token.clone())),
            None => return amc_error(StatusCode::BAD_REQUEST, "Invalid nextToken"),
        },
    };
    let page_no = offset / limit;
    let trouble = st
        .usage
        .pages
        .get(&(instance.id.clone(), list, page_no))
        .cloned();
    if let Some(PageTrouble::Fault(fault)) = &trouble {
        let mut ignored = None;
        if let Flow::Stop(Some(answer)) = apply_fault(fault.clone(), route, "", &mut ignored) {
            return answer;
        }
    }
    let page: Vec<&Value> = items.iter().skip(offset).take(limit).copied().collect();
    let mut body = json!({ list.key(): page });
    let end = offset.saturating_add(limit);
    match trouble {
        Some(PageTrouble::RepeatToken) if token.is_some() => {
            body["nextToken"] = Value::from(token);
        }
        _ if end < items.len() => {
            body["nextToken"] = Value::String(shared.page_token(&scope, end));
        }
        _ => {}
    }
    if list == UsageList::Advertisers {
        body["totalCount"] = Value::from(items.len());
    }
    json_answer(StatusCode::OK, &body)
}

/// A plausible body for a usage route, for [`Fault::TruncatedJson`].
pub(crate) fn sample_body(route: &Route) -> Value {
    match route {
        Route::Executions(_) => json!({"executions": [execution(
            "exec-1", "wf-1", "SUCCEEDED", "2026-11-24T18:00:00Z", "2026-11-24T18:05:00Z", "AD_HOC")]}),
        Route::Schedules(_) => {
            json!({"schedules": [schedule("sched-1", "wf-1", "DAILY", 6, true)]})
        }
        Route::Advertisers(_) => {
            json!({"advertisers": [advertiser("ENTITY1TRUNCATED", "Truncated", "ATVPDKIKX0DER")],
                   "totalCount": 1})
        }
        _ => json!({"workflows": [workflow("wf-1")]}),
    }
}
