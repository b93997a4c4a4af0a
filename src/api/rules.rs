//! Domain rules of the user contract that the API server cannot check (they need the role
//! catalog or the resource names): used by `gdap-operator validate` and by the controllers, so
//! the two always agree.

pub use super::field_problem::FieldProblem;
use super::{AppConsent, GdapRelationship, RoleCatalog};
use std::collections::HashSet;

/// Role names against the catalog; duplicate roles under different spellings; GA with autoExtend.
pub fn relationship_problems(object: &GdapRelationship) -> Vec<FieldProblem> {
    let catalog = RoleCatalog::builtin();
    let spec = &object.spec;
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut ids = HashSet::new();
    for (i, reference) in spec.roles.iter().enumerate() {
        match catalog.resolve(reference) {
            Ok(role) => {
                if !seen.insert(role.id.clone()) {
                    problems.push(FieldProblem::new(
                        format!("spec.roles[{i}]"),
                        format!(
                            "{reference:?} names {} again; roles must be unique",
                            role.name
                        ),
                    ));
                }
                ids.insert(role.id.clone());
                if role.forbids_auto_extend() && spec.auto_extend {
                    problems.push(FieldProblem::new(
                        "spec.autoExtend",
                        "autoExtend must be false when roles include Global Administrator",
                    ));
                }
            }
            Err(e) => problems.push(FieldProblem::new(format!("spec.roles[{i}]"), e.to_string())),
        }
    }
    for (a, assignment) in spec.access_assignments.iter().enumerate() {
        for (r, reference) in assignment.roles.iter().enumerate() {
            let field = format!("spec.accessAssignments[{a}].roles[{r}]");
            match catalog.resolve(reference) {
                Ok(role) if !ids.contains(&role.id) => problems.push(FieldProblem::new(
                    field,
                    format!("{} is not in spec.roles", role.name),
                )),
                Ok(_) => {}
                Err(e) => problems.push(FieldProblem::new(field, e.to_string())),
            }
        }
    }
    problems
}

/// Resource names must be well-known names or appIds, each resource once (`consent_rules`).
pub fn consent_problems(object: &AppConsent) -> Vec<FieldProblem> {
    super::consent_rules::grant_problems(&object.spec)
}
