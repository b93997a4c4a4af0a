//! The controller's actions and waits in words a person reads, and as stable JSON steps (pure).
//!
//! Role template ids are shown by their catalog names; relationship and group ids verbatim.

use super::simulate::End;
use crate::api::RoleCatalog;
use crate::controllers::gdap_relationship::plan::{Action, Waiting};
use crate::controllers::gdap_relationship::status::{describe_wait, refusal};
use crate::microsoft::models::gdap::AccessDetails;
use serde::Serialize;

/// One step of a plan, as `--output json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `create`, `createSuccessor`, `updateDraft`, `lock`, `setAutoExtend`, `createAssignment`,
    /// `updateAssignment`, `deleteAssignment`, `deleteDraft`, `terminate`, `recordWithdrawal` or
    /// `handOver`.
    pub action: &'static str,
    /// `+` adds, `~` changes, `-` removes.
    pub symbol: &'static str,
    /// The sentence the text output prints.
    pub description: String,
    /// Where the write goes: `microsoft` or `kubernetes` (annotations and the credentials
    /// Secret, the operator's bookkeeping).
    pub target: &'static str,
    /// The relationship it concerns, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationship_id: Option<String>,
    /// The security group it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    /// The roles it requests (catalog names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// Catalog names of role template ids (unknown ones verbatim), sorted.
pub fn role_names<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let catalog = RoleCatalog::builtin();
    let mut names: Vec<String> = ids
        .into_iter()
        .map(|id| {
            catalog
                .find(id)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| id.to_string())
        })
        .collect();
    names.sort();
    names
}

