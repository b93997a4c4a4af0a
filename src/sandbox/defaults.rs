//! Identifiers of the built-in default fixture.
//!
//! Contract: these values never change; tests of the clients, the controllers and the sandbox
//! itself hard-code them. The built-in fixture ([`crate::sandbox::Fixture::builtin`]) is made of
//! exactly these tenants, apps, users and groups.

/// The partner (CSP) tenant. Tests use it as the `tenantId` of partner-side token requests and
/// check that relationship ids end with it.
pub const PARTNER_TENANT_ID: &str = "8777b240-c6f0-4469-9e98-a3205431b836";
/// Primary domain of the partner tenant (UPNs of partner users end with it).
pub const PARTNER_DOMAIN: &str = "partner.example";
/// The partner's multi-tenant app registration. Tests use it as `client_id` for both grants and
/// as `applicationId` of Partner Center consents.
pub const PARTNER_CLIENT_ID: &str = "57667d41-992a-49b0-99d8-ddf68328373f";
/// The only valid client secret of [`PARTNER_CLIENT_ID`]. Tests use a different value to provoke
/// `invalid_client` (AADSTS7000215).
pub const PARTNER_CLIENT_SECRET: &str = "sandbox-client-secret";
/// A TEST-ONLY certificate (RSA 2048, self-signed, valid 2025-01-01 to 2125-01-01) registered on
/// [`PARTNER_CLIENT_ID`] next to the client secret, so the built-in app accepts both credential
/// forms. Tests put it (with [`PARTNER_CLIENT_KEY_PEM`]) under `clientCertificate`/`clientKey`.
/// Its private key is public: never register this certificate on a real app.
pub const PARTNER_CLIENT_CERTIFICATE_PEM: &str = include_str!("client-cert.pem");
/// The private key (PKCS#8 PEM) of [`PARTNER_CLIENT_CERTIFICATE_PEM`]. TEST ONLY.
pub const PARTNER_CLIENT_KEY_PEM: &str = include_str!("client-key.pem");
/// `x5t#S256` of [`PARTNER_CLIENT_CERTIFICATE_PEM`]: base64url SHA-256 of its DER.
pub const PARTNER_CLIENT_CERTIFICATE_THUMBPRINT: &str =
    "WA1mE4otcIm7ieSBoVoJ3nPeqKL0fQMprZQVUmnh664";
