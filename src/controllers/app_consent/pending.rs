//! The operator's own writes that Microsoft does not show yet (pure).
//!
//! Microsoft is eventually consistent: after a Partner Center consent, a service principal
//! create, an app role assignment or a removal, Graph's reads keep showing the previous state
//! for a while, and Entra takes longer still to make a new grant effective (until then it
//! refuses the partner user's delegated token with AADSTS65001, and Graph answers 403). A read
//! that lacks a write the operator made is therefore lag, not a reason to write again — and
//! never a reason to delete and redo, which would only restart the propagation.
//!
//! So each write is remembered, with its time, in the object's annotation
//! [`PENDING_WRITES_ANNOTATION`] (JSON, a list of [`Written`]) right after Microsoft accepted it
//! (or answered that it already exists). The plan treats a gap that a pending write covers as
//! `Propagating` — a wait, polled with a backoff — for up to `--propagation-timeout` after the
//! write, then as a failure that names the write; it writes again only for gaps no pending write
//! covers. A write is forgotten as soon as a read shows it ([`Pending::pruned`]), and all are
//! forgotten once the whole consent is verified, so a later revocation is reported as one.
//!
//! Recording after the write (rather than before) keeps crashes safe without waiting for
//! nothing: a write that happened but was not recorded is repeated once, and Microsoft answers
//! "already exists" (Partner Center 409, Graph 409 or 400), which is recorded like a success.
//! Removing the annotation lets the operator write again at once (after a timeout, say).

use super::tenant::{Tenant, TenantView};
use crate::microsoft::models::partner_center::ApplicationConsent;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::controllers::pending_writes::PENDING_WRITES_ANNOTATION;
use crate::controllers::pending_writes::{Supersedable, kind_writes};

kind_writes! {
    /// One write the operator made in Microsoft.
    pub enum Write {
        /// A Partner Center consent of these delegated scopes (resource appId → scopes, lower case);
        /// it also creates the app's service principal.
        Consent {
            /// The scopes, per resource appId.
            scopes: BTreeMap<String, BTreeSet<String>>,
            /// It replaced the previous consent (Partner Center DELETE, then POST): the tenant then
            /// holds exactly these scopes, so a narrowing is shown only when nothing else is left.
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            exact: bool,
        },
        /// A resource's service principal was created.
        ServicePrincipal {
            /// The resource's appId.
            app_id: String,
        },
        /// An application permission was granted to the app's service principal.
        AppRole {
            /// The resource's service principal id.
            resource_sp_id: String,
            /// The app role's id (lower case).
            app_role_id: String,
        },
        /// An application permission was removed.
        AppRoleRemoval {
            /// The assignment's id.
            assignment_id: String,
        },
        /// The Partner Center consent was removed (the app's delegated grants).
        ConsentRemoval,
    }
}

/// What a wait is for: the kind of a pending write, or the partner user's GDAP access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// A Partner Center consent (the app's service principal and delegated grants).
    Consent,
    /// A resource's service principal.
    ServicePrincipal,
    /// An application permission granted.
    AppRole,
    /// An application permission removed.
    AppRoleRemoval,
    /// The consent removed.
    ConsentRemoval,
    /// The partner user's access to the customer through a new GDAP role (not a write of this
    /// object: the relationship gives it).
    GdapAccess,
}

impl Write {
    /// Its kind.
    pub fn awaited(&self) -> Awaited {
        match self {
            Write::Consent { .. } => Awaited::Consent,
            Write::ServicePrincipal { .. } => Awaited::ServicePrincipal,
            Write::AppRole { .. } => Awaited::AppRole,
            Write::AppRoleRemoval { .. } => Awaited::AppRoleRemoval,
            Write::ConsentRemoval => Awaited::ConsentRemoval,
        }
    }

    /// The consent write of a Partner Center consent body; `exact` when it replaced the previous
    /// consent.
    pub fn consent(body: &ApplicationConsent, exact: bool) -> Write {
        let mut scopes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for g in &body.application_grants {
            scopes
                .entry(g.enterprise_application_id.to_ascii_lowercase())
                .or_default()
                .extend(
                    g.scope
                        .split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(|s| s.to_ascii_lowercase()),
                );
        }
        Write::Consent { scopes, exact }
    }

    /// Whether `tenant` shows the write.
    pub fn shown_in(&self, tenant: &Tenant) -> bool {
        match tenant {
            Tenant::Read(view) => self.shown_in_view(view),
            // The token is refused: the consent is gone (or not effective), nothing else is known.
            Tenant::NotConsented { .. } => matches!(self, Write::ConsentRemoval),
            Tenant::NoAccess { .. } | Tenant::Denied { .. } => false,
        }
    }

