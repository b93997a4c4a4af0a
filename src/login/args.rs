//! The options of `gdap-operator login` and their validation: where the token goes (exactly one
//! of `--secret` or `--refresh-token-file`) and the partner app's identity, laid over the keys of
//! an existing credentials Secret and checked by the operator's own parser
//! ([`crate::controllers::credentials::parse`]), so `login` accepts exactly what the operator
//! accepts.

use crate::controllers::credentials::{CLIENT_CREDENTIAL_KEYS, CredentialsError, parse};
use crate::microsoft::{EndpointArgs, PartnerCredentials};
use crate::onboard::credentials::AppArgs;
use clap::Args;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The port of Microsoft's Secure Application Model samples; the app registration must list
/// `http://localhost:8400` as a Web redirect URI for `--browser`.
pub const DEFAULT_REDIRECT_PORT: u16 = 8400;

/// Options of `gdap-operator login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The partner app: tenant, client id and client credential. With --secret naming an
    /// existing Secret, what is not given here is read from it.
    #[command(flatten)]
    pub app: AppArgs,
    /// Sign in in a browser on this machine (authorization code with PKCE on a loopback
    /// redirect) instead of the device code flow: for tenants whose Conditional Access blocks
    /// device code sign-ins. The app registration must list http://localhost:PORT (default
    /// http://localhost:8400) as a Web redirect URI.
    #[arg(long)]
    pub browser: bool,
    /// The loopback port of --browser's redirect (http://localhost:PORT, registered on the app).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_REDIRECT_PORT)]
    pub redirect_port: u16,
    /// Print the sign-in address only; do not try to open a browser (--browser).
    #[arg(long)]
    pub no_open: bool,
    /// How long to wait for the sign-in to finish (e.g. 10m, 90s).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Store the refresh token in this credentials Secret (through the Kubernetes API): an
    /// existing one gets only its refreshToken replaced, a missing one is created with every key.
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// The namespace of --secret (default: the kubeconfig context's namespace, else "default").
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Kubeconfig for --secret (default: in-cluster configuration, then $KUBECONFIG, then
    /// ~/.kube/config).
    #[arg(long, value_name = "FILE", env = "GDAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Store the refresh token in this file instead (mode 0600, replaced through a temporary
    /// file; what `export`/`plan --refresh-token-file` read).
    #[arg(long, value_name = "FILE")]
    pub refresh_token_file: Option<PathBuf>,
    /// Microsoft endpoints.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
}

/// Sets `key` (given by `flag`) to `value` in the Secret's `data`, refusing a value that differs
/// from one the Secret `label` holds: the refresh token is bound to that app and tenant.
fn agree(
    data: &mut BTreeMap<String, ByteString>,
    label: &str,
    (key, flag): (&str, &str),
    value: &str,
) -> anyhow::Result<()> {
    if let Some(old) = data.get(key) {
        let old = String::from_utf8_lossy(&old.0).trim().to_string();
        anyhow::ensure!(
            old.is_empty() || old.eq_ignore_ascii_case(value),
            "{flag} {value} differs from the {key} {old} of Secret {label}: the refresh token works only with the app and tenant it is issued to, and login replaces only refreshToken; leave {flag} out, or store into another Secret"
        );
    }
    data.insert(key.to_string(), ByteString(value.as_bytes().to_vec()));
    Ok(())
}

/// Where the refresh token goes, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The credentials Secret `name` in `namespace` (`None`: the kubeconfig's namespace).
    Secret {
        /// `--namespace`.
        namespace: Option<String>,
        /// `--secret`.
        name: String,
    },
    /// `--refresh-token-file`.
    File(PathBuf),
}

/// Placeholder for the refresh token while the keys are checked before the sign-in (the parser
/// requires the key; the sign-in supplies the value). Never stored.
const NOT_YET_SIGNED_IN: &str = "(not yet signed in)";

