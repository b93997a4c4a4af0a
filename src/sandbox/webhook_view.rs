//! What webhook emission compares: the GDAP relationships and access assignments a reader sees,
//! reduced to what events are made of, and the changes between two such views.
//!
//! Contract: [`View::of`] reads `World::visible_relationships(now)`, so a change becomes an event
//! only once a reader can see it. [`View::changes`] is pure, in relationship-id order, each
//! relationship's events before its assignments':
//! - relationship: `approved` when it reaches `approved`, `activating` or `active` from an
//!   earlier status (so a jump from `approvalPending` straight to `active` is both approved and
//!   activated); `activated` on reaching `active`; `terminated`; `expired`.
//! - assignment: `created` when it appears (not deleted); `activated` on reaching `active`;
//!   `updated` when its roles or `lastModifiedDateTime` change while its status stays (and is
//!   not `deleted`); `deleted` when it becomes `deleted` or vanishes.
//!
//! A view holds only ids, statuses, modification times and a hash of the roles, so a world of
//! thousands of relationships is compared in well under a millisecond.

use super::state::{Assignment, Relationship, World};
use super::webhook_model::{
    ASSIGNMENT_ACTIVATED, ASSIGNMENT_CREATED, ASSIGNMENT_DELETED, ASSIGNMENT_RESOURCE,
    ASSIGNMENT_UPDATED, Change, RELATIONSHIP_ACTIVATED, RELATIONSHIP_APPROVED,
    RELATIONSHIP_EXPIRED, RELATIONSHIP_RESOURCE, RELATIONSHIP_TERMINATED,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// What readers saw of every relationship, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    relationships: BTreeMap<String, RelationshipSeen>,
}

#[derive(Debug, Clone, PartialEq)]
struct RelationshipSeen {
    status: String,
    modified: DateTime<Utc>,
    assignments: HashMap<String, AssignmentSeen>,
}

#[derive(Debug, Clone, PartialEq)]
struct AssignmentSeen {
    status: String,
    modified: DateTime<Utc>,
    roles: u64,
}

impl RelationshipSeen {
    fn of(rel: &Relationship) -> RelationshipSeen {
        RelationshipSeen {
            status: rel.status.clone(),
            modified: rel.last_modified,
            assignments: rel
                .assignments
                .iter()
                .map(|a| (a.id.clone(), AssignmentSeen::of(a)))
                .collect(),
        }
    }
}

impl AssignmentSeen {
    fn of(a: &Assignment) -> AssignmentSeen {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        a.roles.hash(&mut hasher);
        AssignmentSeen {
            status: a.status.clone(),
            modified: a.last_modified,
            roles: hasher.finish(),
        }
    }
}

/// Statuses at or past approval.
fn approved_or_later(status: &str) -> bool {
    matches!(status, "approved" | "activating" | "active")
}

impl View {
    /// What readers see at `now`.
    pub fn of(world: &World, now: DateTime<Utc>) -> View {
        View {
            relationships: world
                .visible_relationships(now)
                .into_iter()
                .map(|r| (r.id.clone(), RelationshipSeen::of(r)))
                .collect(),
        }
    }

    /// The changes from `self` to `next`.
    pub fn changes(&self, next: &View) -> Vec<Change> {
        let mut out = Vec::new();
        let empty = HashMap::new();
        for (id, now) in &next.relationships {
            let before = self.relationships.get(id);
            relationship_changes(id, before.map(|b| b.status.as_str()), now, &mut out);
            let old = before.map_or(&empty, |b| &b.assignments);
            assignment_changes(id, old, &now.assignments, now.modified, &mut out);
        }
        for (id, gone) in &self.relationships {
            if !next.relationships.contains_key(id) {
                assignment_changes(id, &gone.assignments, &empty, gone.modified, &mut out);
            }
        }
        out
    }
}

fn relationship_changes(
    id: &str,
    before: Option<&str>,
    now: &RelationshipSeen,
    out: &mut Vec<Change>,
) {
    let before = before.unwrap_or("");
    let status = now.status.as_str();
    if before == status {
        return;
    }
    let mut push = |name| {
        out.push(Change {
            name,
            path: format!("/granularAdminRelationships/{id}"),
            resource: RELATIONSHIP_RESOURCE,
            at: now.modified,
        })
    };
    if approved_or_later(status) && !approved_or_later(before) {
        push(RELATIONSHIP_APPROVED);
    }
    match status {
        "active" => push(RELATIONSHIP_ACTIVATED),
        "terminated" => push(RELATIONSHIP_TERMINATED),
        "expired" => push(RELATIONSHIP_EXPIRED),
        _ => {}
    }
}

