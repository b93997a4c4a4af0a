//! The partner credentials of `export` and `plan`: a Secret manifest (the operator's credentials
//! Secret, saved with `kubectl get secret -o yaml` or written by hand, `data` or `stringData`)
//! and/or flags and environment variables, turned into the same [`Credentials`] the controllers
//! use (through `controllers::credentials::parse`, so a CLI accepts exactly what the operator
//! accepts).
//!
//! The refresh token rotates on every use. A CLI run redeems it once; the new one Microsoft
//! returns is never printed or logged. It is thrown away unless `--write-back` is given: then it
//! replaces the old one in the file it came from (`--credentials` or `--refresh-token-file`),
//! written to a temporary file and renamed, readable by the owner only. Without write-back the
//! stored token stays usable (Entra does not revoke an exchanged refresh token; it stays valid
//! until it expires) — see docs/adopting.md.

use crate::controllers::credentials::{Credentials, parse};
use crate::microsoft::{
    EndpointArgs, MicrosoftClients, RotatedRefreshToken, TokenOptions, TransportConfig, rotation_fn,
};
use anyhow::Context as _;
use clap::Args;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Credential options shared by `export` and `plan`.
#[derive(Debug, Clone, Args, Default)]
pub struct CredentialArgs {
    /// A Kubernetes Secret manifest (YAML or JSON) with the operator's keys: partnerTenantId,
    /// clientId, refreshToken, and clientSecret or clientCertificate + clientKey (in data or
    /// stringData). The flags below override its keys.
    #[arg(long, value_name = "FILE", env = "GDAP_CREDENTIALS_FILE")]
    pub credentials: Option<PathBuf>,
    /// The partner app: tenant, client id and client credential.
    #[command(flatten)]
    pub app: AppArgs,
    /// File holding the partner user's refresh token.
    #[arg(long, value_name = "FILE", env = "GDAP_REFRESH_TOKEN_FILE")]
    pub refresh_token_file: Option<PathBuf>,
    /// The partner user's refresh token (prefer GDAP_REFRESH_TOKEN or --refresh-token-file).
    #[arg(long, env = "GDAP_REFRESH_TOKEN", hide_env_values = true)]
    pub refresh_token: Option<String>,
    /// Write the rotated refresh token back into the file it came from (--credentials or
    /// --refresh-token-file). Without it the new token is discarded (never printed).
    #[arg(long)]
    pub write_back: bool,
    /// Microsoft endpoints.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Requests to Microsoft in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// The partner app's identity on the command line — tenant, client id and one client credential
/// — shared by `export`, `plan`, `doctor` and `login`, as the keys of the credentials Secret.
#[derive(Debug, Clone, Args, Default)]
pub struct AppArgs {
    /// The partner's tenant id (GUID).
    #[arg(long, env = "GDAP_PARTNER_TENANT_ID")]
    pub partner_tenant_id: Option<String>,
    /// The partner app's client id.
    #[arg(long, env = "GDAP_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The app's client secret (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "GDAP_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// PEM file with the app's certificate (with --client-key, instead of a client secret).
    #[arg(long, value_name = "FILE", env = "GDAP_CLIENT_CERTIFICATE_FILE")]
    pub client_certificate: Option<PathBuf>,
    /// PEM file with the certificate's private key.
    #[arg(long, value_name = "FILE", env = "GDAP_CLIENT_KEY_FILE")]
    pub client_key: Option<PathBuf>,
}

impl AppArgs {
    /// The credentials Secret keys the flags give, with the certificate and key files read:
    /// `(key, flag, value)`.
    pub fn keys(&self) -> anyhow::Result<Vec<(&'static str, &'static str, String)>> {
        let mut keys = Vec::new();
        if let Some(v) = &self.partner_tenant_id {
            keys.push(("partnerTenantId", "--partner-tenant-id", v.clone()));
        }
        if let Some(v) = &self.client_id {
            keys.push(("clientId", "--client-id", v.clone()));
        }
        if let Some(v) = &self.client_secret {
            keys.push(("clientSecret", "--client-secret", v.clone()));
        }
        if let Some(path) = &self.client_certificate {
            let text = read_text(path, "--client-certificate")?;
            keys.push(("clientCertificate", "--client-certificate", text));
        }
        if let Some(path) = &self.client_key {
            keys.push((
                "clientKey",
                "--client-key",
                read_text(path, "--client-key")?,
            ));
        }
        Ok(keys)
    }

