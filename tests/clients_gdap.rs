//! The Graph GDAP client against the sandbox: every method, ETag conflicts, filters, paging.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::roles::*;
use clients_support::*;
use gdap_operator::microsoft::models::gdap::*;
use gdap_operator::microsoft::{Reason, RelationshipFilter};
use gdap_operator::sandbox::defaults;
use reqwest::Method;

#[tokio::test]
async fn relationship_lifecycle_with_etags_requests_assignments_and_operations() {
    let h = start_with(quick(), credentials(), Default::default(), |_| {}).await;
    let t = h.graph();
    let gdap = &h.clients.gdap;
    let roles = [DIRECTORY_READERS, HELPDESK_ADMIN];

    let rel = gdap
        .create_relationship(
            &t,
            &new_relationship("client-lifecycle", defaults::CONTOSO_TENANT_ID, &roles),
        )
        .await
        .unwrap();
    assert_eq!(rel.status, Some(RelationshipStatus::Created));
    assert!(rel.id.ends_with(defaults::PARTNER_TENANT_ID), "{}", rel.id);
    let etag1 = rel.etag.clone().expect("create returns an ETag");
    assert_eq!(
        gdap.get_relationship(&t, &rel.id)
            .await
            .unwrap()
            .display_name,
        "client-lifecycle"
    );

    // PATCH with the current ETag works and changes the ETag; the stale one then conflicts.
    let patch = RelationshipPatch {
        duration: Some("P365D".into()),
        ..Default::default()
    };
    let Updated::Done(updated) = gdap
        .update_relationship(&t, &rel.id, &etag1, &patch)
        .await
        .unwrap()
    else {
        panic!("a created relationship updates synchronously")
    };
    assert_eq!(updated.duration, "P365D");
    let etag2 = updated.etag.clone().unwrap();
    assert_ne!(etag1, etag2);
    let err = gdap
        .update_relationship(&t, &rel.id, &etag1, &patch)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PreconditionFailed, "{err}");
    assert_eq!(err.status(), Some(412));

    // Filters: by display name, by customer, by both.
    let by_name = RelationshipFilter {
        display_name: Some("client-lifecycle".into()),
        ..Default::default()
    };
    assert_eq!(
        gdap.list_relationships(&t, &by_name).await.unwrap().len(),
        1
    );
    let by_customer = RelationshipFilter {
        customer_tenant_id: Some(defaults::CONTOSO_TENANT_ID.into()),
        ..Default::default()
    };
    assert!(
        gdap.list_relationships(&t, &by_customer)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == rel.id)
    );
    let nobody = RelationshipFilter {
        customer_tenant_id: Some(defaults::FABRIKAM_TENANT_ID.into()),
        display_name: Some("client-lifecycle".into()),
        page_size: None,
    };
    assert!(
        gdap.list_relationships(&t, &nobody)
            .await
            .unwrap()
            .is_empty()
    );

    // Lock; then it is no longer editable.
    let lock = gdap.lock_for_approval(&t, &rel.id).await.unwrap();
    assert_eq!(lock.action, RequestAction::LockForApproval);
    let locked = gdap.get_relationship(&t, &rel.id).await.unwrap();
    assert_eq!(locked.status, Some(RelationshipStatus::ApprovalPending));
    let err = gdap
        .update_relationship(&t, &rel.id, locked.etag.as_deref().unwrap(), &patch)
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");

    h.control(
        Method::POST,
        &format!("/_sandbox/relationships/{}/approve", rel.id),
        None,
    )
    .await;
    let active = eventually(
        || async { gdap.get_relationship(&t, &rel.id).await.unwrap() },
        |r| r.status == Some(RelationshipStatus::Active),
    )
    .await;
    assert_eq!(active.status, Some(RelationshipStatus::Active));
    assert!(active.activated_date_time.is_some() && active.end_date_time.is_some());

    // Access assignment: create, list, get, PATCH with ETag (conflict with a stale one), delete.
    let new = NewAccessAssignment {
        access_container: AccessContainer::security_group(defaults::HELPDESK_GROUP_ID),
        access_details: AccessDetails::from_role_ids([HELPDESK_ADMIN]),
    };
    let aa = gdap
        .create_access_assignment(&t, &rel.id, &new)
        .await
        .unwrap();
    assert_eq!(
        aa.access_container.access_container_id,
        defaults::HELPDESK_GROUP_ID
    );
    let listed = gdap.list_access_assignments(&t, &rel.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    let aa = eventually(
        || async {
            gdap.get_access_assignment(&t, &rel.id, &aa.id)
                .await
                .unwrap()
        },
        |a| a.status == Some(AccessAssignmentStatus::Active),
    )
    .await;
    let stale = aa.etag.clone().unwrap();
    let both = AccessDetails::from_role_ids([HELPDESK_ADMIN, DIRECTORY_READERS]);
    match gdap
        .update_access_assignment(&t, &rel.id, &aa.id, &stale, &both)
        .await
        .unwrap()
    {
        Updated::Accepted { operation_id, .. } => {
            let op_id = operation_id.expect("202 names the operation");
            let op = gdap.get_operation(&t, &rel.id, &op_id).await.unwrap();
            assert_eq!(op.operation_type, OperationType::AccessAssignmentUpdate);
            assert!(
                gdap.list_operations(&t, &rel.id)
                    .await
                    .unwrap()
                    .iter()
                    .any(|o| o.id == op_id)
            );
        }
        Updated::Done(done) => assert_eq!(done.access_details, both),
    }
    let err = gdap
        .update_access_assignment(&t, &rel.id, &aa.id, &stale, &both)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PreconditionFailed, "{err}");
    // Wait for the update itself to finish (its roles in place), not only an active status: the
    // operation may still be running, and its completion changes the ETag.
    let current = eventually(
        || async {
            gdap.get_access_assignment(&t, &rel.id, &aa.id)
                .await
                .unwrap()
        },
        |a| a.status == Some(AccessAssignmentStatus::Active) && a.access_details == both,
    )
    .await;
    let err = gdap
        .delete_access_assignment(&t, &rel.id, &aa.id, &stale)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PreconditionFailed);
    gdap.delete_access_assignment(&t, &rel.id, &aa.id, current.etag.as_deref().unwrap())
        .await
        .unwrap();

    // Terminate; both requests are listed.
    let term = gdap.terminate_relationship(&t, &rel.id).await.unwrap();
    assert_eq!(term.action, RequestAction::Terminate);
    let status = gdap
        .get_relationship(&t, &rel.id)
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(
        matches!(
            status,
            RelationshipStatus::TerminationRequested
                | RelationshipStatus::Terminating
                | RelationshipStatus::Terminated
        ),
        "{status}"
    );
    let actions: Vec<_> = gdap
        .list_requests(&t, &rel.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert!(
        actions.contains(&RequestAction::LockForApproval)
            && actions.contains(&RequestAction::Terminate)
    );
    h.stop().await;
}

