//! Tests of `act` against the in-process sandbox (the one emulator of Microsoft): each action
//! sends exactly its request and reports what Microsoft answered.

use super::act::{ActError, Applied, Bookkeeping, Target, act};
use super::step::Action;
use crate::controllers::sandbox_world::{SandboxWorld, read_back_options, write_lines};
use crate::controllers::withdrawals::Withdrawal;
use crate::microsoft::models::gdap::{
    AccessContainer, AccessDetails, CustomerParticipant, NewAccessAssignment, NewRelationship,
    RelationshipStatus as S,
};
use crate::sandbox::defaults;
use async_trait::async_trait;
use std::sync::Mutex;

const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

/// Records the Kubernetes-side writes instead of making them.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

#[async_trait]
impl Bookkeeping for Recorded {
    async fn record_create_intent(&self, value: &str) -> Result<(), kube::Error> {
        self.0.lock().unwrap().push(format!("intent {value}"));
        Ok(())
    }
    async fn record_withdrawal(&self, record: &Withdrawal) -> Result<(), kube::Error> {
        self.0
            .lock()
            .unwrap()
            .push(format!("withdrawal {}", record.relationship_id));
        Ok(())
    }
    async fn record_generation(&self, generation: u32, id: &str) -> Result<(), kube::Error> {
        self.0
            .lock()
            .unwrap()
            .push(format!("generation {generation} {id}"));
        Ok(())
    }
}

type World = SandboxWorld;

async fn world() -> World {
    SandboxWorld::start(read_back_options(), defaults::PARTNER_REFRESH_TOKEN).await
}

/// This kind's act, on the sandbox world.
trait Acts {
    async fn run(&self, action: &Action, books: &Recorded) -> Result<Applied, ActError>;
}

impl Acts for World {
    async fn run(&self, action: &Action, books: &Recorded) -> Result<Applied, ActError> {
        let token = self.clients.tokens.partner_graph();
        let target = Target {
            gdap: self.clients.gdap.as_ref(),
            token: &token,
            directory: self.clients.directory.as_ref(),
            tokens: &self.clients.tokens,
            bookkeeping: books,
        };
        act(action, &target).await
    }
}

fn new_relationship(name: &str) -> NewRelationship {
    NewRelationship {
        display_name: name.into(),
        duration: "P30D".into(),
        customer: Some(CustomerParticipant {
            tenant_id: defaults::CONTOSO_TENANT_ID.into(),
            display_name: None,
        }),
        access_details: AccessDetails::from_role_ids([READERS, HELPDESK]),
        auto_extend_duration: Some("PT0S".into()),
    }
}

#[tokio::test]
async fn kubernetes_side_actions_write_nothing_to_microsoft() {
    let w = world().await;
    let books = Recorded::default();
    let intent = Action::RecordCreateIntent {
        annotation: "n 2026".into(),
    };
    assert_eq!(w.run(&intent, &books).await.unwrap(), Applied::Nothing);
    let record = Withdrawal {
        relationship_id: "r-1".into(),
        customer: defaults::CONTOSO_TENANT_ID.into(),
        display_name: "n".into(),
    };
    let withdrawal = Action::RecordWithdrawal { record };
    assert!(matches!(
        w.run(&withdrawal, &books).await.unwrap(),
        Applied::Done { .. }
    ));
    assert_eq!(
        *books.0.lock().unwrap(),
        ["intent n 2026", "withdrawal r-1"]
    );
    assert!(write_lines(&w).await.is_empty());
}

