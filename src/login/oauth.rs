//! The token endpoint calls of the interactive sign-in: the device authorization request and
//! the grants that redeem a device code or an authorization code. The partner app is a
//! confidential client, so every token request authenticates it exactly as the operator's token
//! provider does (`client_secret`, or a client assertion signed with its certificate whose `aud`
//! is the token URL). Errors never carry a secret: the values sent are scrubbed from them.

use crate::microsoft::certificate::CLIENT_ASSERTION_TYPE;
use crate::microsoft::{Audience, ClientCredential, Endpoints, Error, Reason, Secret};
use reqwest::Url;
use serde::Deserialize;
use std::time::Duration;

/// The scopes of the sign-in: the app's delegated Graph permissions (`.default`; Entra issues
/// one resource per request), `offline_access` for the refresh token, and `openid profile` for
/// the id token that names the user.
pub fn sign_in_scope(endpoints: &Endpoints) -> String {
    format!(
        "{} openid profile",
        endpoints.delegated_scope(Audience::Graph)
    )
}

/// What a successful grant returns.
pub struct TokenSet {
    /// The Graph access token.
    pub access_token: Secret,
    /// The refresh token (absent when `offline_access` was not granted).
    pub refresh_token: Option<Secret>,
    /// The OpenID Connect id token (asked for with `openid`).
    pub id_token: Option<Secret>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Secret,
    refresh_token: Option<Secret>,
    id_token: Option<Secret>,
}

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Deserialize)]
pub struct DeviceCode {
    /// The code the client redeems (secret-ish: never printed).
    pub device_code: Secret,
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds between polls (default 5).
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// The instruction to show the user, as Entra words it.
    pub message: Option<String>,
}

fn default_interval() -> u64 {
    5
}

/// Calls the login endpoints of one tenant as one app.
pub struct SignInClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    tenant: String,
    client_id: String,
    credential: ClientCredential,
}

impl SignInClient {
    /// A client for `tenant` and the app `client_id` authenticating with `credential`.
    pub fn new(
        endpoints: Endpoints,
        tenant: &str,
        client_id: &str,
        credential: ClientCredential,
    ) -> Result<Self, Error> {
        Ok(SignInClient {
            http: endpoints.http_client(Duration::from_secs(60))?,
            endpoints,
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            credential,
        })
    }

    /// The endpoints (for the authorize URL and the scope).
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `{login}/{tenant}/oauth2/v2.0/{leaf}` (`devicecode`, `authorize`).
    pub fn url(&self, leaf: &str) -> Url {
        let mut url = self.endpoints.token_url(&self.tenant);
        url.path_segments_mut()
            .expect("validated base URL")
            .pop()
            .push(leaf);
        url
    }

    /// `POST …/devicecode` with the client id and the sign-in scope.
    pub async fn device_code(&self) -> Result<DeviceCode, Error> {
        let scope = sign_in_scope(&self.endpoints);
        let form = [("client_id", self.client_id.as_str()), ("scope", &scope)];
        let bytes = self.post(self.url("devicecode"), &form, &[]).await?;
        serde_json::from_slice(&bytes).map_err(|_| {
            Error::new(
                Reason::InvalidResponse,
                "the device code endpoint answered with an unexpected body",
            )
        })
    }

    /// `POST …/token` with `form` plus the client's authentication. `secrets` are values in
    /// `form` to scrub from errors. A failure carries the OAuth `error` as its
    /// [`Error::code`].
    pub async fn redeem(&self, form: &[(&str, &str)], secrets: &[&str]) -> Result<TokenSet, Error> {
        let url = self.endpoints.token_url(&self.tenant);
        let auth = self.client_auth(url.as_str());
        let mut all = form.to_vec();
        all.push(("client_id", self.client_id.as_str()));
        all.extend(auth.iter().map(|(name, value)| (*name, value.expose())));
        let mut scrub: Vec<&str> = auth
            .iter()
            .filter(|(name, _)| *name != "client_assertion_type")
            .map(|(_, value)| value.expose())
            .collect();
        scrub.extend_from_slice(secrets);
        let bytes = self.post(url, &all, &scrub).await?;
        let body: TokenBody = serde_json::from_slice(&bytes).map_err(|_| {
            Error::new(
                Reason::InvalidResponse,
                "the token endpoint answered with an unexpected body",
            )
        })?;
        Ok(TokenSet {
            access_token: body.access_token,
            refresh_token: body.refresh_token.filter(|t| !t.is_empty()),
            id_token: body.id_token.filter(|t| !t.is_empty()),
        })
    }

    /// The form fields that authenticate the app at `token_url`.
    fn client_auth(&self, token_url: &str) -> Vec<(&'static str, Secret)> {
        match &self.credential {
            ClientCredential::Secret(secret) => vec![("client_secret", secret.clone())],
            ClientCredential::Certificate(cert) => vec![
                ("client_assertion_type", Secret::new(CLIENT_ASSERTION_TYPE)),
                (
                    "client_assertion",
                    cert.assertion(&self.client_id, token_url, chrono::Utc::now()),
                ),
            ],
        }
    }

    async fn post(
        &self,
        url: Url,
        form: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<bytes::Bytes, Error> {
        let resp = self
            .http
            .post(url)
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| Error::from_transport(&e, true).scrub(secrets))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::from_transport(&e, true).scrub(secrets))?;
        if !status.is_success() {
            return Err(Error::from_token(status, &bytes).scrub(secrets));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_scope() {
        let endpoints = Endpoints::local("http://127.0.0.1:9", None).unwrap();
        let client = SignInClient::new(endpoints, "t-1", "app", "s".into()).unwrap();
        assert_eq!(
            client.url("devicecode").as_str(),
            "http://127.0.0.1:9/t-1/oauth2/v2.0/devicecode"
        );
        assert_eq!(
            client.url("authorize").as_str(),
            "http://127.0.0.1:9/t-1/oauth2/v2.0/authorize"
        );
        assert_eq!(
            sign_in_scope(client.endpoints()),
            "https://graph.microsoft.com/.default offline_access openid profile"
        );
    }
}