impl LoginArgs {
    /// Exactly one storage target, checked before anyone signs in.
    pub fn destination(&self) -> anyhow::Result<Destination> {
        match (&self.secret, &self.refresh_token_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "give one place to store the refresh token: --secret or --refresh-token-file, not both"
            ),
            (None, None) => anyhow::bail!(
                "say where to store the refresh token: --secret NAME [--namespace NS] (the operator's credentials Secret) or --refresh-token-file FILE"
            ),
            (None, Some(_)) if self.namespace.is_some() => {
                anyhow::bail!("--namespace goes with --secret; --refresh-token-file writes a file")
            }
            (Some(name), None) => {
                anyhow::ensure!(!name.trim().is_empty(), "--secret needs the Secret's name");
                Ok(Destination::Secret {
                    namespace: self.namespace.clone(),
                    name: name.clone(),
                })
            }
            (None, Some(path)) => {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                anyhow::ensure!(
                    parent.is_dir(),
                    "--refresh-token-file {}: the folder {} does not exist; create it first",
                    path.display(),
                    parent.display()
                );
                Ok(Destination::File(path.clone()))
            }
        }
    }

    /// The flags' checks that need no I/O: the redirect port and the timeout.
    pub fn check_flags(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.redirect_port != 0,
            "--redirect-port 0: give the port registered on the app as http://localhost:PORT (default {DEFAULT_REDIRECT_PORT})"
        );
        anyhow::ensure!(
            !self.timeout.is_zero(),
            "--timeout must be longer than 0 (e.g. 10m)"
        );
        Ok(())
    }

    /// The partner app's identity: the flags laid over `existing` (the credentials Secret's keys,
    /// when it exists), checked with the operator's parser. Returns the credentials (with a
    /// placeholder refresh token) and the keys a new Secret gets (without `refreshToken`).
    ///
    /// With an existing Secret, `--partner-tenant-id` and `--client-id` must agree with its keys
    /// (the refresh token is bound to that app and tenant); a client credential given by flag
    /// replaces the Secret's for the sign-in only (only `refreshToken` is written).
    /// `secret` names the credentials Secret (`namespace/name`) when the token goes there.
    pub fn app(
        &self,
        existing: Option<&KubeSecret>,
        secret: Option<&str>,
    ) -> anyhow::Result<(PartnerCredentials, BTreeMap<String, ByteString>)> {
        let label = secret.unwrap_or("(none)");
        let mut data = existing.and_then(|s| s.data.clone()).unwrap_or_default();
        data.remove("refreshToken");
        if self.app.gives_client_credential() {
            for key in CLIENT_CREDENTIAL_KEYS {
                data.remove(key);
            }
        }
        for (key, flag, value) in self.app.keys()? {
            if CLIENT_CREDENTIAL_KEYS.contains(&key) {
                data.insert(key.into(), ByteString(value.into_bytes()));
            } else {
                agree(&mut data, label, (key, flag), value.trim())?;
            }
        }
        let mut probe = data.clone();
        probe.insert(
            "refreshToken".into(),
            ByteString(NOT_YET_SIGNED_IN.as_bytes().to_vec()),
        );
        let context = match (secret, existing) {
            (Some(label), Some(_)) => format!(" (not in Secret {label})"),
            (Some(label), None) => {
                format!(" (Secret {label} does not exist yet: login creates it with every key)")
            }
            (None, _) => String::new(),
        };
        let has = |key: &str| {
            data.get(key)
                .is_some_and(|v| !String::from_utf8_lossy(&v.0).trim().is_empty())
        };
        let mut missing = Vec::new();
        if !has("partnerTenantId") {
            missing.push("--partner-tenant-id (or GDAP_PARTNER_TENANT_ID)");
        }
        if !has("clientId") {
            missing.push("--client-id (or GDAP_CLIENT_ID)");
        }
        if !CLIENT_CREDENTIAL_KEYS.iter().any(|k| has(k)) {
            missing.push(
                "a client credential: GDAP_CLIENT_SECRET (or --client-secret), or --client-certificate FILE with --client-key FILE",
            );
        }
        anyhow::ensure!(
            missing.is_empty(),
            "the partner app is not fully known{context}; give {} — the partner app is a confidential client: every token request authenticates it",
            missing.join(", ")
        );
        let parsed = KubeSecret {
            data: Some(probe),
            ..Default::default()
        };
        let credentials = parse(&parsed, "", label).map_err(|e| explain(&e, &context))?;
        Ok((credentials, data))
    }
}

