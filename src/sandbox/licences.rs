//! Licence states of listed users, as Graph reports them.

use serde_json::{Map, Value, json};

/// Gives a listed user `licenseAssignmentStates` when it has none: each of its
/// `assignedLicenses` as a direct, active assignment (what Graph reports for licences not
/// inherited from a group).
pub fn with_licence_states(user: &mut Map<String, Value>) {
    if user.contains_key("licenseAssignmentStates") {
        return;
    }
    let states: Vec<Value> = user
        .get("assignedLicenses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("skuId"))
        .map(|sku| {
            json!({"skuId": sku, "assignedByGroup": null, "state": "Active", "error": "None",
                "disabledPlans": [], "lastUpdatedDateTime": null})
        })
        .collect();
    user.insert("licenseAssignmentStates".into(), Value::Array(states));
}
