//! Hosts per cloud, their overrides, and the HTTP client that trusts an extra CA.
//!
//! Contract: [`Endpoints`] holds validated base URLs for login, Graph and Partner Center plus the
//! *resource* URIs that token scopes name. Overriding a URL (e.g. to point at the sandbox) never
//! changes the resource URI: tokens keep the real audience. Base URLs must be `https://`, except
//! that plain `http://` is accepted for loopback hosts only. Validation errors name the flag.

use crate::microsoft::error::{Error, Reason};
use clap::{Args, ValueEnum};
use reqwest::Url;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A Microsoft cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Cloud {
    /// Global (commercial) cloud, also used by GCC (not High).
    #[default]
    Public,
    /// US Government GCC High (L4).
    Usgov,
    /// US Government DoD (L5).
    UsgovDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    /// The default (login, Graph, Partner Center) hosts of this cloud, which are also the
    /// resource URIs used in token scopes.
    pub fn hosts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Cloud::Public => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "https://api.partnercenter.microsoft.com",
            ),
            Cloud::Usgov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "https://api.partnercenter.microsoft.com",
            ),
            Cloud::UsgovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
                "https://api.partnercenter.microsoft.com",
            ),
            Cloud::China => (
                "https://login.partner.microsoftonline.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://partner.partnercenterapi.microsoftonline.cn",
            ),
        }
    }
}

/// Endpoint options, flattened into the `run` subcommand.
#[derive(Debug, Clone, Args, Default)]
pub struct EndpointArgs {
    /// Microsoft cloud whose hosts to use.
    #[arg(long, value_enum, default_value_t = Cloud::Public, env = "GDAP_CLOUD")]
    pub cloud: Cloud,
    /// Override the Entra login base URL (e.g. the sandbox's https://127.0.0.1:8443).
    #[arg(long, env = "GDAP_LOGIN_URL")]
    pub login_url: Option<String>,
    /// Override the Microsoft Graph base URL (without /v1.0).
    #[arg(long, env = "GDAP_GRAPH_URL")]
    pub graph_url: Option<String>,
    /// Override the Partner Center base URL (without /v1).
    #[arg(long, env = "GDAP_PARTNER_CENTER_URL")]
    pub partner_center_url: Option<String>,
    /// PEM file with an extra CA to trust (the sandbox's, or a corporate proxy's).
    #[arg(long, env = "GDAP_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

impl EndpointArgs {
    /// Validates the options and reads the CA file.
    pub fn resolve(&self) -> Result<Endpoints, Error> {
        let mut endpoints = Endpoints::for_cloud(self.cloud);
        if let Some(u) = &self.login_url {
            endpoints.login = parse_base("--login-url", u)?;
        }
        if let Some(u) = &self.graph_url {
            endpoints.graph = parse_base("--graph-url", u)?;
        }
        if let Some(u) = &self.partner_center_url {
            endpoints.partner_center = parse_base("--partner-center-url", u)?;
        }
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                config_error(format!("--ca-file {}: cannot read: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                config_error(format!(
                    "--ca-file {}: not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(config_error(format!(
                    "--ca-file {}: contains no PEM certificate",
                    path.display()
                )));
            }
            endpoints.extra_ca_pem = Some(pem);
        }
        Ok(endpoints)
    }
}

/// Validated endpoints. Build with [`Endpoints::for_cloud`], [`Endpoints::local`] or
/// [`EndpointArgs::resolve`].
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The cloud whose resource URIs tokens name.
    pub cloud: Cloud,
    login: Url,
    graph: Url,
    partner_center: Url,
    extra_ca_pem: Option<Vec<u8>>,
}

/// The resource a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Microsoft Graph.
    Graph,
    /// Partner Center.
    PartnerCenter,
}

impl Endpoints {
    /// The default hosts of a cloud.
    pub fn for_cloud(cloud: Cloud) -> Self {
        let (login, graph, pc) = cloud.hosts();
        Endpoints {
            cloud,
            login: Url::parse(login).expect("static URL"),
            graph: Url::parse(graph).expect("static URL"),
            partner_center: Url::parse(pc).expect("static URL"),
            extra_ca_pem: None,
        }
    }

