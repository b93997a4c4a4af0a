//! What webhook emission compares: the GDAP relationships and access assignments a reader sees,
//! reduced to what events are made of, and the changes between two such views.
//!
//! Contract: [`View::of`] and [`View::update`] read `World::visible_relationships(now)`, so a
//! change becomes an event only once a reader can see it. `update` brings the view up to date in
//! place and returns the changes, in the world's order of relationships, each relationship's
//! events before its assignments', vanished assignments last:
//! - relationship: `approved` when it reaches `approved`, `activating` or `active` from an
//!   earlier status (so a jump from `approvalPending` straight to `active` is both approved and
//!   activated); `activated` on reaching `active`; `terminated`; `expired`.
//! - assignment: `created` when it appears (not deleted); `activated` on reaching `active`;
//!   `updated` when its roles or `lastModifiedDateTime` change while its status stays (and is
//!   not `deleted`); `deleted` when it becomes `deleted` or vanishes.
//!
//! A view holds only ids, statuses, modification times and a hash of the roles, and an update
//! allocates only for what is new, so a world of thousands of relationships is compared with
//! one hash lookup per relationship and per access assignment.

use super::state::{Assignment, World};
use super::webhook_model::{
    ASSIGNMENT_ACTIVATED, ASSIGNMENT_CREATED, ASSIGNMENT_DELETED, ASSIGNMENT_RESOURCE,
    ASSIGNMENT_UPDATED, Change, RELATIONSHIP_ACTIVATED, RELATIONSHIP_APPROVED,
    RELATIONSHIP_EXPIRED, RELATIONSHIP_RESOURCE, RELATIONSHIP_TERMINATED,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// What readers saw of every relationship, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    relationships: HashMap<String, RelationshipSeen>,
    /// Bumped on every update; entries not stamped with it have vanished.
    generation: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct RelationshipSeen {
    status: String,
    modified: DateTime<Utc>,
    assignments: HashMap<String, AssignmentSeen>,
    generation: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct AssignmentSeen {
    status: String,
    modified: DateTime<Utc>,
    roles: u64,
    generation: u64,
}

/// One access assignment as observed: (id, status, last modified, hash of the roles).
type Observed<'a> = (&'a str, &'a str, DateTime<Utc>, u64);

fn roles_hash(a: &Assignment) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    a.roles.hash(&mut hasher);
    hasher.finish()
}

/// Statuses at or past approval.
fn approved_or_later(status: &str) -> bool {
    matches!(status, "approved" | "activating" | "active")
}

impl View {
    /// What readers see at `now` (a baseline: its changes are dropped).
    pub fn of(world: &World, now: DateTime<Utc>) -> View {
        let mut view = View::default();
        view.update(world, now);
        view
    }

    /// Brings the view up to what readers see at `now`; returns the changes, in the world's
    /// order of relationships, vanished ones last. Allocates only for what is new.
    pub fn update(&mut self, world: &World, now: DateTime<Utc>) -> Vec<Change> {
        self.generation += 1;
        let mut out = Vec::new();
        let mut buffer = Vec::new();
        for rel in world.visible_relationships(now) {
            buffer.clear();
            buffer.extend(rel.assignments.iter().map(|a| {
                (
                    a.id.as_str(),
                    a.status.as_str(),
                    a.last_modified,
                    roles_hash(a),
                )
            }));
            self.observe(&rel.id, &rel.status, rel.last_modified, &buffer, &mut out);
        }
        self.sweep(&mut out);
        out
    }

    /// Relationship `id` is seen in `status`, last modified at `modified`, with `assignments`.
    fn observe(
        &mut self,
        id: &str,
        status: &str,
        modified: DateTime<Utc>,
        assignments: &[Observed],
        out: &mut Vec<Change>,
    ) {
        let generation = self.generation;
        if !self.relationships.contains_key(id) {
            let fresh = RelationshipSeen {
                status: String::new(),
                modified,
                assignments: HashMap::new(),
                generation,
            };
            self.relationships.insert(id.to_string(), fresh);
        }
        let Some(seen) = self.relationships.get_mut(id) else {
            return;
        };
        relationship_changes(id, &seen.status, status, modified, out);
        if seen.status != status {
            seen.status = status.to_string();
        }
        seen.modified = modified;
        seen.generation = generation;
        for observed in assignments {
            assignment_changes(id, &mut seen.assignments, *observed, generation, out);
        }
    }

    /// Drops what was not observed in this update: its live assignments are deleted.
    fn sweep(&mut self, out: &mut Vec<Change>) {
        let generation = self.generation;
        let mut gone: Vec<(&String, &String, DateTime<Utc>)> = Vec::new();
        for (rel_id, rel) in &self.relationships {
            for (id, a) in &rel.assignments {
                if (rel.generation != generation || a.generation != generation)
                    && a.status != "deleted"
                {
                    let at = match rel.generation == generation {
                        true => rel.modified.max(a.modified),
                        false => rel.modified,
                    };
                    gone.push((rel_id, id, at));
                }
            }
        }
        gone.sort();
        out.extend(
            gone.into_iter()
                .map(|(rel, id, at)| assignment_change(ASSIGNMENT_DELETED, rel, id, at)),
        );
        self.relationships.retain(|_, r| r.generation == generation);
        for rel in self.relationships.values_mut() {
            rel.assignments.retain(|_, a| a.generation == generation);
        }
    }
}

fn relationship_changes(
    id: &str,
    before: &str,
    status: &str,
    at: DateTime<Utc>,
    out: &mut Vec<Change>,
) {
    if before == status {
        return;
    }
    let mut push = |name| {
        out.push(Change {
            name,
            path: format!("/granularAdminRelationships/{id}"),
            resource: RELATIONSHIP_RESOURCE,
            at,
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

fn assignment_change(name: &'static str, rel: &str, id: &str, at: DateTime<Utc>) -> Change {
    Change {
        name,
        path: format!("/granularAdminRelationships/{rel}/accessAssignments/{id}"),
        resource: ASSIGNMENT_RESOURCE,
        at,
    }
}

fn assignment_changes(
    rel: &str,
    seen: &mut HashMap<String, AssignmentSeen>,
    (id, status, modified, roles): Observed,
    generation: u64,
    out: &mut Vec<Change>,
) {
    let change = |name| assignment_change(name, rel, id, modified);
    let Some(before) = seen.get_mut(id) else {
        if status != "deleted" {
            out.push(change(ASSIGNMENT_CREATED));
            if status == "active" {
                out.push(change(ASSIGNMENT_ACTIVATED));
            }
        }
        let now = AssignmentSeen {
            status: status.to_string(),
            modified,
            roles,
            generation,
        };
        seen.insert(id.to_string(), now);
        return;
    };
    before.generation = generation;
    if before.status != status {
        match status {
            "active" => out.push(change(ASSIGNMENT_ACTIVATED)),
            "deleted" => out.push(change(ASSIGNMENT_DELETED)),
            _ => {}
        }
        before.status = status.to_string();
    } else if status != "deleted" && (before.modified != modified || before.roles != roles) {
        out.push(change(ASSIGNMENT_UPDATED));
    }
    before.modified = modified;
    before.roles = roles;
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

    /// One update of `view` from these relationships.
    fn step(view: &mut View, rels: &[Rel]) -> Vec<Change> {
        view.generation += 1;
        let mut out = Vec::new();
        for (id, status, assignments) in rels {
            let observed: Vec<Observed> = assignments
                .iter()
                .map(|(aid, st, r)| (*aid, *st, t(*r), *r as u64))
                .collect();
            view.observe(id, status, t(0), &observed, &mut out);
        }
        view.sweep(&mut out);
        out
    }

    /// The changes from `before` (the baseline) to `after`.
    fn diff(before: &[Rel], after: &[Rel]) -> Vec<Change> {
        let mut view = View::default();
        step(&mut view, before);
        step(&mut view, after)
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
            let changes = diff(&[("r", from, &[])], &[("r", to, &[])]);
            let got: Vec<&str> = changes.iter().map(|c| c.name).collect();
            assert_eq!(&got, want, "{from} -> {to}");
        }
        let appeared = diff(&[], &[("r", "approved", &[])]);
        assert_eq!(names(&appeared), vec![(RELATIONSHIP_APPROVED, "r")]);
    }

    #[test]
    fn assignment_changes_make_their_events() {
        let before: &[Rel] = &[(
            "r",
            "active",
            &[("a", "pending", 1), ("b", "active", 1), ("c", "active", 1)],
        )];
        let after: &[Rel] = &[(
            "r",
            "active",
            &[
                ("a", "active", 1),
                ("b", "active", 2),
                ("d", "pending", 1),
                ("e", "active", 1),
            ],
        )];
        assert_eq!(
            names(&diff(before, after)),
            vec![
                (ASSIGNMENT_ACTIVATED, "a"),
                (ASSIGNMENT_UPDATED, "b"),
                (ASSIGNMENT_CREATED, "d"),
                (ASSIGNMENT_CREATED, "e"),
                (ASSIGNMENT_ACTIVATED, "e"),
                (ASSIGNMENT_DELETED, "c"),
            ]
        );
        let deleting: &[Rel] = &[("r", "active", &[("a", "deleting", 1)])];
        let deleted: &[Rel] = &[("r", "active", &[("a", "deleted", 1)])];
        assert_eq!(
            names(&diff(deleting, deleted)),
            vec![(ASSIGNMENT_DELETED, "a")]
        );
        assert!(diff(deleted, deleted).is_empty());
        assert_eq!(
            names(&diff(deleting, &[])),
            vec![(ASSIGNMENT_DELETED, "a")],
            "a vanished relationship's assignments are deleted"
        );
    }

    #[test]
    fn an_unchanged_world_changes_nothing_and_keeps_the_view() {
        let world: &[Rel] = &[("r", "active", &[("a", "active", 1)])];
        let mut view = View::default();
        step(&mut view, world);
        let kept = view.relationships.clone();
        for _ in 0..3 {
            assert!(step(&mut view, world).is_empty());
        }
        assert_eq!(view.relationships.len(), kept.len());
        assert_eq!(view.relationships["r"].assignments.len(), 1);
    }
}