/// The partner's admin user: member of AdminAgents, of [`HELPDESK_GROUP_ID`] and of
/// [`APP_ADMINS_GROUP_ID`]. Tests use it as the delegated identity for GDAP writes and consents.
pub const PARTNER_ADMIN_UPN: &str = "admin@partner.example";
/// Object id of [`PARTNER_ADMIN_UPN`] (the `oid` claim of its delegated tokens).
pub const PARTNER_ADMIN_OID: &str = "bd314c88-f7d3-45ae-a44e-331d42a0675b";
/// A partner user who is NOT in AdminAgents (but can still get tokens). Tests use it to prove
/// that GDAP writes and consents are refused to non-admin-agents.
pub const PARTNER_SUPPORT_UPN: &str = "support@partner.example";
/// Refresh token of [`PARTNER_SUPPORT_UPN`] for [`PARTNER_CLIENT_ID`].
pub const PARTNER_SUPPORT_REFRESH_TOKEN: &str = "sandbox-refresh-token-support";
/// The admin's initial refresh token for [`PARTNER_CLIENT_ID`], from a sign-in with MFA. It is
/// rotated on every use: tests use it once and then carry the returned token forward.
pub const PARTNER_REFRESH_TOKEN: &str = "sandbox-refresh-token-1";
/// A second refresh token of [`PARTNER_ADMIN_UPN`], from a sign-in WITHOUT multi-factor
/// authentication: its access tokens carry `amr: ["pwd"]`, and Partner Center refuses them with
/// `401` code `900421` (Microsoft's enforcement since April 2026). Graph accepts them. Tests use
/// it to provoke `MfaRequired`.
pub const PARTNER_NO_MFA_REFRESH_TOKEN: &str = "sandbox-refresh-token-no-mfa";
/// Object id of the partner's AdminAgents group (membership is needed for GDAP writes and
/// Partner Center calls).
pub const ADMIN_AGENTS_GROUP_ID: &str = "1d2b8f78-7a89-49a6-b845-b82db9d356bd";
/// A partner security group meant for helpdesk roles. Tests bind it to relationship roles with
/// access assignments.
pub const HELPDESK_GROUP_ID: &str = "51bd8388-8ea6-410c-81dc-8481960ccaf7";
/// A partner security group meant for the consent-capable roles (Application Administrator,
/// Cloud Application Administrator). Tests bind it before calling Partner Center consent.
pub const APP_ADMINS_GROUP_ID: &str = "d007688d-9d27-4324-a3fb-b9b3e5e0645c";
/// A licensed customer with about 25 listed users and a few SKUs; the partner app is consented
/// with the Graph app roles User.Read.All, LicenseAssignment.Read.All and Organization.Read.All
/// (what the tenant import reads). Tests use it for app-only reads, GDAP relationships and
/// consents.
pub const CONTOSO_TENANT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// Primary domain of Contoso.
pub const CONTOSO_DOMAIN: &str = "contoso.example";
/// An unlicensed customer: it lacks the Office 365 Management APIs service principal and the
/// partner app is NOT consented. Tests use it for AADSTS7000229 on client credentials and for the
/// "lacks a service principal" consent error.
pub const FABRIKAM_TENANT_ID: &str = "dd0f64f5-1f5b-4090-aaad-3cda60bc160d";
/// Primary domain of Fabrikam.
pub const FABRIKAM_DOMAIN: &str = "fabrikam.example";
/// A large customer whose 100,000 users are generated (`{generate: 100000, seed: 7}`); the partner
/// app is consented for reads. Tests use it for paging, delta and memory bounds.
pub const NORTHWIND_TENANT_ID: &str = "41d114a3-d683-450f-86d8-99b973aa70d1";
/// Primary domain of Northwind.
pub const NORTHWIND_DOMAIN: &str = "northwind.example";
/// Number of generated users in Northwind.
pub const NORTHWIND_USER_COUNT: u64 = 100_000;
/// Seed of Northwind's generated users.
pub const NORTHWIND_SEED: u64 = 7;
/// Number of listed users in Contoso.
pub const CONTOSO_USER_COUNT: usize = 25;

/// Another CSP partner, which sold some of the customers' subscriptions (`ownerTenantId`). Tests
/// use it to tell this partner's licences from another's.
pub const OTHER_PARTNER_TENANT_ID: &str = "5e0c6c4e-3d5a-4b8e-9f61-2a7d0c9b1e42";

/// Well-known first-party application ids.
pub mod apps {
    /// Microsoft Graph.
    pub const MICROSOFT_GRAPH: &str = "00000003-0000-0000-c000-000000000000";
    /// Azure AD Graph (Windows Azure Active Directory), deprecated.
    pub const AZURE_AD_GRAPH: &str = "00000002-0000-0000-c000-000000000000";
    /// Office 365 Management APIs (absent in unlicensed tenants).
    pub const OFFICE365_MANAGEMENT: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
    /// Microsoft Partner Center.
    pub const PARTNER_CENTER: &str = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";
    /// Partner Customer Delegated Administration (needed for app-only GDAP calls).
    pub const PARTNER_CUSTOMER_DELEGATED_ADMIN: &str = "2832473f-ec63-45fb-976f-5d45a7d4bb91";
    /// Office 365 Exchange Online.
    pub const EXCHANGE_ONLINE: &str = "00000002-0000-0ff1-ce00-000000000000";
}

/// Resource URIs (token audiences).
pub mod resources {
    /// Audience of Microsoft Graph tokens.
    pub const GRAPH: &str = "https://graph.microsoft.com";
    /// Audience of Partner Center tokens.
    pub const PARTNER_CENTER: &str = "https://api.partnercenter.microsoft.com";
}
