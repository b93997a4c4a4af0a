//! The record of the operator's writes that Microsoft does not show yet: what each write was
//! ([`Write`]) and what a `Propagating` wait waits for ([`Awaited`]). Plain data, kept in the
//! `status.pendingWrites`; `pending` applies it to what was read.

use crate::controllers::pending_writes::{Supersedable, kind_writes};
use std::collections::BTreeSet;

kind_writes! {
    /// One write the operator made in Microsoft, with what its effect needs.
    pub enum Write {
        /// A relationship was created: the object's own (of `generation`) or its successor (a later
        /// generation). `id: None`: Microsoft answered that the display name exists — a create of
        /// the operator's that landed before a crash, or somebody else's (the plan tells which once
        /// it is read).
        Create {
            /// The generation it was created for.
            generation: u32,
            /// Its display name.
            display_name: String,
            /// Microsoft's id, when it answered with the relationship.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<String>,
            /// The role template ids sent (lower case).
            #[serde(default)]
            role_ids: BTreeSet<String>,
            /// The duration sent, in days.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            duration_days: Option<u32>,
            /// Auto-extension sent.
            #[serde(default)]
            auto_extend: bool,
            /// The ETag Microsoft answered.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            etag: Option<String>,
        },
        /// The relationship was locked for approval.
        Lock {
            /// The relationship.
            id: String,
        },
        /// A relationship was PATCHed (a draft to the spec, or auto-extension).
        Patch {
            /// The relationship.
            id: String,
            /// New roles, when changed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            role_ids: Option<BTreeSet<String>>,
            /// New duration in days, when changed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            duration_days: Option<u32>,
            /// New auto-extension, when changed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            auto_extend: Option<bool>,
        },
        /// A security group was assigned. `id: None`: Microsoft answered `409`, the group has one.
        Assign {
            /// The relationship.
            relationship_id: String,
            /// The group (lower case).
            group_id: String,
            /// Microsoft's id of the new assignment.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            id: Option<String>,
            /// The roles assigned (lower case).
            #[serde(default)]
            role_ids: BTreeSet<String>,
        },
        /// An assignment's roles were changed (Microsoft applies it as a long-running operation).
        Reassign {
            /// The relationship.
            relationship_id: String,
            /// The assignment.
            assignment_id: String,
            /// The roles applied (lower case).
            #[serde(default)]
            role_ids: BTreeSet<String>,
            /// The operation Microsoft answered, if any.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            operation_id: Option<String>,
        },
        /// An assignment was deleted.
        Unassign {
            /// The relationship.
            relationship_id: String,
            /// The assignment.
            assignment_id: String,
        },
        /// A relationship that was never locked was deleted.
        Delete {
            /// The relationship.
            id: String,
        },
        /// Termination was requested.
        Terminate {
            /// The relationship.
            id: String,
        },
    }
}

/// What a `Propagating` wait waits for: the kind of the oldest unshown write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// A relationship create (or the relationship the status records).
    Relationship,
    /// The lock for approval.
    Lock,
    /// A PATCH of the relationship.
    Update,
    /// A new access assignment.
    Assignment,
    /// A role change of an assignment.
    RoleChange,
    /// The removal of an assignment.
    AssignmentRemoval,
    /// The deletion of a draft.
    Deletion,
    /// A termination request.
    Termination,
}

impl Awaited {
    /// A short phrase for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Awaited::Relationship => "the new relationship",
            Awaited::Lock => "the lock for approval",
            Awaited::Update => "the change of the relationship",
            Awaited::Assignment => "the new access assignment",
            Awaited::RoleChange => "the role change of an access assignment",
            Awaited::AssignmentRemoval => "the removal of an access assignment",
            Awaited::Deletion => "the deletion of the draft relationship",
            Awaited::Termination => "the termination request",
        }
    }
}

impl Write {
    /// Its kind.
    pub fn awaited(&self) -> Awaited {
        match self {
            Write::Create { .. } => Awaited::Relationship,
            Write::Lock { .. } => Awaited::Lock,
            Write::Patch { .. } => Awaited::Update,
            Write::Assign { .. } => Awaited::Assignment,
            Write::Reassign { .. } => Awaited::RoleChange,
            Write::Unassign { .. } => Awaited::AssignmentRemoval,
            Write::Delete { .. } => Awaited::Deletion,
            Write::Terminate { .. } => Awaited::Termination,
        }
    }

    /// The relationship it is about (`None`: a create answered without an id).
    pub fn relationship_id(&self) -> Option<&str> {
        match self {
            Write::Create { id, .. } => id.as_deref(),
            Write::Lock { id }
            | Write::Patch { id, .. }
            | Write::Delete { id }
            | Write::Terminate { id } => Some(id),
            Write::Assign {
                relationship_id, ..
            }
            | Write::Reassign {
                relationship_id, ..
            }
            | Write::Unassign {
                relationship_id, ..
            } => Some(relationship_id),
        }
    }

    /// A sentence naming the write, for messages.
    pub fn describe(&self) -> String {
        match self {
            Write::Create {
                display_name,
                id: Some(id),
                ..
            } => format!("the create of relationship {id} ({display_name})"),
            Write::Create { display_name, .. } => format!(
                "relationship {display_name} (Microsoft answered that the display name exists)"
            ),
            Write::Lock { id } => format!("the lock for approval of relationship {id}"),
            Write::Patch { id, .. } => format!("the change of relationship {id}"),
            Write::Assign {
                group_id, id: None, ..
            } => format!(
                "the access assignment of security group {group_id} (Microsoft answered 409: it exists)"
            ),
            Write::Assign { group_id, .. } => {
                format!("the access assignment of security group {group_id}")
            }
            Write::Reassign { assignment_id, .. } => {
                format!("the role change of access assignment {assignment_id}")
            }
            Write::Unassign { assignment_id, .. } => {
                format!("the removal of access assignment {assignment_id}")
            }
            Write::Delete { id } => format!("the deletion of draft relationship {id}"),
            Write::Terminate { id } => format!("the termination of relationship {id}"),
        }
    }
}

impl Supersedable for Write {
    /// A later write to the same thing replaces this one's record.
    fn superseded_by(&self, later: &Write) -> bool {
        use Write::*;
        match (self, later) {
            (Create { generation: a, .. }, Create { generation: b, .. }) => a == b,
            (Patch { id: a, .. }, Patch { id: b, .. }) => a == b,
            (
                Assign {
                    relationship_id: r1,
                    group_id: g1,
                    ..
                },
                Assign {
                    relationship_id: r2,
                    group_id: g2,
                    ..
                },
            ) => r1 == r2 && g1 == g2,
            (
                Reassign {
                    assignment_id: a, ..
                },
                Reassign {
                    assignment_id: b, ..
                },
            ) => a == b,
            (a, b) => a == b,
        }
    }
}

impl Pending {
    /// The pending create of the relationship of `generation`.
    pub fn create(&self, generation: u32) -> Option<&Written> {
        self.0
            .iter()
            .rev()
            .find(|w| matches!(&w.write, Write::Create { generation: g, .. } if *g == generation))
    }

    /// Whether relationship `id` was deleted (a draft) and reads may still show it.
    pub fn deleted(&self, id: &str) -> bool {
        self.0
            .iter()
            .any(|w| matches!(&w.write, Write::Delete { id: d } if d == id))
    }

    /// Whether a pending create answered with relationship `id`.
    pub fn created(&self, id: &str) -> bool {
        self.0
            .iter()
            .any(|w| matches!(&w.write, Write::Create { id: Some(i), .. } if i == id))
    }
}