    /// Public-cloud resource URIs with every host at `base` (the sandbox), trusting `ca_pem`.
    pub fn local(base: &str, ca_pem: Option<Vec<u8>>) -> Result<Self, Error> {
        let url = parse_base("base URL", base)?;
        Ok(Endpoints {
            cloud: Cloud::Public,
            login: url.clone(),
            graph: url.clone(),
            partner_center: url,
            extra_ca_pem: ca_pem,
        })
    }

    /// The token URL for a tenant: `{login}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant_id: &str) -> Url {
        join(&self.login, &[tenant_id, "oauth2", "v2.0", "token"])
    }

    /// The admin-consent link for a customer's administrator (the manual fallback of the
    /// Partner Center consent): `{login}/{tenant}/adminconsent?client_id={app}`. Opened by a
    /// Global Administrator, it grants everything the app registration declares.
    pub fn admin_consent_url(&self, tenant_id: &str, client_id: &str) -> Url {
        let mut url = join(&self.login, &[tenant_id, "adminconsent"]);
        url.query_pairs_mut().append_pair("client_id", client_id);
        url
    }

    /// A Graph v1.0 URL from path segments (each percent-encoded).
    pub fn graph_url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["v1.0"];
        all.extend_from_slice(segments);
        join(&self.graph, &all)
    }

    /// A Partner Center v1 URL from path segments (each percent-encoded).
    pub fn partner_center_url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["v1"];
        all.extend_from_slice(segments);
        join(&self.partner_center, &all)
    }

    /// A Partner Center webhooks URL from path segments (each percent-encoded):
    /// `{partner_center}/webhooks/v1/{segments…}`.
    pub fn partner_center_webhooks_url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["webhooks", "v1"];
        all.extend_from_slice(segments);
        join(&self.partner_center, &all)
    }

    /// The Graph base URL (for checking that `@odata.nextLink`s stay on it).
    pub fn graph_base(&self) -> &Url {
        &self.graph
    }

    /// The resource URI of an audience in this cloud (what a token's `aud` names).
    pub fn resource(&self, audience: Audience) -> &'static str {
        let (_, graph, pc) = self.cloud.hosts();
        match audience {
            Audience::Graph => graph,
            Audience::PartnerCenter => pc,
        }
    }

    /// The client-credentials scope: `{resource}/.default`.
    pub fn app_scope(&self, audience: Audience) -> String {
        format!("{}/.default", self.resource(audience))
    }

    /// The refresh-token-grant scope, with `offline_access` so a rotated refresh token comes back.
    pub fn delegated_scope(&self, audience: Audience) -> String {
        match audience {
            Audience::Graph => format!("{}/.default offline_access", self.resource(audience)),
            Audience::PartnerCenter => {
                format!(
                    "{}/user_impersonation offline_access",
                    self.resource(audience)
                )
            }
        }
    }

    /// Builds the HTTP client: rustls, the extra CA if any, connect timeout, HTTP/2 when offered.
    pub fn http_client(&self, request_timeout: Duration) -> Result<reqwest::Client, Error> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("gdap-operator/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(pem) = &self.extra_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| config_error(format!("--ca-file: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| config_error(format!("HTTP client: {e}")))
    }
}

/// Appends `segments` to `base`, each percent-encoded as one path segment. A segment that is
/// `.` or `..` (an id from a hostile annotation or answer) would climb the path — `…/{id}` with
/// `..` addresses the collection itself — so its dots are sent escaped: a literal id that
/// cannot exist, answered 404, instead of another resource.
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().expect("validated base URL");
        path.pop_if_empty();
        for segment in segments {
            match *segment {
                "." | ".." => path.push(&segment.replace('.', "%2E")),
                other => path.push(other),
            };
        }
    }
    url
}

fn config_error(text: String) -> Error {
    Error::new(Reason::Configuration, text)
}