    /// Whether a client credential is given by flag.
    pub fn gives_client_credential(&self) -> bool {
        self.client_secret.is_some()
            || self.client_certificate.is_some()
            || self.client_key.is_some()
    }
}

/// Where the refresh token came from, for `--write-back`.
#[derive(Debug, Clone)]
enum TokenOrigin {
    /// `--refresh-token-file`.
    File(PathBuf),
    /// `--credentials` (the Secret manifest).
    SecretManifest(PathBuf),
    /// A flag or the environment: nothing to write back to.
    Given,
}

impl CredentialArgs {
    /// Builds the clients (with the partner's delegated token) and the Secret they came from.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let (secret, origin) = self.secret()?;
        let parsed = parse(&secret, "(command line)", self.label().as_str())
            .map_err(|e| anyhow::anyhow!("{}", explain(&e.to_string())))?;
        let endpoints = self
            .endpoints
            .resolve()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut transport = TransportConfig::new(endpoints);
        transport.global_concurrency = self.concurrency.max(1);
        transport.per_tenant_concurrency = self.concurrency.max(1);
        let rotation = rotation_writer(self.write_back.then_some(origin).flatten());
        let clients = MicrosoftClients::new(transport, parsed, rotation, TokenOptions::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Credentials { clients, secret })
    }

    fn label(&self) -> String {
        self.credentials
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "flags".into())
    }

    /// The Secret the keys are read from: the manifest (if any) with the flags laid over it.
    fn secret(&self) -> anyhow::Result<(KubeSecret, Option<TokenOrigin>)> {
        let mut secret = match &self.credentials {
            Some(path) => read_secret_manifest(path)?,
            None => KubeSecret::default(),
        };
        let mut origin = self.credentials.clone().map(TokenOrigin::SecretManifest);
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        let mut set = |key: &str, value: String| {
            data.insert(key.to_string(), ByteString(value.into_bytes()));
        };
        for (key, _, value) in self.app.keys()? {
            set(key, value);
        }
        if let Some(path) = &self.refresh_token_file {
            set("refreshToken", read_text(path, "--refresh-token-file")?);
            origin = Some(TokenOrigin::File(path.clone()));
        }
        if let Some(v) = &self.refresh_token {
            set("refreshToken", v.clone());
            origin = Some(TokenOrigin::Given);
        }
        Ok((secret, origin))
    }
}

/// Maps the operator's "Secret lacks key" wording onto the CLI's flags.
fn explain(message: &str) -> String {
    format!(
        "{message}; give the key in the --credentials Secret manifest, or with --partner-tenant-id, --client-id, --client-secret (or --client-certificate + --client-key) and --refresh-token-file (or the GDAP_* environment variables)"
    )
}

fn read_text(path: &Path, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag} {}: cannot read", path.display()))
}

