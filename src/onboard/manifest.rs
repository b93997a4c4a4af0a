//! One exported manifest from one relationship as Microsoft reports it (pure).
//!
//! Contract: the manifest adopts the relationship (`spec.relationshipId`, and its display name so
//! the operator's idempotency key is Microsoft's), states what exists — roles by catalog name,
//! duration in days, auto-extend, the live access assignments with their roles spelled as in
//! `spec.roles` — so the operator, reading it back, finds nothing to change. Roles the catalog
//! does not know, or marks "not for use", are written as their GUIDs with a warning (`validate`
//! will name them). Output is deterministic: roles sorted by name, assignments by group id.

use super::names;
use crate::api::{
    AccessAssignmentSpec, CustomerRef, DayDuration, DeletionPolicy, GdapRelationship,
    GdapRelationshipSpec, Guid, IsoDays, ManagementPolicy, RelationshipTerms, RoleCatalog,
    SecretRef, roles::GdapSupport,
};
use crate::microsoft::models::gdap::{
    AccessAssignment, AccessAssignmentStatus as AssignmentState, Relationship,
    RelationshipStatus as State,
};
use std::collections::BTreeMap;

/// The label exported objects carry with the customer's tenant id.
pub const CUSTOMER_LABEL: &str = "gdap.io/customer-tenant-id";

/// How the manifests are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// `Observe` (default: adopt and report only) or `Manage` (take over).
    pub management: ManagementPolicy,
    /// What deleting the object does (default `Orphan`: nothing in Microsoft).
    pub deletion: DeletionPolicy,
    /// `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// `spec.credentialsRef.name`, when set.
    pub credentials_secret: Option<String>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            management: ManagementPolicy::Observe,
            deletion: DeletionPolicy::Orphan,
            namespace: None,
            credentials_secret: None,
        }
    }
}

/// One exported object and where it goes.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The customer's folder (`--out-dir`).
    pub folder: String,
    /// The object.
    pub object: GdapRelationship,
    /// Microsoft's status of the relationship.
    pub state: String,
    /// A comment line for the file: what was exported.
    pub comment: String,
    /// What a person should know (unknown roles, converted durations).
    pub warnings: Vec<String>,
}

impl Exported {
    /// The file name in its folder.
    pub fn file_name(&self) -> String {
        format!(
            "{}.yaml",
            self.object
                .metadata
                .name
                .as_deref()
                .unwrap_or("relationship")
        )
    }
}

/// Ended or ending: skipped unless asked (terminated, expired, and the states on the way there).
pub fn is_ended(status: Option<&State>) -> bool {
    matches!(
        status,
        Some(
            State::Terminated
                | State::Expired
                | State::Expiring
                | State::Terminating
                | State::TerminationRequested
        )
    )
}

/// Live access assignments (not being deleted or gone).
pub fn live_assignments(assignments: &[AccessAssignment]) -> Vec<&AccessAssignment> {
    assignments
        .iter()
        .filter(|a| {
            !matches!(
                a.status,
                Some(AssignmentState::Deleting | AssignmentState::Deleted)
            )
        })
        .collect()
}