    fn shown_in_view(&self, view: &TenantView) -> bool {
        match self {
            Write::Consent { scopes, exact } => {
                let holds_all = scopes.iter().all(|(resource, wanted)| {
                    view.grants
                        .get(resource)
                        .is_some_and(|held| wanted.is_subset(held))
                });
                let nothing_else = !exact
                    || view.grants.iter().all(|(resource, held)| {
                        scopes.get(resource).is_some_and(|w| held.is_subset(w))
                    });
                view.app_principal.is_some() && holds_all && nothing_else
            }
            Write::ServicePrincipal { app_id } => {
                matches!(view.resources.get(app_id), Some(Some(_)))
            }
            Write::AppRole {
                resource_sp_id,
                app_role_id,
            } => view
                .assignments
                .iter()
                .any(|a| &a.resource_id == resource_sp_id && &a.app_role_id == app_role_id),
            Write::AppRoleRemoval { assignment_id } => {
                !view.assignments.iter().any(|a| &a.id == assignment_id)
            }
            Write::ConsentRemoval => view.grants.is_empty(),
        }
    }
}

impl Supersedable for Write {
    /// A later write that replaces this one's record (the same object, or its undoing).
    fn superseded_by(&self, later: &Write) -> bool {
        match (self, later) {
            (
                Write::Consent { .. } | Write::ConsentRemoval,
                Write::Consent { .. } | Write::ConsentRemoval,
            ) => true,
            (a, b) => a == b,
        }
    }
}

impl Pending {
    /// Without the writes `tenant` shows.
    pub fn pruned(&self, tenant: &Tenant) -> Pending {
        Pending::new(
            self.0
                .iter()
                .filter(|w| !w.write.shown_in(tenant))
                .cloned()
                .collect(),
        )
    }

    fn find(&self, f: impl Fn(&Write) -> bool) -> Option<&Written> {
        self.0.iter().rev().find(|w| f(&w.write))
    }

    /// The pending consent, if any.
    pub fn consent(&self) -> Option<&Written> {
        self.find(|w| matches!(w, Write::Consent { .. }))
    }

    /// The pending consent that includes every one of `scopes` of `resource`.
    pub fn consent_covering(&self, resource: &str, scopes: &[String]) -> Option<&Written> {
        self.find(|w| match w {
            Write::Consent { scopes: held, .. } => held.get(resource).is_some_and(|held| {
                scopes
                    .iter()
                    .all(|s| held.contains(&s.to_ascii_lowercase()))
            }),
            _ => false,
        })
    }

    /// The pending consent that replaced the previous one without any of `scopes` of
    /// `resource` (a narrowing the reads do not show yet).
    pub fn consent_removing(&self, resource: &str, scopes: &[String]) -> Option<&Written> {
        self.find(|w| match w {
            Write::Consent {
                scopes: held,
                exact: true,
            } => held.get(resource).is_none_or(|held| {
                scopes
                    .iter()
                    .all(|s| !held.contains(&s.to_ascii_lowercase()))
            }),
            _ => false,
        })
    }

    /// The pending create of `app_id`'s service principal.
    pub fn service_principal(&self, app_id: &str) -> Option<&Written> {
        self.find(|w| matches!(w, Write::ServicePrincipal { app_id: a } if a == app_id))
    }

    /// The pending grant of an app role.
    pub fn app_role(&self, resource_sp_id: &str, app_role_id: &str) -> Option<&Written> {
        self.find(|w| {
            matches!(w, Write::AppRole { resource_sp_id: s, app_role_id: r }
                if s == resource_sp_id && r.eq_ignore_ascii_case(app_role_id))
        })
    }

    /// The pending grants of app roles.
    pub fn app_roles(&self) -> impl Iterator<Item = &Written> {
        self.0
            .iter()
            .filter(|w| matches!(w.write, Write::AppRole { .. }))
    }

    /// The pending removal of an assignment.
    pub fn app_role_removal(&self, assignment_id: &str) -> Option<&Written> {
        self.find(|w| matches!(w, Write::AppRoleRemoval { assignment_id: a } if a == assignment_id))
    }

    /// The pending removal of the consent.
    pub fn consent_removal(&self) -> Option<&Written> {
        self.find(|w| matches!(w, Write::ConsentRemoval))
    }
}
