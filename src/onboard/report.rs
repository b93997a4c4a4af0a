//! The report of `gdap-operator plan`: per object its [`Verdict`] and steps, and a summary.
//! Its own module so that `plan` (which builds it) and `render` (which prints it) need not
//! import each other.

use super::describe::Step;
use serde::Serialize;

/// The version of the `--output json` schema (documented in docs/adopting.md).
pub const SCHEMA_VERSION: u32 = 1;

/// What a plan says about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// The operator would write.
    Changes,
    /// Nothing to do (possibly waiting for the customer or Microsoft).
    NoChanges,
    /// The manifest is invalid, Microsoft could not be read, or the operator refuses.
    Error,
    /// Not planned (a kind without a controller yet).
    Skipped,
}

/// The plan of one object (`objects[]` of the JSON output).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    /// The object's kind.
    pub kind: String,
    /// Its namespace, when the manifest (or `--namespace`) names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// The customer tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The relationship found in Microsoft.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationship_id: Option<String>,
    /// Its status in Microsoft.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `Manage` or `Observe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<String>,
    /// The verdict.
    pub result: Verdict,
    /// The writes, in order.
    pub steps: Vec<Step>,
    /// What follows the steps (a wait, a refusal's explanation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<String>,
    /// With `managementPolicy: Observe`: what `Manage` would change (the operator does not).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Step>,
    /// Why the object could not be planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What else a reader should know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Totals (`summary` of the JSON output).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects planned or reported.
    pub objects: usize,
    /// Objects with changes.
    pub changes: usize,
    /// Objects with nothing to do.
    pub no_changes: usize,
    /// Objects in error.
    pub errors: usize,
    /// Objects not planned.
    pub skipped: usize,
    /// Steps of all objects.
    pub steps: usize,
    /// Documents of other API groups (not listed in `objects`).
    pub other_documents: usize,
}

/// The whole plan (the JSON output).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Per object, in file order.
    pub objects: Vec<ObjectPlan>,
    /// Totals.
    pub summary: Summary,
}

impl PlanReport {
    /// 0 nothing to do, 2 changes, 1 errors.
    pub fn exit_code(&self) -> u8 {
        if self.summary.errors > 0 {
            1
        } else if self.summary.changes > 0 {
            2
        } else {
            0
        }
    }

    pub(super) fn new(objects: Vec<ObjectPlan>, other_documents: usize) -> PlanReport {
        let count = |r: Verdict| objects.iter().filter(|o| o.result == r).count();
        let summary = Summary {
            objects: objects.len(),
            changes: count(Verdict::Changes),
            no_changes: count(Verdict::NoChanges),
            errors: count(Verdict::Error),
            skipped: count(Verdict::Skipped),
            steps: objects.iter().map(|o| o.steps.len()).sum(),
            other_documents,
        };
        PlanReport {
            schema_version: SCHEMA_VERSION,
            objects,
            summary,
        }
    }
}
