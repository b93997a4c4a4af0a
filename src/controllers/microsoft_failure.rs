//! The one mapping from a Microsoft client error to what a controller reports: a condition reason
//! (a constant of `api::conditions::reasons`) and whether retrying later can help. Every
//! controller — GdapRelationship, AppConsent, TenantSync (its imports' Microsoft errors) — names a
//! Microsoft failure through [`reason`] and [`is_transient`], so one failure reads the same on
//! every kind; and [`is_credentials_reason`] is the one test of "the credentials Secret does not
//! work" that the `gdap_credentials_valid` gauge (and the alert on it) follows.
//!
//! Contract:
//! - Transient (retrying later helps without anybody acting): the client's transient reasons
//!   (throttling, outages, timeouts, a cut-short answer, a rotated refresh token not stored yet)
//!   and a write whose outcome is unknown (the next observe looks it up before writing again):
//!   `TransientError`.
//! - Credentials — the Secret (or the app registration behind it) must be fixed, and no call with
//!   it can work: an expired, revoked or invalid refresh token, a wrong or expired client secret,
//!   a certificate Entra does not accept, a refused or mistimed client assertion, and for the
//!   partner's GDAP user an app Entra does not know or has no consent for: `CredentialsInvalid`,
//!   on every kind. The message (the client error's text) names the exact cause
//!   (`CertificateNotAccepted: …`, `RefreshTokenRevoked: …`) and what to do.
//! - A sign-in without the multi-factor authentication Partner Center (or an Entra policy) wants:
//!   `MfaRequired`; a resource's service principal missing in the customer tenant:
//!   `ServicePrincipalsMissing`.
//! - The app-only reads of a TenantSync in a customer tenant ([`Caller::App`]): Graph refusing
//!   them (403, or 401 with a fresh token) and Entra not knowing the app, or its consent, in that
//!   tenant mean the customer's consent is missing or revoked, not that the credentials are bad:
//!   `AccessDenied`.
//! - Anything else Microsoft refused permanently: `MicrosoftError`.
//! - The check that the partner user's delegated access to a customer works
//!   ([`Caller::PartnerUserInCustomer`], a GdapRelationship's `AccessVerified`): Entra refusing
//!   the user a token there (no GDAP access, AADSTS50020; the customer's conditional access or
//!   MFA; no such tenant) and Graph refusing the read (403, 401 with a fresh token) mean the
//!   access does not work: `AccessRefused`. The app not known or not consented in the customer
//!   (AADSTS700016/7000229, 90099/65001) says nothing about the user's access: `AppNotConsented`.
//!   The credentials' own refusals stay `CredentialsInvalid`.
//!
//! Why the caller matters: Entra answers "app not in this tenant" (AADSTS700016/7000229) and
//! "app not consented" (AADSTS65001/90099) for the tenant the token is for. The partner's GDAP
//! user signs in to the partner tenant, where the app is registered, so there these answers mean a
//! wrong `clientId` or an app registration without its consent — the Secret must change (in a
//! customer tenant the delegated grant's "not consented" is what the AppConsent controller
//! observes and acts on, not an error). The app-only token of an import is for the customer's
//! tenant, where they mean the customer has not consented the app (any more).

use crate::api::conditions::reasons;
use crate::controllers::failure::Failure;
use crate::microsoft::{self, Reason};

/// Which of the partner's two token sources made the failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The partner's GDAP user (delegated tokens, refresh-token grant): every call of the
    /// GdapRelationship and AppConsent controllers, in the partner tenant and in customer tenants.
    PartnerUser,
    /// The partner app alone (app-only token, client-credentials grant) in a customer tenant: a
    /// TenantSync's import.
    App,
    /// The partner's GDAP user in a customer tenant, checking that its delegated access there
    /// works (a GdapRelationship's access check: a delegated token for the customer and a read).
    PartnerUserInCustomer,
}

/// Whether retrying a failed Microsoft call later can help without anybody acting (a write whose
/// outcome is unknown is looked up again, which is safe to retry).
pub fn is_transient(error: &microsoft::Error) -> bool {
    error.is_transient() || error.reason() == Reason::OutcomeUnknown
}

