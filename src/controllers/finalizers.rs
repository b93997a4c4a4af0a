//! Adding and removing one finalizer on an object the operator does not reconcile itself (the
//! credentials Secret), with the same JSON-patch test-and-add / test-and-remove that kube's
//! `runtime::finalizer` helper uses for the custom resources: other controllers' finalizers are
//! never touched, and a concurrent change makes the patch fail instead of overwriting it.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, Patch as JsonPatch, PatchOperation, RemoveOperation, TestOperation,
};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The JSON patch that adds `finalizer` to an object whose finalizers are `current`.
pub fn add_patch(current: &[String], finalizer: &str) -> JsonPatch {
    let list = PointerBuf::from_tokens(["metadata", "finalizers"]);
    JsonPatch(if current.is_empty() {
        vec![
            PatchOperation::Test(TestOperation {
                path: list.clone(),
                value: serde_json::Value::Null,
            }),
            PatchOperation::Add(AddOperation {
                path: list,
                value: vec![finalizer].into(),
            }),
        ]
    } else {
        vec![
            PatchOperation::Test(TestOperation {
                path: list.clone(),
                value: current.into(),
            }),
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(["metadata", "finalizers", "-"]),
                value: finalizer.into(),
            }),
        ]
    })
}

/// The JSON patch that removes `finalizer`, or `None` when the object does not carry it.
pub fn remove_patch(current: &[String], finalizer: &str) -> Option<JsonPatch> {
    let index = current.iter().position(|f| f == finalizer)?;
    let path = PointerBuf::from_tokens(["metadata", "finalizers", &index.to_string()]);
    Some(JsonPatch(vec![
        PatchOperation::Test(TestOperation {
            path: path.clone(),
            value: finalizer.into(),
        }),
        PatchOperation::Remove(RemoveOperation { path }),
    ]))
}

/// Adds `finalizer` to `object` unless it is there already or the object is being deleted (the
/// API server refuses new finalizers then).
pub async fn add<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    if object.meta().deletion_timestamp.is_some()
        || object.finalizers().iter().any(|f| f == finalizer)
    {
        return Ok(());
    }
    let patch = add_patch(object.finalizers(), finalizer);
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .map(drop)
}

/// Removes `finalizer` from `object` if it carries it.
pub async fn remove<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let Some(patch) = remove_patch(object.finalizers(), finalizer) else {
        return Ok(());
    };
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_keeps_other_finalizers_and_tests_the_list_first() {
        let current = vec!["example.com/other".to_string()];
        let patch = serde_json::to_value(add_patch(&current, "gdap.io/x")).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                {"op": "test", "path": "/metadata/finalizers", "value": ["example.com/other"]},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "gdap.io/x"},
            ])
        );
    }

    #[test]
    fn removing_targets_only_our_entry() {
        let current = vec!["a/b".to_string(), "gdap.io/x".to_string()];
        let patch = serde_json::to_value(remove_patch(&current, "gdap.io/x").unwrap()).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "gdap.io/x"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ])
        );
        assert!(remove_patch(&current[..1], "gdap.io/x").is_none());
    }
}