/// Reads a Secret manifest; `stringData` is folded into `data` as the API server does.
pub fn read_secret_manifest(path: &Path) -> anyhow::Result<KubeSecret> {
    let text = read_text(path, "--credentials")?;
    let value: serde_yaml::Value = serde_yaml::from_str(&text)
        .with_context(|| format!("--credentials {}: not YAML or JSON", path.display()))?;
    let kind = value.get("kind").and_then(serde_yaml::Value::as_str);
    anyhow::ensure!(
        kind == Some("Secret"),
        "--credentials {}: expected a Kubernetes Secret manifest (kind: Secret), found kind {:?}",
        path.display(),
        kind.unwrap_or("none")
    );
    let mut secret: KubeSecret = serde_yaml::from_value(value)
        .with_context(|| format!("--credentials {}: not a valid Secret", path.display()))?;
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (key, value) in string_data {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
    Ok(secret)
}

/// Discards the rotated token, or writes it back to where it came from.
fn rotation_writer(origin: Option<TokenOrigin>) -> Arc<dyn crate::microsoft::RotationCallback> {
    rotation_fn(move |rotated: RotatedRefreshToken| {
        let origin = origin.clone();
        async move {
            match origin {
                Some(TokenOrigin::File(path)) => {
                    write_back(&path, rotated.refresh_token.expose().as_bytes())?
                }
                Some(TokenOrigin::SecretManifest(path)) => write_back_to_manifest(&path, &rotated)?,
                Some(TokenOrigin::Given) | None => {}
            }
            Ok(())
        }
    })
}

/// Replaces `refreshToken` (in `stringData` when it is there, else base64 in `data`) and the
/// issued-at annotation in a Secret manifest. Comments and key order are not kept.
fn write_back_to_manifest(path: &Path, rotated: &RotatedRefreshToken) -> anyhow::Result<()> {
    use base64::Engine;
    use serde_yaml::Value;
    let text = read_text(path, "--credentials")?;
    let mut value: Value = serde_yaml::from_str(&text)?;
    let token = rotated.refresh_token.expose().to_string();
    let in_string_data = value
        .get("stringData")
        .and_then(|d| d.get("refreshToken"))
        .is_some();
    if in_string_data {
        value["stringData"]["refreshToken"] = Value::String(token);
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        if value.get("data").is_none() {
            value["data"] = Value::Mapping(Default::default());
        }
        value["data"]["refreshToken"] = Value::String(encoded);
    }
    if value.get("metadata").is_none() {
        value["metadata"] = Value::Mapping(Default::default());
    }
    if value["metadata"].get("annotations").is_none() {
        value["metadata"]["annotations"] = Value::Mapping(Default::default());
    }
    value["metadata"]["annotations"][crate::controllers::credentials::ISSUED_AT_ANNOTATION] =
        Value::String(rotated.issued_at.to_rfc3339());
    write_back(path, serde_yaml::to_string(&value)?.as_bytes())
}

/// Writes a file readable by its owner only (mode 0600), through a new temporary file in the
/// same folder and a rename: a reader sees the old content or the new, never half of it (a
/// refresh token is written this way by `--write-back` and by `login`). The temporary file is
/// removed when anything fails.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// [`write_private`] for `--write-back`.
fn write_back(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_private(path, bytes)
        .with_context(|| format!("--write-back: cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("creds.yaml");
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn string_data_and_flags_make_the_secret_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = manifest(
            dir.path(),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: p}\nstringData:\n  partnerTenantId: t\n  clientId: c\n  clientSecret: s\n  refreshToken: rt-file\n",
        );
        let args = CredentialArgs {
            credentials: Some(path),
            app: AppArgs {
                client_id: Some("c2".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let (secret, _) = args.secret().unwrap();
        let parsed = parse(&secret, "x", "y").unwrap();
        assert_eq!(parsed.client_id, "c2");
        assert_eq!(parsed.refresh_token.expose(), "rt-file");
    }

    #[test]
    fn a_missing_key_names_the_flag_too() {
        let args = CredentialArgs {
            app: AppArgs {
                partner_tenant_id: Some("t".into()),
                client_id: Some("c".into()),
                client_secret: Some("s".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let (secret, _) = args.secret().unwrap();
        let err = explain(&parse(&secret, "x", "flags").unwrap_err().to_string());
        assert!(
            err.contains("\"refreshToken\"") && err.contains("--refresh-token-file"),
            "{err}"
        );
        assert!(!err.contains("\"s\""));
    }

    #[test]
    fn other_kinds_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = manifest(
            dir.path(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\n",
        );
        let err = read_secret_manifest(&path).unwrap_err().to_string();
        assert!(
            err.contains("kind: Secret") && err.contains("ConfigMap"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn write_back_replaces_the_token_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = manifest(
            dir.path(),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: p}\ndata:\n  refreshToken: b2xk\n  clientId: Yw==\n",
        );
        let rotated = RotatedRefreshToken {
            refresh_token: crate::microsoft::Secret::new("new-token"),
            issued_at: chrono::Utc::now(),
        };
        rotation_writer(Some(TokenOrigin::SecretManifest(path.clone())))
            .on_rotated(&rotated)
            .await
            .unwrap();
        let secret = read_secret_manifest(&path).unwrap();
        let data = secret.data.unwrap();
        assert_eq!(data["refreshToken"].0, b"new-token");
        assert_eq!(data["clientId"].0, b"c", "other keys are kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read_to_string(&path).unwrap();
        rotation_writer(None).on_rotated(&rotated).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "discarded without --write-back"
        );
    }
}