/// The condition reason of `error`, from a call `caller` made (see the module docs).
pub fn reason(error: &microsoft::Error, caller: Caller) -> &'static str {
    if is_transient(error) {
        return reasons::TRANSIENT_ERROR;
    }
    match (error.reason(), caller) {
        (Reason::AppNotInTenant | Reason::ConsentMissing, Caller::PartnerUserInCustomer) => {
            reasons::APP_NOT_CONSENTED
        }
        (r, Caller::PartnerUserInCustomer) if refuses_the_access(r) => reasons::ACCESS_REFUSED,
        (Reason::AppNotInTenant | Reason::ConsentMissing, Caller::App) => reasons::ACCESS_DENIED,
        (Reason::AccessDenied | Reason::Unauthenticated | Reason::NoPermissions, Caller::App) => {
            reasons::ACCESS_DENIED
        }
        (r, _) if refuses_the_credentials(r, caller) => reasons::CREDENTIALS_INVALID,
        (Reason::MfaRequired, _) => reasons::MFA_REQUIRED,
        (Reason::ServicePrincipalMissing, _) => reasons::SERVICE_PRINCIPALS_MISSING,
        _ => reasons::MICROSOFT_ERROR,
    }
}

/// `error` as a failure for the report: its [`reason`], `message` (what was being done, and the
/// error's own text), and whether it is transient.
pub fn failure(error: &microsoft::Error, caller: Caller, message: impl Into<String>) -> Failure {
    Failure::new(reason(error, caller), message, is_transient(error))
}

/// For the partner user in a customer tenant: Entra or Graph refused the user's access there
/// (see the module docs).
fn refuses_the_access(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::NoGdapAccess
            | Reason::AccessDenied
            | Reason::NoPermissions
            | Reason::Unauthenticated
            | Reason::ConditionalAccess
            | Reason::MfaRequired
            | Reason::TenantNotFound
    )
}

/// Entra refused the credentials themselves (see the module docs): the Secret must change.
fn refuses_the_credentials(reason: Reason, caller: Caller) -> bool {
    match reason {
        Reason::RefreshTokenExpired
        | Reason::RefreshTokenRevoked
        | Reason::RefreshTokenInvalid
        | Reason::InvalidClientSecret
        | Reason::ClientSecretExpired
        | Reason::CertificateNotAccepted
        | Reason::ClientAssertionTimeInvalid
        | Reason::ClientAssertionInvalid => true,
        Reason::AppNotInTenant | Reason::ConsentMissing => caller == Caller::PartnerUser,
        _ => false,
    }
}

/// Every condition reason [`reason`] returns.
pub const REASONS: [&str; 8] = [
    reasons::TRANSIENT_ERROR,
    reasons::CREDENTIALS_INVALID,
    reasons::MFA_REQUIRED,
    reasons::SERVICE_PRINCIPALS_MISSING,
    reasons::ACCESS_DENIED,
    reasons::MICROSOFT_ERROR,
    reasons::ACCESS_REFUSED,
    reasons::APP_NOT_CONSENTED,
];

/// The condition reasons that say the credentials Secret does not work — whichever kind reports
/// them, and whether the Secret's keys or Entra's answer were the problem: `CredentialsInvalid`,
/// `MfaRequired` (the refresh token's sign-in lacks the MFA that is required: it must be replaced)
/// and `CredentialsNeededForDeletion`. `gdap_credentials_valid` drops to 0 for each.
pub const CREDENTIALS_REASONS: [&str; 3] = [
    reasons::CREDENTIALS_INVALID,
    reasons::MFA_REQUIRED,
    reasons::CREDENTIALS_NEEDED_FOR_DELETION,
];