#[tokio::test]
async fn the_lifecycle_actions_each_send_one_request_and_report_microsofts_answer() {
    let w = world().await;
    let books = Recorded::default();
    let create = Action::Create {
        body: new_relationship("act-lifecycle"),
    };
    let Applied::Created(created) = w.run(&create, &books).await.unwrap() else {
        panic!("expected Created");
    };
    // The create is followed by the lock in the same action: a create and a lock request.
    assert_eq!(created.status, S::ApprovalPending);
    assert_eq!(created.display_name, "act-lifecycle");
    let id = created.id.clone();
    let token = w.clients.tokens.partner_graph();
    let requests = w.clients.gdap.list_requests(&token, &id).await.unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r.action.as_str() == "lockForApproval"),
        "{requests:?}"
    );
    // A draft left unlocked (a lock refused right after the create) is locked by `Lock`.
    let draft = draft(&w, "act-lifecycle-draft").await;
    w.run(&Action::Lock { id: draft.clone() }, &books)
        .await
        .unwrap();
    let locked = w
        .clients
        .gdap
        .get_relationship(&token, &draft)
        .await
        .unwrap();
    assert_eq!(locked.status, Some(S::ApprovalPending));
    w.control(&format!("relationships/{id}/approve")).await;

    let group = defaults::HELPDESK_GROUP_ID;
    let assign = Action::CreateAssignment {
        relationship_id: id.clone(),
        group_id: group.into(),
        body: NewAccessAssignment {
            access_container: AccessContainer::security_group(group),
            access_details: AccessDetails::from_role_ids([READERS]),
        },
    };
    let Applied::Assigned {
        id: Some(assigned),
        roles: 1,
        ..
    } = w.run(&assign, &books).await.unwrap()
    else {
        panic!("expected Assigned with Microsoft's id");
    };
    let token = w.clients.tokens.partner_graph();
    let assignments = w
        .clients
        .gdap
        .list_access_assignments(&token, &id)
        .await
        .unwrap();
    let a = &assignments[0];
    assert_eq!(a.id, assigned);
    let update = Action::UpdateAssignment {
        relationship_id: id.clone(),
        assignment_id: a.id.clone(),
        etag: a.etag.clone().unwrap(),
        group_id: group.into(),
        access_details: AccessDetails::from_role_ids([READERS, HELPDESK]),
    };
    let Applied::UpdateAccepted {
        operation_id: Some(operation),
        role_ids,
        ..
    } = w.run(&update, &books).await.unwrap()
    else {
        panic!("expected an accepted operation");
    };
    assert_eq!(role_ids.len(), 2);
    let operations = w.clients.gdap.list_operations(&token, &id).await.unwrap();
    assert!(operations.iter().any(|o| o.id == operation));

    w.run(&Action::Terminate { id: id.clone() }, &books)
        .await
        .unwrap();
    let requests = w.clients.gdap.list_requests(&token, &id).await.unwrap();
    assert!(requests.iter().any(|r| r.action.as_str() == "terminate"));

    let prefix = "/v1.0/tenantRelationships/delegatedAdminRelationships";
    let expected = [
        ("POST", prefix.to_string()),
        ("POST", format!("{prefix}/{id}/requests")),
        ("POST", prefix.to_string()),
        ("POST", format!("{prefix}/{draft}/requests")),
        ("POST", format!("{prefix}/{id}/accessAssignments")),
        ("PATCH", format!("{prefix}/{id}/accessAssignments/{}", a.id)),
        ("POST", format!("{prefix}/{id}/requests")),
    ];
    let writes = write_lines(&w).await;
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.clone()))
        .collect();
    assert_eq!(
        writes, expected,
        "one request per action (the create's followed by its lock), nothing else written"
    );
}

#[tokio::test]
async fn a_refused_group_is_a_permanent_error_on_that_group() {
    let w = world().await;
    let books = Recorded::default();
    let Applied::Created(created) = w
        .run(
            &Action::Create {
                body: new_relationship("act-refused"),
            },
            &books,
        )
        .await
        .unwrap()
    else {
        panic!("expected Created");
    };
    let id = created.id;
    w.control(&format!("relationships/{id}/approve")).await;
    let unknown = "00000000-1111-2222-3333-444444444444";
    let assign = Action::CreateAssignment {
        relationship_id: id,
        group_id: unknown.into(),
        body: NewAccessAssignment {
            access_container: AccessContainer::security_group(unknown),
            access_details: AccessDetails::from_role_ids([READERS]),
        },
    };
    let error = w.run(&assign, &books).await.unwrap_err();
    assert!(!error.is_transient());
    assert_eq!(error.refused_group(), Some(unknown));
    assert_eq!(error.failure().reason, "AssignmentFailed");
}

/// A relationship created and not locked (a draft), made with the client itself: its id.
async fn draft(w: &World, name: &str) -> String {
    let token = w.clients.tokens.partner_graph();
    let body = new_relationship(name);
    let created = w.clients.gdap.create_relationship(&token, &body).await;
    created.unwrap().id
}

#[tokio::test]
async fn a_draft_is_deleted_with_its_etag() {
    let w = world().await;
    let books = Recorded::default();
    let token = w.clients.tokens.partner_graph();
    let id = draft(&w, "act-draft").await;
    let created = w.clients.gdap.get_relationship(&token, &id).await.unwrap();
    let delete = Action::DeleteDraft {
        id: created.id.clone(),
        etag: created.etag.clone().unwrap(),
    };
    assert!(matches!(
        w.run(&delete, &books).await.unwrap(),
        Applied::Done { .. }
    ));
    let gone = w.clients.gdap.get_relationship(&token, &created.id).await;
    assert!(gone.is_err(), "the draft is gone");
}

#[tokio::test]
async fn a_duplicate_create_is_answered_it_exists_not_failed() {
    let w = world().await;
    let books = Recorded::default();
    let create = Action::Create {
        body: new_relationship("act-twice"),
    };
    let Applied::Created(created) = w.run(&create, &books).await.unwrap() else {
        panic!("expected Created");
    };
    // The same create again (as after a crash before the id was recorded): the display name
    // exists in Microsoft's true state — "it exists: read again later", not an error.
    assert_eq!(
        w.run(&create, &books).await.unwrap(),
        Applied::NameTaken {
            display_name: "act-twice".into()
        }
    );
    let successor = Action::CreateSuccessor {
        generation: 1,
        body: new_relationship("act-twice"),
    };
    assert!(matches!(
        w.run(&successor, &books).await.unwrap(),
        Applied::NameTaken { .. }
    ));

    let id = created.id;
    w.control(&format!("relationships/{id}/approve")).await;
    let group = defaults::HELPDESK_GROUP_ID;
    let assign = Action::CreateAssignment {
        relationship_id: id,
        group_id: group.into(),
        body: NewAccessAssignment {
            access_container: AccessContainer::security_group(group),
            access_details: AccessDetails::from_role_ids([READERS]),
        },
    };
    assert!(matches!(
        w.run(&assign, &books).await.unwrap(),
        Applied::Assigned { id: Some(_), .. }
    ));
    // A second assignment of the group: Microsoft answers 409 — it exists, never AssignmentFailed.
    assert!(matches!(
        w.run(&assign, &books).await.unwrap(),
        Applied::Assigned { id: None, .. }
    ));
}