fn roles_of(details: &AccessDetails) -> Vec<String> {
    role_names(details.role_ids())
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn step(action: &'static str, symbol: &'static str, description: String) -> Step {
    Step {
        action,
        symbol,
        description,
        target: "microsoft",
        relationship_id: None,
        security_group_id: None,
        roles: None,
    }
}

impl Step {
    fn on(mut self, id: &str) -> Self {
        if !id.starts_with(super::simulate::NEW_ID) {
            self.relationship_id = Some(id.to_string());
        }
        self
    }

    fn group(mut self, id: &str) -> Self {
        self.security_group_id = Some(id.to_string());
        self
    }

    fn roles(mut self, roles: Vec<String>) -> Self {
        self.roles = Some(roles);
        self
    }

    fn kubernetes(mut self) -> Self {
        self.target = "kubernetes";
        self
    }
}

/// "the relationship" (the object's current one), "the new relationship "NAME"" before it
/// exists, or "relationship ID".
fn rel(id: &str, current: Option<&str>) -> String {
    if let Some(name) = id.strip_prefix(super::simulate::NEW_ID) {
        format!("the new relationship {:?}", name.trim())
    } else if current == Some(id) {
        "the relationship".into()
    } else {
        format!("relationship {id}")
    }
}

/// The step for a writing action (`None` for non-writing ones); `current` is the id of the
/// object's relationship, which the text calls "the relationship".
pub fn describe(action: &Action, current: Option<&str>) -> Option<Step> {
    let rel = |id: &str| rel(id, current);
    Some(match action {
        Action::Create { body } => {
            let roles = roles_of(&body.access_details);
            let auto = body.auto_extend_duration.as_deref().is_some_and(|a| a != "PT0S" && a != "P0D");
            step(
                "create",
                "+",
                format!(
                    "create relationship {:?} with customer {}: {}; {}, auto-extend {}; and lock it for the customer's approval",
                    body.display_name,
                    body.customer.as_ref().map(|c| c.tenant_id.as_str()).unwrap_or("(any)"),
                    roles.join(", "),
                    body.duration,
                    on_off(auto)
                ),
            )
            .roles(roles)
        }
        Action::CreateSuccessor { generation, body } => {
            let roles = roles_of(&body.access_details);
            step(
                "createSuccessor",
                "+",
                format!(
                    "start successor relationship {:?} (generation {generation}): {}; {}",
                    body.display_name,
                    roles.join(", "),
                    body.duration
                ),
            )
            .roles(roles)
        }
        Action::UpdateDraft { id, patch, .. } => {
            let roles = patch.access_details.as_ref().map(roles_of).unwrap_or_default();
            step(
                "updateDraft",
                "~",
                format!(
                    "update the unlocked {} to: {}; {}, auto-extend {}",
                    rel(id),
                    roles.join(", "),
                    patch.duration.as_deref().unwrap_or("same duration"),
                    on_off(patch.auto_extend_duration.as_deref().is_some_and(|a| a != "PT0S" && a != "P0D"))
                ),
            )
            .on(id)
            .roles(roles)
        }
        Action::Lock { id } => {
            step("lock", "~", format!("lock {} for the customer's approval", rel(id))).on(id)
        }
        Action::SetAutoExtend { id, on, .. } => step(
            "setAutoExtend",
            "~",
            format!(
                "turn auto-extend {} for {}{}",
                on_off(*on),
                rel(id),
                if *on { " (180 days at each end date)" } else { "" }
            ),
        )
        .on(id),
        Action::CreateAssignment { relationship_id, group_id, body } => {
            let roles = roles_of(&body.access_details);
            step(
                "createAssignment",
                "+",
                format!("assign security group {group_id}: {}", roles.join(", ")),
            )
            .on(relationship_id)
            .group(group_id)
            .roles(roles)
        }
        Action::UpdateAssignment { relationship_id, group_id, access_details, .. } => {
            let roles = roles_of(access_details);
            step(
                "updateAssignment",
                "~",
                format!("change the roles of security group {group_id} to: {}", roles.join(", ")),
            )
            .on(relationship_id)
            .group(group_id)
            .roles(roles)
        }
        Action::DeleteAssignment { relationship_id, assignment_id, group_id, .. } => step(
            "deleteAssignment",
            "-",
            format!("unassign security group {group_id} (access assignment {assignment_id})"),
        )
        .on(relationship_id)
        .group(group_id),
        Action::DeleteDraft { id, .. } => {
            step("deleteDraft", "-", format!("delete the unlocked {}", rel(id))).on(id)
        }
        Action::Terminate { id } => step("terminate", "-", format!("terminate {}", rel(id))).on(id),
        Action::RecordWithdrawal { record } => step(
            "recordWithdrawal",
            "~",
            format!(
                "record relationship {} (awaiting approval; Graph cannot withdraw it) on the credentials Secret, to terminate it if the customer approves",
                record.relationship_id
            ),
        )
        .on(&record.relationship_id)
        .kubernetes(),
        Action::HandOver { generation, relationship_id } => step(
            "handOver",
            "~",
            format!(
                "switch the object to successor relationship {relationship_id} (generation {generation}); its predecessor is terminated next unless renewal.keepPredecessor"
            ),
        )
        .on(relationship_id)
        .kubernetes(),
        // Bookkeeping of a create (crash safety), shown as part of the create.
        Action::RecordCreateIntent { .. } => return None,
        Action::Release(_)
        | Action::Wait(_)
        | Action::Idle
        | Action::VerifyAccess { .. }
        | Action::Refuse(_) => return None,
    })
}

/// What follows the steps, in a sentence (`None`: nothing).
pub fn what_follows(end: &End, assignments_after_approval: usize) -> Option<String> {
    match end {
        End::Idle => None,
        End::Wait(Waiting::Approval) if assignments_after_approval > 0 => Some(format!(
            "{}; once it is active, {assignments_after_approval} security group(s) are assigned",
            describe_wait(Waiting::Approval)
        )),
        End::Wait(w) => Some(describe_wait(*w).to_string()),
        End::Refuse(error) => Some(refusal(error).1),
        End::Release => Some("the object is released".into()),
        End::HandedOver => Some(
            "the successor becomes the current relationship; the plan continues from it".into(),
        ),
        End::StepLimit => Some("the plan was cut short after many steps".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::models::gdap::{AccessContainer, NewAccessAssignment};

    #[test]
    fn every_writing_action_is_described_and_waits_are_not() {
        let assign = Action::CreateAssignment {
            relationship_id: "r1".into(),
            group_id: "g1".into(),
            body: NewAccessAssignment {
                access_container: AccessContainer::security_group("g1"),
                access_details: AccessDetails::from_role_ids([
                    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
                ]),
            },
        };
        let s = describe(&assign, Some("r1")).unwrap();
        assert_eq!(
            s.description,
            "assign security group g1: Helpdesk Administrator"
        );
        assert_eq!(
            (s.action, s.symbol, s.target),
            ("createAssignment", "+", "microsoft")
        );
        assert_eq!(s.relationship_id.as_deref(), Some("r1"));
        assert!(describe(&Action::Idle, None).is_none());
        assert!(describe(&Action::Wait(Waiting::Approval), None).is_none());
        let lock = |id: &str| {
            describe(&Action::Lock { id: id.into() }, Some("r1"))
                .unwrap()
                .description
        };
        assert_eq!(
            lock("r1"),
            "lock the relationship for the customer's approval"
        );
        assert_eq!(
            lock("r2"),
            "lock relationship r2 for the customer's approval"
        );
        let new = format!("{} contoso-r1", super::super::simulate::NEW_ID);
        assert_eq!(
            lock(&new),
            "lock the new relationship \"contoso-r1\" for the customer's approval"
        );
    }
}