/// True when `reason` says the credentials Secret does not work ([`CREDENTIALS_REASONS`]).
pub fn is_credentials_reason(reason: &str) -> bool {
    CREDENTIALS_REASONS.contains(&reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::Error;

    /// Fails to compile when the clients gain a reason: add it to [`TABLE`] as well.
    fn listed(reason: Reason) -> Reason {
        use Reason::*;
        match reason {
            Throttled
            | ServiceUnavailable
            | Timeout
            | Network
            | OutcomeUnknown
            | RotationNotPersisted
            | NotFound
            | PreconditionFailed
            | Conflict
            | AlreadyExists
            | InvalidRequest
            | AccessDenied
            | Unauthenticated
            | NoPermissions
            | ConsentMissing
            | RefreshTokenExpired
            | RefreshTokenRevoked
            | RefreshTokenInvalid
            | InvalidClientSecret
            | ClientSecretExpired
            | CertificateNotAccepted
            | ClientAssertionTimeInvalid
            | ClientAssertionInvalid
            | AppNotInTenant
            | ServicePrincipalMissing
            | MfaRequired
            | ConditionalAccess
            | NoGdapAccess
            | TenantNotFound
            | InvalidScope
            | SignInFailed
            | CustomerNotFound
            | PartnerCenterForbidden
            | DeltaExpired
            | WrongToken
            | InvalidResponse
            | ResponseCutShort
            | Configuration
            | Http => reason,
        }
    }

    /// How many reasons [`listed`] names.
    const MICROSOFT_REASONS: usize = 39;

    /// (Microsoft reason, reason for the partner's GDAP user, reason for an app-only import,
    /// transient).
    const TABLE: [(Reason, &str, &str, bool); MICROSOFT_REASONS] = {
        use reasons::*;
        [
            (Reason::Throttled, TRANSIENT_ERROR, TRANSIENT_ERROR, true),
            (
                Reason::ServiceUnavailable,
                TRANSIENT_ERROR,
                TRANSIENT_ERROR,
                true,
            ),
            (Reason::Timeout, TRANSIENT_ERROR, TRANSIENT_ERROR, true),
            (Reason::Network, TRANSIENT_ERROR, TRANSIENT_ERROR, true),
            (
                Reason::OutcomeUnknown,
                TRANSIENT_ERROR,
                TRANSIENT_ERROR,
                true,
            ),
            (
                Reason::RotationNotPersisted,
                TRANSIENT_ERROR,
                TRANSIENT_ERROR,
                true,
            ),
            (
                Reason::ResponseCutShort,
                TRANSIENT_ERROR,
                TRANSIENT_ERROR,
                true,
            ),
            (
                Reason::RefreshTokenExpired,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::RefreshTokenRevoked,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::RefreshTokenInvalid,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::InvalidClientSecret,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::ClientSecretExpired,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::CertificateNotAccepted,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::ClientAssertionTimeInvalid,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::ClientAssertionInvalid,
                CREDENTIALS_INVALID,
                CREDENTIALS_INVALID,
                false,
            ),
            (
                Reason::AppNotInTenant,
                CREDENTIALS_INVALID,
                ACCESS_DENIED,
                false,
            ),
            (
                Reason::ConsentMissing,
                CREDENTIALS_INVALID,
                ACCESS_DENIED,
                false,
            ),
            (Reason::AccessDenied, MICROSOFT_ERROR, ACCESS_DENIED, false),
            (
                Reason::Unauthenticated,
                MICROSOFT_ERROR,
                ACCESS_DENIED,
                false,
            ),
            (Reason::NoPermissions, MICROSOFT_ERROR, ACCESS_DENIED, false),
            (Reason::MfaRequired, MFA_REQUIRED, MFA_REQUIRED, false),
            (
                Reason::ServicePrincipalMissing,
                SERVICE_PRINCIPALS_MISSING,
                SERVICE_PRINCIPALS_MISSING,
                false,
            ),
            (Reason::NotFound, MICROSOFT_ERROR, MICROSOFT_ERROR, false),
            (
                Reason::PreconditionFailed,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (Reason::Conflict, MICROSOFT_ERROR, MICROSOFT_ERROR, false),
            (
                Reason::AlreadyExists,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::InvalidRequest,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::ConditionalAccess,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::NoGdapAccess,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::TenantNotFound,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::InvalidScope,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::SignInFailed,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::CustomerNotFound,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::PartnerCenterForbidden,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::DeltaExpired,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (Reason::WrongToken, MICROSOFT_ERROR, MICROSOFT_ERROR, false),
            (
                Reason::InvalidResponse,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (
                Reason::Configuration,
                MICROSOFT_ERROR,
                MICROSOFT_ERROR,
                false,
            ),
            (Reason::Http, MICROSOFT_ERROR, MICROSOFT_ERROR, false),
        ]
    };

    #[test]
    fn each_microsoft_reason_has_one_condition_reason_per_caller() {
        for (microsoft, partner_user, app, transient) in TABLE {
            let error = Error::new(microsoft, "refused");
            assert_eq!(
                (reason(&error, Caller::PartnerUser), is_transient(&error)),
                (partner_user, transient),
                "{microsoft:?} for the partner's GDAP user"
            );
            assert_eq!(
                (reason(&error, Caller::App), is_transient(&error)),
                (app, transient),
                "{microsoft:?} for an app-only import"
            );
            let failure = failure(&error, Caller::PartnerUser, "reading: x");
            assert_eq!(
                (failure.reason, failure.message.as_str(), failure.transient),
                (partner_user, "reading: x", transient)
            );
        }
    }

    #[test]
    fn the_table_covers_every_microsoft_reason_and_names_only_known_reasons() {
        let rows: std::collections::HashSet<Reason> =
            TABLE.iter().map(|(r, ..)| listed(*r)).collect();
        assert_eq!(
            rows.len(),
            MICROSOFT_REASONS,
            "one row per Microsoft reason"
        );
        for (_, partner_user, app, _) in TABLE {
            assert!(REASONS.contains(&partner_user) && REASONS.contains(&app));
        }
    }

    #[test]
    fn every_refusal_of_the_credentials_reads_the_same_on_every_kind_and_drops_the_gauge() {
        let refusals = [
            Reason::RefreshTokenExpired,
            Reason::RefreshTokenRevoked,
            Reason::RefreshTokenInvalid,
            Reason::InvalidClientSecret,
            Reason::ClientSecretExpired,
            Reason::CertificateNotAccepted,
            Reason::ClientAssertionTimeInvalid,
            Reason::ClientAssertionInvalid,
        ];
        for microsoft in refusals {
            let error = Error::new(microsoft, "refused");
            let (partner_user, app) = (
                reason(&error, Caller::PartnerUser),
                reason(&error, Caller::App),
            );
            assert_eq!(
                (partner_user, app),
                (reasons::CREDENTIALS_INVALID, reasons::CREDENTIALS_INVALID),
                "{microsoft:?}"
            );
            assert!(is_credentials_reason(partner_user), "{microsoft:?}");
        }
        let certificate = Error::new(Reason::CertificateNotAccepted, "AADSTS700027");
        let failure = failure(&certificate, Caller::App, certificate.to_string());
        assert!(
            failure
                .message
                .starts_with("CertificateNotAccepted: AADSTS700027"),
            "the message keeps the exact cause: {}",
            failure.message
        );
    }

    #[test]
    fn the_access_check_reads_refusals_of_the_users_access_apart_from_the_apps_consent() {
        let of = |r: Reason| reason(&Error::new(r, "refused"), Caller::PartnerUserInCustomer);
        for refused in [
            Reason::NoGdapAccess,
            Reason::AccessDenied,
            Reason::NoPermissions,
            Reason::Unauthenticated,
            Reason::ConditionalAccess,
            Reason::MfaRequired,
            Reason::TenantNotFound,
        ] {
            assert_eq!(of(refused), reasons::ACCESS_REFUSED, "{refused:?}");
        }
        for not_consented in [Reason::ConsentMissing, Reason::AppNotInTenant] {
            assert_eq!(
                of(not_consented),
                reasons::APP_NOT_CONSENTED,
                "{not_consented:?}"
            );
        }
        assert_eq!(
            of(Reason::RefreshTokenRevoked),
            reasons::CREDENTIALS_INVALID
        );
        assert_eq!(of(Reason::Throttled), reasons::TRANSIENT_ERROR);
        assert_eq!(of(Reason::InvalidRequest), reasons::MICROSOFT_ERROR);
        for (microsoft, ..) in TABLE {
            let r = of(microsoft);
            assert!(REASONS.contains(&r), "{microsoft:?} gave {r}");
            assert!(
                !is_credentials_reason(r) || r == reasons::CREDENTIALS_INVALID,
                "{microsoft:?}: a refusal in a customer tenant never says the Secret is broken unless Entra refused the credentials themselves"
            );
        }
    }

    #[test]
    fn only_the_credentials_reasons_drop_the_gauge() {
        for reason in CREDENTIALS_REASONS {
            assert!(is_credentials_reason(reason), "{reason}");
        }
        for other in [
            reasons::TRANSIENT_ERROR,
            reasons::ACCESS_DENIED,
            reasons::MICROSOFT_ERROR,
            reasons::SERVICE_PRINCIPALS_MISSING,
            reasons::KUBERNETES_ERROR,
            reasons::KUBERNETES_FORBIDDEN,
            reasons::PROPAGATING,
            "",
        ] {
            assert!(!is_credentials_reason(other), "{other}");
        }
    }
}