/// The parser's findings, told as the flags that supply each key.
fn explain(error: &CredentialsError, context: &str) -> anyhow::Error {
    let (what, flag) = match error {
        CredentialsError::MissingKey { key, .. } if key == "partnerTenantId" => (
            "the partner tenant id is not known".to_string(),
            "--partner-tenant-id (or GDAP_PARTNER_TENANT_ID)",
        ),
        CredentialsError::MissingKey { key, .. } if key == "clientId" => (
            "the partner app's client id is not known".to_string(),
            "--client-id (or GDAP_CLIENT_ID)",
        ),
        CredentialsError::InvalidClientCredential { message, .. } => (
            format!("the partner app's client credential: {message}"),
            "GDAP_CLIENT_SECRET (or --client-secret), or --client-certificate FILE with --client-key FILE",
        ),
        other => (
            other.to_string(),
            "--partner-tenant-id, --client-id and a client credential",
        ),
    };
    anyhow::anyhow!(
        "{what}{context}; give {flag} — the partner app is a confidential client: every token request authenticates it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        login: LoginArgs,
    }

    fn args(line: &[&str]) -> LoginArgs {
        let mut all = vec!["login"];
        all.extend_from_slice(line);
        Cli::try_parse_from(all).unwrap().login
    }

    fn secret(keys: &[(&str, &str)]) -> KubeSecret {
        KubeSecret {
            data: Some(
                keys.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn exactly_one_destination() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rt");
        let file = file.to_str().unwrap();
        let err = args(&[]).destination().unwrap_err().to_string();
        assert!(
            err.contains("--secret") && err.contains("--refresh-token-file"),
            "{err}"
        );
        let err = args(&["--secret", "s", "--refresh-token-file", file])
            .destination()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not both"), "{err}");
        let err = args(&["--namespace", "n", "--refresh-token-file", file])
            .destination()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--namespace goes with --secret"), "{err}");
        assert_eq!(
            args(&["--secret", "s", "-n", "team"])
                .destination()
                .unwrap(),
            Destination::Secret {
                namespace: Some("team".into()),
                name: "s".into()
            }
        );
        assert_eq!(
            args(&["--refresh-token-file", file]).destination().unwrap(),
            Destination::File(file.into())
        );
        let missing = dir.path().join("no-such-dir/rt");
        let err = args(&["--refresh-token-file", missing.to_str().unwrap()])
            .destination()
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn flags_have_their_defaults_and_checks() {
        let a = args(&["--secret", "s"]);
        assert_eq!(a.redirect_port, 8400);
        assert_eq!(a.timeout, Duration::from_secs(600));
        assert!(!a.browser && !a.no_open);
        a.check_flags().unwrap();
        let err = args(&["--redirect-port", "0"])
            .check_flags()
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://localhost:PORT"), "{err}");
        assert!(
            args(&["--timeout", "0s"])
                .check_flags()
                .unwrap_err()
                .to_string()
                .contains("--timeout")
        );
        assert_eq!(args(&["--timeout", "90s"]).timeout, Duration::from_secs(90));
    }

    #[test]
    fn a_new_secret_needs_every_key_and_the_error_names_the_flag() {
        let a = args(&[
            "--partner-tenant-id",
            "t",
            "--client-secret",
            "s3cret-value",
        ]);
        let err = a.app(None, Some("gdap/creds")).unwrap_err().to_string();
        assert!(err.contains("--client-id"), "{err}");
        assert!(err.contains("creates it with every key"), "{err}");
        assert!(!err.contains("s3cret-value"), "{err}");
        let err = args(&[]).app(None, None).unwrap_err().to_string();
        assert!(
            err.contains("--partner-tenant-id")
                && err.contains("--client-id")
                && err.contains("client credential"),
            "every missing piece at once: {err}"
        );
        let a = args(&["--partner-tenant-id", "t", "--client-id", "c"]);
        let err = a.app(None, Some("gdap/creds")).unwrap_err().to_string();
        assert!(
            err.contains("GDAP_CLIENT_SECRET") && err.contains("--client-certificate"),
            "{err}"
        );
        let a = args(&[
            "--partner-tenant-id",
            "t",
            "--client-id",
            "c",
            "--client-secret",
            "s",
        ]);
        let (credentials, data) = a.app(None, Some("gdap/creds")).unwrap();
        assert_eq!(credentials.partner_tenant_id, "t");
        assert_eq!(credentials.client_id, "c");
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["clientId", "clientSecret", "partnerTenantId"]
        );
    }

    #[test]
    fn an_existing_secret_supplies_the_keys_and_must_agree_with_the_flags() {
        let existing = secret(&[
            ("partnerTenantId", "T-1"),
            ("clientId", "c"),
            ("clientSecret", "s"),
            ("refreshToken", "old"),
        ]);
        let (credentials, data) = args(&[]).app(Some(&existing), Some("gdap/creds")).unwrap();
        assert_eq!(credentials.client_id, "c");
        assert!(!data.contains_key("refreshToken"));
        args(&["--partner-tenant-id", "t-1"])
            .app(Some(&existing), Some("gdap/creds"))
            .unwrap();
        let err = args(&["--client-id", "other"])
            .app(Some(&existing), Some("gdap/creds"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--client-id other differs") && err.contains("gdap/creds"),
            "{err}"
        );
        // A certificate given by flag replaces the Secret's client secret for the sign-in.
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, include_str!("../sandbox/client-cert.pem")).unwrap();
        std::fs::write(&key, include_str!("../sandbox/client-key.pem")).unwrap();
        let (credentials, _) = args(&[
            "--client-certificate",
            cert.to_str().unwrap(),
            "--client-key",
            key.to_str().unwrap(),
        ])
        .app(Some(&existing), Some("gdap/creds"))
        .unwrap();
        assert_eq!(credentials.client_credential.kind(), "certificate");
        let err = args(&["--client-certificate", cert.to_str().unwrap()])
            .app(Some(&existing), Some("gdap/creds"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("clientKey is missing"), "{err}");
    }
}