#[tokio::test]
async fn delete_needs_the_current_etag_and_then_the_relationship_is_gone() {
    let h = start().await;
    let t = h.graph();
    let gdap = &h.clients.gdap;
    let rel = gdap
        .create_relationship(
            &t,
            &new_relationship(
                "client-delete",
                defaults::CONTOSO_TENANT_ID,
                &[DIRECTORY_READERS],
            ),
        )
        .await
        .unwrap();
    let patch = RelationshipPatch {
        auto_extend_duration: Some("P180D".into()),
        ..Default::default()
    };
    let Updated::Done(after) = gdap
        .update_relationship(&t, &rel.id, rel.etag.as_deref().unwrap(), &patch)
        .await
        .unwrap()
    else {
        panic!()
    };
    let err = gdap
        .delete_relationship(&t, &rel.id, rel.etag.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PreconditionFailed, "{err}");
    gdap.delete_relationship(&t, &rel.id, after.etag.as_deref().unwrap())
        .await
        .unwrap();
    let err = gdap.get_relationship(&t, &rel.id).await.unwrap_err();
    assert_eq!(err.reason(), Reason::NotFound, "{err}");
    assert!(err.request_id().is_some() || err.code().is_some(), "{err}");
    h.stop().await;
}

#[tokio::test]
async fn duplicate_display_names_are_refused_permanently() {
    let h = start().await;
    let t = h.graph();
    let new = new_relationship(
        "client-duplicate",
        defaults::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
    );
    h.clients.gdap.create_relationship(&t, &new).await.unwrap();
    let err = h
        .clients
        .gdap
        .create_relationship(&t, &new)
        .await
        .unwrap_err();
    assert!(
        matches!(err.reason(), Reason::Conflict | Reason::InvalidRequest),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(err.code().is_some(), "Graph's code is carried: {err}");
    h.stop().await;
}

#[tokio::test]
async fn listing_follows_every_page() {
    let h = start().await;
    let t = h.graph();
    let gdap = &h.clients.gdap;
    for i in 0..40 {
        let name = format!("client-page-{i:02}");
        gdap.create_relationship(
            &t,
            &new_relationship(&name, defaults::CONTOSO_TENANT_ID, &[DIRECTORY_READERS]),
        )
        .await
        .unwrap();
    }
    let all = gdap
        .list_relationships(&t, &RelationshipFilter::default())
        .await
        .unwrap();
    let ours = all
        .iter()
        .filter(|r| r.display_name.starts_with("client-page-"))
        .count();
    assert_eq!(ours, 40);
    h.stop().await;
}

#[tokio::test]
async fn dropping_global_administrator_from_an_active_relationship_is_a_long_running_operation() {
    const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
    let h = start_with(quick(), credentials(), Default::default(), |_| {}).await;
    let t = h.graph();
    let gdap = &h.clients.gdap;
    let rel = h
        .active_relationship(
            "client-drop-ga",
            defaults::CONTOSO_TENANT_ID,
            &[GLOBAL_ADMIN, DIRECTORY_READERS],
        )
        .await;
    let patch = RelationshipPatch {
        access_details: Some(AccessDetails::from_role_ids([DIRECTORY_READERS])),
        ..Default::default()
    };
    let outcome = gdap
        .update_relationship(&t, &rel.id, rel.etag.as_deref().unwrap(), &patch)
        .await
        .unwrap();
    let Updated::Accepted { operation_id, .. } = outcome else {
        panic!("GA removal is asynchronous: {outcome:?}")
    };
    let op_id = operation_id.expect("Location names the operation");
    // Sent with `Prefer: include-unknown-enum-members`, the newer member arrives by name.
    let op = eventually(
        || async { gdap.get_operation(&t, &rel.id, &op_id).await.unwrap() },
        |o| o.status == OperationStatus::Succeeded,
    )
    .await;
    assert_eq!(op.operation_type, OperationType::RelationshipUpdate);
    assert_eq!(op.status, OperationStatus::Succeeded);
    let after = gdap.get_relationship(&t, &rel.id).await.unwrap();
    assert_eq!(after.access_details.role_ids(), [DIRECTORY_READERS]);
    h.stop().await;
}
