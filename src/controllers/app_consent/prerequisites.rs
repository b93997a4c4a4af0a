//! The prerequisites of a consent: a relationship that gives the partner user a
//! consent-capable role in the customer, for at least the settle time (pure).

use super::desired::Intent;
use super::observed::{PartnerSide, Reference, RemoteRelationship};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The relationship the consent relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The relationship.
    pub relationship: RemoteRelationship,
    /// The GdapRelationship object, when `spec.relationshipRef` names it.
    pub object: Option<String>,
}

/// Why the prerequisites do not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// `spec.relationshipRef` names no object.
    ReferenceMissing,
    /// The referenced GdapRelationship is not Ready.
    ReferenceNotReady {
        /// Its Ready condition's message.
        message: String,
    },
    /// It is Ready but Microsoft does not list its relationship as active with the customer.
    ReferenceNotActive {
        /// The relationship id it records.
        id: Option<String>,
    },
    /// No relationship gives the partner user a consent-capable role (the referenced one, or
    /// any active one with the customer).
    NoConsentCapableRole {
        /// The relationships looked at.
        considered: Vec<RemoteRelationship>,
    },
    /// The relationship gives it, but for less than the settle time.
    Settling {
        /// The relationship.
        chosen: Box<Chosen>,
        /// When the settle time ends.
        until: DateTime<Utc>,
    },
}

/// The prerequisites of a consent: a relationship (the referenced one, else any active one) that
/// gives the partner user a consent-capable role, for at least the settle time. Without a
/// reference, the one that has given it longest is chosen.
pub fn prerequisites(
    intent: &Intent,
    partner: &PartnerSide,
    settle: Duration,
    now: DateTime<Utc>,
) -> Result<Chosen, Unmet> {
    let candidates: Vec<&RemoteRelationship> = match (&intent.relationship_ref, &partner.reference)
    {
        (Some(_), None | Some(Reference::Missing)) => return Err(Unmet::ReferenceMissing),
        (Some(_), Some(Reference::NotReady { message })) => {
            return Err(Unmet::ReferenceNotReady {
                message: message.clone(),
            });
        }
        (Some(_), Some(Reference::Ready { relationship_id })) => {
            let found = relationship_id
                .as_ref()
                .and_then(|id| partner.relationships.iter().find(|r| &r.id == id));
            match found {
                Some(r) => vec![r],
                None => {
                    return Err(Unmet::ReferenceNotActive {
                        id: relationship_id.clone(),
                    });
                }
            }
        }
        (None, _) => partner.relationships.iter().collect(),
    };
    let best = candidates
        .iter()
        .filter(|r| r.gives_consent_role())
        .min_by_key(|r| r.consent_capable_since)
        .map(|r| Chosen {
            relationship: (*r).clone(),
            object: intent.relationship_ref.clone(),
        });
    let Some(chosen) = best else {
        return Err(Unmet::NoConsentCapableRole {
            considered: candidates.into_iter().cloned().collect(),
        });
    };
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::MAX);
    match chosen.relationship.consent_capable_since {
        Some(since) if since + settle > now => Err(Unmet::Settling {
            until: since + settle,
            chosen: Box::new(chosen),
        }),
        _ => Ok(chosen),
    }
}