/// The manifest for `rel` (which has a customer) with its live `assignments`.
pub fn manifest(
    rel: &Relationship,
    customer_tenant_id: &str,
    customer_name: Option<&str>,
    assignments: &[&AccessAssignment],
    options: &ManifestOptions,
) -> Exported {
    let mut warnings = Vec::new();
    let mut role_names = RoleNames::default();
    let mut roles: Vec<String> = rel
        .access_details
        .role_ids()
        .into_iter()
        .map(|id| role_names.name(id, &rel.display_name, &mut warnings))
        .collect();
    roles.sort_by_key(|r| r.to_lowercase());
    roles.dedup();
    let mut access_assignments: Vec<AccessAssignmentSpec> = assignments
        .iter()
        .map(|a| {
            let mut roles: Vec<String> = a
                .access_details
                .role_ids()
                .into_iter()
                .map(|id| role_names.name(id, &rel.display_name, &mut warnings))
                .collect();
            roles.sort_by_key(|r| r.to_lowercase());
            roles.dedup();
            AccessAssignmentSpec {
                security_group_id: Guid(
                    a.access_container.access_container_id.to_ascii_lowercase(),
                ),
                roles,
            }
        })
        .collect();
    access_assignments.sort_by(|a, b| a.security_group_id.0.cmp(&b.security_group_id.0));
    let duration = day_duration(&rel.duration, &rel.display_name, &mut warnings);
    let spec = GdapRelationshipSpec {
        customer: CustomerRef {
            tenant_id: Guid(customer_tenant_id.to_ascii_lowercase()),
        },
        relationship_id: Some(rel.id.clone()),
        terms: RelationshipTerms {
            credentials_ref: options
                .credentials_secret
                .clone()
                .map(|name| SecretRef { name }),
            display_name: Some(rel.display_name.clone()),
            roles,
            duration,
            auto_extend: rel
                .auto_extend_duration
                .as_deref()
                .is_some_and(|d| d != "PT0S" && d != "P0D"),
            access_assignments,
            renewal: None,
            deletion_policy: options.deletion,
            management_policy: options.management,
        },
    };
    let name = names::object_name(&rel.display_name, &rel.id);
    let mut object = GdapRelationship::new(&name, spec);
    object.metadata.namespace = options.namespace.clone();
    object.metadata.labels = Some(BTreeMap::from([(
        CUSTOMER_LABEL.to_string(),
        customer_tenant_id.to_ascii_lowercase(),
    )]));
    let status = rel
        .status
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let comment = format!(
        "relationship {} ({:?}), {status}, customer {} ({})",
        rel.id,
        rel.display_name,
        customer_name.unwrap_or("name unknown"),
        customer_tenant_id
    );
    Exported {
        folder: names::customer_folder(customer_name, customer_tenant_id),
        object,
        state: status,
        comment,
        warnings,
    }
}

/// Role ids to catalog names; each unknown id is warned about once per manifest.
#[derive(Default)]
struct RoleNames {
    warned: std::collections::HashSet<String>,
}

impl RoleNames {
    fn name(&mut self, id: &str, relationship: &str, warnings: &mut Vec<String>) -> String {
        let id = id.to_ascii_lowercase();
        match RoleCatalog::builtin().find(&id) {
            Some(role) if role.gdap_support != GdapSupport::DoNotUse => role.name.clone(),
            found => {
                if self.warned.insert(id.clone()) {
                    let why = match found {
                        Some(role) => format!("{} is a role Microsoft says not to use", role.name),
                        None => "it is not in the role catalog".to_string(),
                    };
                    warnings.push(format!(
                        "relationship {relationship:?}: role {id} written as its GUID because {why}; `validate` refuses it until the role is removed or the catalog knows it"
                    ));
                }
                id
            }
        }
    }
}

/// `P<n>D`; other ISO-8601 forms Graph may return (`P2Y`, `P1Y6M`, `P4W`) are converted with
/// 365-day years and 30-day months, with a warning.
fn day_duration(text: &str, relationship: &str, warnings: &mut Vec<String>) -> DayDuration {
    if text.parse::<IsoDays>().is_ok() {
        return DayDuration(text.to_string());
    }
    let days = convert_days(text);
    let written = format!("P{}D", days.unwrap_or(730));
    warnings.push(match days {
        Some(_) => format!("relationship {relationship:?}: duration {text} written as {written}"),
        None => format!(
            "relationship {relationship:?}: duration {text:?} is not an ISO-8601 day count; written as {written}, check it"
        ),
    });
    DayDuration(written)
}