/// Parses a base URL; `flag` names the option in error messages.
pub fn parse_base(flag: &str, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text.trim_end_matches('/'))
        .map_err(|e| config_error(format!("{flag} {text:?} is not a URL: {e}")))?;
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(config_error(format!(
            "{flag} {text:?} must be an absolute http(s) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(config_error(format!(
            "{flag} {text:?} must not carry a query, fragment or credentials"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(config_error(format!(
            "{flag} {text:?}: plain http:// is accepted only for loopback addresses; use https://"
        ))),
        other => Err(config_error(format!(
            "{flag} {text:?}: unsupported scheme {other}"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_id_of_dots_stays_one_segment_and_never_climbs_the_path() {
        let endpoints = Endpoints::local("http://127.0.0.1:1", None).unwrap();
        for id in [".", "..", "a/b", "x?y#z", "%2e%2e"] {
            let url =
                endpoints.graph_url(&["tenantRelationships", "delegatedAdminRelationships", id]);
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            assert_eq!(segments.len(), 4, "{url} from {id:?}");
            assert_eq!(segments[2], "delegatedAdminRelationships", "{url}");
            assert!(url.query().is_none() && url.fragment().is_none(), "{url}");
        }
    }

    use super::*;

    #[test]
    fn clouds_have_their_hosts() {
        let gov = Endpoints::for_cloud(Cloud::Usgov);
        assert_eq!(
            gov.token_url("t").as_str(),
            "https://login.microsoftonline.us/t/oauth2/v2.0/token"
        );
        assert_eq!(
            Endpoints::for_cloud(Cloud::UsgovDod)
                .graph_url(&["users"])
                .as_str(),
            "https://dod-graph.microsoft.us/v1.0/users"
        );
        let cn = Endpoints::for_cloud(Cloud::China);
        assert_eq!(
            cn.partner_center_url(&["customers", "c", "applicationconsents"])
                .as_str(),
            "https://partner.partnercenterapi.microsoftonline.cn/v1/customers/c/applicationconsents"
        );
        assert_eq!(
            cn.app_scope(Audience::Graph),
            "https://microsoftgraph.chinacloudapi.cn/.default"
        );
    }

    #[test]
    fn overrides_change_hosts_but_not_scopes() {
        let args = EndpointArgs {
            graph_url: Some("http://127.0.0.1:9000/".into()),
            ..Default::default()
        };
        let e = args.resolve().unwrap();
        assert_eq!(
            e.graph_url(&["users"]).as_str(),
            "http://127.0.0.1:9000/v1.0/users"
        );
        assert_eq!(
            e.delegated_scope(Audience::Graph),
            "https://graph.microsoft.com/.default offline_access"
        );
        assert_eq!(
            e.token_url("x").host_str(),
            Some("login.microsoftonline.com")
        );
    }

    #[test]
    fn plain_http_only_for_loopback_and_errors_name_the_flag() {
        for ok in [
            "http://127.0.0.1:1",
            "http://[::1]:8443",
            "http://localhost:80",
            "https://proxy.corp",
        ] {
            assert!(parse_base("--graph-url", ok).is_ok(), "{ok}");
        }
        let err = EndpointArgs {
            login_url: Some("http://login.example.com".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--login-url"), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = EndpointArgs {
            partner_center_url: Some("not a url".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--partner-center-url"), "{err}");
    }

    #[test]
    fn ca_file_must_be_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "garbage").unwrap();
        let err = EndpointArgs {
            ca_file: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--ca-file"), "{err}");
        let missing = EndpointArgs {
            ca_file: Some(dir.path().join("nope.pem")),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(missing.to_string().contains("--ca-file"));
    }

    #[test]
    fn path_segments_are_encoded() {
        let e = Endpoints::for_cloud(Cloud::Public);
        assert_eq!(
            e.graph_url(&["users", "a b/c"]).as_str(),
            "https://graph.microsoft.com/v1.0/users/a%20b%2Fc"
        );
    }
}