fn assignment_changes(
    rel: &str,
    before: &HashMap<String, AssignmentSeen>,
    now: &HashMap<String, AssignmentSeen>,
    vanished_at: DateTime<Utc>,
    out: &mut Vec<Change>,
) {
    let change = |name, id: &str, at| Change {
        name,
        path: format!("/granularAdminRelationships/{rel}/accessAssignments/{id}"),
        resource: ASSIGNMENT_RESOURCE,
        at,
    };
    let mut ids: Vec<&String> = now.keys().chain(before.keys()).collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        match (before.get(id), now.get(id)) {
            (None, Some(a)) if a.status != "deleted" => {
                out.push(change(ASSIGNMENT_CREATED, id, a.modified));
                if a.status == "active" {
                    out.push(change(ASSIGNMENT_ACTIVATED, id, a.modified));
                }
            }
            (Some(b), Some(a)) if b.status != a.status => match a.status.as_str() {
                "active" => out.push(change(ASSIGNMENT_ACTIVATED, id, a.modified)),
                "deleted" => out.push(change(ASSIGNMENT_DELETED, id, a.modified)),
                _ => {}
            },
            (Some(b), Some(a)) if a.status != "deleted" && b != a => {
                out.push(change(ASSIGNMENT_UPDATED, id, a.modified))
            }
            (Some(b), None) if b.status != "deleted" => {
                out.push(change(ASSIGNMENT_DELETED, id, vanished_at))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    /// (assignment id, status, roles hash = modification second).
    type Seen<'a> = (&'a str, &'a str, i64);

    /// (relationship id, status, its assignments).
    type Rel<'a> = (&'a str, &'a str, &'a [Seen<'a>]);

    fn view(rels: &[Rel]) -> View {
        View {
            relationships: rels
                .iter()
                .map(|(id, status, assignments)| {
                    let assignments = assignments
                        .iter()
                        .map(|(aid, st, roles)| {
                            let seen = AssignmentSeen {
                                status: st.to_string(),
                                modified: t(*roles),
                                roles: *roles as u64,
                            };
                            (aid.to_string(), seen)
                        })
                        .collect();
                    let seen = RelationshipSeen {
                        status: status.to_string(),
                        modified: t(0),
                        assignments,
                    };
                    (id.to_string(), seen)
                })
                .collect(),
        }
    }

    fn names(changes: &[Change]) -> Vec<(&str, &str)> {
        changes
            .iter()
            .map(|c| (c.name, c.path.rsplit('/').next().unwrap()))
            .collect()
    }

    #[test]
    fn relationship_transitions_make_their_events() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("approvalPending", "approved", &[RELATIONSHIP_APPROVED]),
            (
                "approvalPending",
                "active",
                &[RELATIONSHIP_APPROVED, RELATIONSHIP_ACTIVATED],
            ),
            ("approved", "activating", &[]),
            ("activating", "active", &[RELATIONSHIP_ACTIVATED]),
            ("active", "terminationRequested", &[]),
            ("terminating", "terminated", &[RELATIONSHIP_TERMINATED]),
            ("expiring", "expired", &[RELATIONSHIP_EXPIRED]),
            ("approvalPending", "expired", &[RELATIONSHIP_EXPIRED]),
            ("created", "approvalPending", &[]),
            ("active", "active", &[]),
        ];
        for (from, to, want) in cases {
            let changes = view(&[("r", from, &[])]).changes(&view(&[("r", to, &[])]));
            let got: Vec<&str> = changes.iter().map(|c| c.name).collect();
            assert_eq!(&got, want, "{from} -> {to}");
        }
    }

    #[test]
    fn assignment_changes_make_their_events() {
        let before = view(&[(
            "r",
            "active",
            &[("a", "pending", 1), ("b", "active", 1), ("c", "active", 1)],
        )]);
        let after = view(&[(
            "r",
            "active",
            &[
                ("a", "active", 1),
                ("b", "active", 2),
                ("d", "pending", 1),
                ("e", "active", 1),
            ],
        )]);
        assert_eq!(
            names(&before.changes(&after)),
            vec![
                (ASSIGNMENT_ACTIVATED, "a"),
                (ASSIGNMENT_UPDATED, "b"),
                (ASSIGNMENT_DELETED, "c"),
                (ASSIGNMENT_CREATED, "d"),
                (ASSIGNMENT_CREATED, "e"),
                (ASSIGNMENT_ACTIVATED, "e"),
            ]
        );
        let deleted = view(&[("r", "active", &[("a", "deleted", 1)])]);
        let start = view(&[("r", "active", &[("a", "deleting", 1)])]);
        assert_eq!(
            names(&start.changes(&deleted)),
            vec![(ASSIGNMENT_DELETED, "a")]
        );
        assert!(deleted.changes(&deleted).is_empty());
        assert_eq!(
            names(&start.changes(&View::default())),
            vec![(ASSIGNMENT_DELETED, "a")],
            "a vanished relationship's assignments are deleted"
        );
    }
}
