//! Who may do what to an instance: the roles a user can hold on one, the
//! actions commands take, and the one table that joins them.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the acting user is to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Made it (or imported or discovered it): everything.
    Owner,
    /// Shared with the operator role: runs it day to day.
    Operator,
    /// Shared with the viewer role: looks only.
    Viewer,
    /// An administrator of the store acting on someone else's instance:
    /// everything, as the owner.
    Admin,
}

/// The roles an owner can share an instance with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ShareRole {
    /// Show, list, history, status, report, usage.
    Viewer,
    /// What a viewer may, and test, health check, activate and deactivate,
    /// brands, and edit the description.
    Operator,
}

impl ShareRole {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareRole::Viewer => "viewer",
            ShareRole::Operator => "operator",
        }
    }

    /// The stored name read back; `None` for anything else.
    pub fn parse(s: &str) -> Option<ShareRole> {
        match s {
            "viewer" => Some(ShareRole::Viewer),
            "operator" => Some(ShareRole::Operator),
            _ => None,
        }
    }
}

impl From<ShareRole> for Role {
    fn from(r: ShareRole) -> Role {
        match r {
            ShareRole::Viewer => Role::Viewer,
            ShareRole::Operator => Role::Operator,
        }
    }
}

impl Role {
    /// The displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may take `action`: the one table of who may do
    /// what, which every command consults before it touches an instance.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner | Role::Admin => true,
            Role::Operator => matches!(
                action,
                Show | History | Usage | Test | Check | SetState | Brands | EditDescription
            ),
            Role::Viewer => matches!(action, Show | History | Usage),
        }
    }

    /// The least role that allows `action`, for the error that refuses it.
    pub fn needed_for(action: Action) -> Role {
        [Role::Viewer, Role::Operator]
            .into_iter()
            .find(|r| r.allows(action))
            .unwrap_or(Role::Owner)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a command does to one instance, as far as permission goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read it: `instance show`, `brand list INSTANCE`, its line in lists,
    /// status and report.
    Show,
    /// Read its health history.
    History,
    /// Read its usage figures and executions.
    Usage,
    /// Call AMC for it without changing it: `instance test`,
    /// `instance advertisers`, `usage sync`.
    Test,
    /// Health-check it (the result is stored).
    Check,
    /// Activate or deactivate it.
    SetState,
    /// Change its brands.
    Brands,
    /// Change its description and nothing else.
    EditDescription,
    /// Change anything else of it: name, region, account, settings.
    Edit,
    /// Delete it.
    Delete,
    /// Export it for import elsewhere.
    Export,
    /// Share it, unshare it, see who has access.
    Share,
}

/// One user's access to an instance, as `instance access` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// The user's name.
    pub user: String,
    /// Their role (the owner is listed with [`Role::Owner`]).
    pub role: Role,
    /// Since when (the instance's creation for its owner).
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub since: DateTime<Utc>,
    /// Who shared it (`None` for the owner).
    pub granted_by: Option<String>,
}

/// What `instance share` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareChange {
    /// The user had no access; now has the role.
    Added,
    /// The user had this other role.
    Changed(ShareRole),
    /// The user already had the role.
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The roles of the team store's contract, action by action.
    #[test]
    fn who_may_do_what() {
        use Action::*;
        let all = [
            Show,
            History,
            Usage,
            Test,
            Check,
            SetState,
            Brands,
            EditDescription,
            Edit,
            Delete,
            Export,
            Share,
        ];
        let viewer = [Show, History, Usage];
        let operator = [
            Show,
            History,
            Usage,
            Test,
            Check,
            SetState,
            Brands,
            EditDescription,
        ];
        for action in all {
            assert!(Role::Owner.allows(action), "{action:?}");
            assert!(Role::Admin.allows(action), "{action:?}");
            assert_eq!(
                Role::Operator.allows(action),
                operator.contains(&action),
                "{action:?}"
            );
            assert_eq!(
                Role::Viewer.allows(action),
                viewer.contains(&action),
                "{action:?}"
            );
        }
        assert_eq!(Role::needed_for(Show), Role::Viewer);
        assert_eq!(Role::needed_for(Check), Role::Operator);
        assert_eq!(Role::needed_for(Delete), Role::Owner);
    }
}