fn convert_days(text: &str) -> Option<u32> {
    let rest = text.strip_prefix('P')?;
    let (mut days, mut number) = (0u32, String::new());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u32 = number.parse().ok()?;
        number.clear();
        days += n * match c {
            'Y' => 365,
            'M' => 30,
            'W' => 7,
            'D' => 1,
            _ => return None,
        };
    }
    (number.is_empty() && (1..=730).contains(&days)).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::models::gdap::{AccessContainer, AccessDetails};

    const ID: &str = "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836";
    const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

    fn relationship(roles: &[&str], duration: &str) -> Relationship {
        serde_json::from_value(serde_json::json!({
            "id": ID, "displayName": "Contoso - Helpdesk", "duration": duration,
            "autoExtendDuration": "P180D", "status": "active",
            "customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
            "accessDetails": {"unifiedRoles": roles.iter().map(|r| serde_json::json!({"roleDefinitionId": r})).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    fn assignment(group: &str, roles: &[&str], status: &str) -> AccessAssignment {
        serde_json::from_value(serde_json::json!({
            "id": format!("a-{group}"), "status": status,
            "accessContainer": AccessContainer::security_group(group),
            "accessDetails": AccessDetails::from_role_ids(roles.iter().copied()),
        }))
        .unwrap()
    }

    #[test]
    fn a_manifest_adopts_and_states_what_exists() {
        let rel = relationship(&[USER_ADMIN, HELPDESK], "P730D");
        let all = [
            assignment(
                "BBBBBBBB-0000-4000-8000-000000000002",
                &[USER_ADMIN],
                "active",
            ),
            assignment(
                "aaaaaaaa-0000-4000-8000-000000000001",
                &[HELPDESK, USER_ADMIN],
                "active",
            ),
            assignment(
                "cccccccc-0000-4000-8000-000000000003",
                &[HELPDESK],
                "deleted",
            ),
        ];
        let live = live_assignments(&all);
        let out = manifest(
            &rel,
            "11111111-2222-3333-4444-555555555555",
            Some("Contoso Ltd"),
            &live,
            &ManifestOptions::default(),
        );
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(out.folder, "contoso-ltd-11111111");
        assert_eq!(out.file_name(), "contoso-helpdesk-5d027261.yaml");
        let spec = &out.object.spec;
        assert_eq!(spec.relationship_id.as_deref(), Some(ID));
        assert_eq!(spec.display_name.as_deref(), Some("Contoso - Helpdesk"));
        assert_eq!(spec.roles, ["Helpdesk Administrator", "User Administrator"]);
        assert!(spec.auto_extend);
        assert_eq!(spec.management_policy, ManagementPolicy::Observe);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Orphan);
        let groups: Vec<_> = spec
            .access_assignments
            .iter()
            .map(|a| a.security_group_id.0.as_str())
            .collect();
        assert_eq!(
            groups,
            [
                "aaaaaaaa-0000-4000-8000-000000000001",
                "bbbbbbbb-0000-4000-8000-000000000002"
            ]
        );
        assert_eq!(
            spec.access_assignments[0].roles,
            ["Helpdesk Administrator", "User Administrator"]
        );
    }

    #[test]
    fn unknown_roles_and_odd_durations_are_written_with_warnings() {
        let unknown = "dd4db9a0-cc4a-4213-9f9f-70242232d97e";
        let rel = relationship(&[HELPDESK, unknown], "P2Y");
        let out = manifest(
            &rel,
            "11111111-2222-3333-4444-555555555555",
            None,
            &[],
            &ManifestOptions::default(),
        );
        assert_eq!(
            out.object.spec.roles,
            [unknown.to_string(), "Helpdesk Administrator".into()]
        );
        assert_eq!(out.object.spec.duration.0, "P730D");
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
        assert!(out.warnings[0].contains("not in the role catalog"));
        assert!(out.warnings[1].contains("P2Y written as P730D"));
        assert_eq!(out.folder, "customer-11111111");
    }

    #[test]
    fn durations_convert_like_the_sandbox() {
        assert_eq!(convert_days("P1Y6M"), Some(545));
        assert_eq!(convert_days("P4W"), Some(28));
        assert_eq!(convert_days("PT0S"), None);
        assert_eq!(convert_days("P3Y"), None);
    }

    #[test]
    fn ended_and_ending_states_are_recognised() {
        for s in [
            "terminated",
            "expired",
            "expiring",
            "terminating",
            "terminationRequested",
        ] {
            assert!(is_ended(Some(&State::from(s))), "{s}");
        }
        for s in [
            "active",
            "approvalPending",
            "created",
            "approved",
            "activating",
        ] {
            assert!(!is_ended(Some(&State::from(s))), "{s}");
        }
    }
}