/// An active relationship with `customer` whose Helpdesk group (the partner admin is a member) has
/// Directory Readers.
async fn active_with_helpdesk(w: &World, books: &Recorded, name: &str, customer: &str) {
    let mut body = new_relationship(name);
    body.customer = Some(CustomerParticipant {
        tenant_id: customer.into(),
        display_name: None,
    });
    let Applied::Created(created) = w.run(&Action::Create { body }, books).await.unwrap() else {
        panic!("expected Created");
    };
    let id = created.id;
    w.control(&format!("relationships/{id}/approve")).await;
    let group = defaults::HELPDESK_GROUP_ID;
    let assign = Action::CreateAssignment {
        relationship_id: id,
        group_id: group.into(),
        body: NewAccessAssignment {
            access_container: AccessContainer::security_group(group),
            access_details: AccessDetails::from_role_ids([READERS]),
        },
    };
    w.run(&assign, books).await.unwrap();
}

#[tokio::test]
async fn the_access_check_reads_once_with_the_users_delegated_token_and_writes_nothing() {
    use super::act::AccessCheck;
    let w = world().await;
    let books = Recorded::default();
    let verify = Action::VerifyAccess {
        customer: defaults::CONTOSO_TENANT_ID.into(),
        settling: false,
    };
    active_with_helpdesk(&w, &books, "act-verify", defaults::CONTOSO_TENANT_ID).await;
    let writes_before = w.writes().await.len();
    let log_before = w.requests().await.len();
    assert_eq!(
        w.run(&verify, &books).await.unwrap(),
        Applied::AccessChecked(AccessCheck::Works)
    );
    let log = w.requests().await;
    let reads: Vec<_> = log[log_before..]
        .iter()
        .filter(|r| !crate::controllers::sandbox_world::text(r, "path").contains("/oauth2/"))
        .collect();
    assert_eq!(reads.len(), 1, "one read: {reads:?}");
    assert_eq!(reads[0]["method"], "GET");
    assert_eq!(reads[0]["path"], "/v1.0/servicePrincipals");
    assert_eq!(
        reads[0]["token"], "user",
        "the partner user's delegated token"
    );
    assert_eq!(w.writes().await.len(), writes_before, "no write");

    // The user taken out of the group: the access is refused, with Microsoft's error.
    let url = format!(
        "{}/_sandbox/groups/{}/members/{}",
        w.sandbox.base_url(),
        defaults::HELPDESK_GROUP_ID,
        defaults::PARTNER_ADMIN_UPN
    );
    let status = w.http.delete(url).send().await.unwrap().status();
    assert!(status.is_success());
    let Applied::AccessChecked(AccessCheck::Refused { message }) =
        w.run(&verify, &books).await.unwrap()
    else {
        panic!("expected a refusal");
    };
    assert!(
        message.contains("Authorization_RequestDenied") || message.contains("AADSTS50020"),
        "{message}"
    );
    // A fresh token is not issued at all (AADSTS50020).
    w.clients
        .tokens
        .invalidate_delegated_tokens(defaults::CONTOSO_TENANT_ID);
    let Applied::AccessChecked(AccessCheck::Refused { message }) =
        w.run(&verify, &books).await.unwrap()
    else {
        panic!("expected a refusal");
    };
    assert!(message.contains("AADSTS50020"), "{message}");
    assert_eq!(w.writes().await.len(), writes_before, "still no write");
}

#[tokio::test]
async fn the_access_check_in_a_customer_without_the_apps_consent_cannot_tell() {
    use super::act::AccessCheck;
    use crate::api::conditions::reasons;
    let w = world().await;
    let verify = Action::VerifyAccess {
        customer: defaults::FABRIKAM_TENANT_ID.into(),
        settling: false,
    };
    let books = Recorded::default();
    active_with_helpdesk(
        &w,
        &books,
        "act-verify-fabrikam",
        defaults::FABRIKAM_TENANT_ID,
    )
    .await;
    let Applied::AccessChecked(AccessCheck::Unverifiable { reason, message }) =
        w.run(&verify, &books).await.unwrap()
    else {
        panic!("expected Unverifiable");
    };
    assert_eq!(reason, reasons::APP_NOT_CONSENTED, "{message}");
    assert!(message.contains("AADSTS90099"), "{message}");
}
