//! Where the refresh token goes: the credentials Secret, through the Kubernetes API, or a file.
//!
//! - An existing Secret gets a JSON merge patch that names `data.refreshToken` and the
//!   issued-at annotation ([`ISSUED_AT_ANNOTATION`], which drives the operator's token-age
//!   warning) and nothing else: every other key, label, annotation and finalizer stays.
//! - A missing Secret is created with every key: `partnerTenantId`, `clientId`, the client
//!   credential and `refreshToken`.
//! - A file is written readable by its owner only (0600), through a temporary file in the same
//!   folder and a rename, holding the token alone: what `export`/`plan --refresh-token-file`
//!   read.
//!
//! The Secret is read before the sign-in (its keys fill in the flags not given, and a missing
//! permission shows before anyone signs in), and written after the checks.

use super::args::Destination;
use crate::controllers::credentials::ISSUED_AT_ANNOTATION;
use crate::microsoft::Secret;
use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The field manager of login's writes (shown in the Secret's managedFields).
const FIELD_MANAGER: &str = "gdap-operator-login";

/// The credentials Secret as opened before the sign-in.
pub struct SecretStore {
    /// The Secrets of its namespace.
    api: Api<KubeSecret>,
    /// Its namespace.
    namespace: String,
    /// Its name.
    name: String,
    /// As read before the sign-in (`None`: it does not exist yet).
    existing: Option<KubeSecret>,
}

/// An opened storage target.
pub enum Store {
    /// The credentials Secret.
    Secret(Box<SecretStore>),
    /// A file.
    File(PathBuf),
}

fn kube_refusal(e: &kube::Error, verb: &str, namespace: &str, name: &str) -> anyhow::Error {
    match e {
        kube::Error::Api(status) if status.code == 403 => anyhow::anyhow!(
            "Kubernetes refused to {verb} Secret {namespace}/{name}: {}; the kubeconfig's user needs get, create and patch on secrets in namespace {namespace} (nothing was stored)",
            status.message
        ),
        other => anyhow::anyhow!(
            "could not {verb} Secret {namespace}/{name}: {other}; check --kubeconfig and --namespace"
        ),
    }
}

impl Store {
    /// Opens the destination: for a Secret, connects to Kubernetes and reads it.
    pub async fn open(
        destination: &Destination,
        kubeconfig: Option<&Path>,
    ) -> anyhow::Result<Self> {
        match destination {
            Destination::File(path) => Ok(Store::File(path.clone())),
            Destination::Secret { namespace, name } => {
                let config = crate::run::kube_config(kubeconfig).await.map_err(|e| {
                    anyhow::anyhow!(
                        "no Kubernetes configuration for --secret: {e:#}; pass --kubeconfig FILE (or set KUBECONFIG), or store into a file with --refresh-token-file"
                    )
                })?;
                let namespace = namespace
                    .clone()
                    .unwrap_or_else(|| config.default_namespace.clone());
                let client = kube::Client::try_from(config)
                    .context("cannot build a Kubernetes client from the kubeconfig")?;
                let api = Api::<KubeSecret>::namespaced(client, &namespace);
                let existing = api
                    .get_opt(name)
                    .await
                    .map_err(|e| kube_refusal(&e, "read", &namespace, name))?;
                Ok(Store::Secret(Box::new(SecretStore {
                    api,
                    namespace,
                    name: name.clone(),
                    existing,
                })))
            }
        }
    }

    /// The Secret as read, if it exists.
    pub fn existing(&self) -> Option<&KubeSecret> {
        match self {
            Store::Secret(store) => store.existing.as_ref(),
            Store::File(_) => None,
        }
    }

    /// `namespace/name` of the Secret, or `None` for a file.
    pub fn secret_label(&self) -> Option<String> {
        match self {
            Store::Secret(store) => Some(format!("{}/{}", store.namespace, store.name)),
            Store::File(_) => None,
        }
    }

    /// Stores `token`; `keys` are the other keys of a Secret that is created. Returns where it
    /// went, for the summary.
    pub async fn save(
        &self,
        token: &Secret,
        keys: &BTreeMap<String, ByteString>,
    ) -> anyhow::Result<String> {
        self.write(token, keys, false).await
    }

    /// Before the sign-in: the same write as a server-side dry run (Kubernetes checks the
    /// permission and admission, stores nothing), or a temporary file created and removed in
    /// the file's folder. So a write that would fail fails before anyone signs in.
    pub async fn preflight(&self, keys: &BTreeMap<String, ByteString>) -> anyhow::Result<()> {
        let placeholder = Secret::new("(dry run: not a token)");
        match self {
            Store::File(path) => {
                let probe = path.with_file_name(format!(
                    ".gdap-login-probe.{}.{}",
                    std::process::id(),
                    rand::random::<u32>()
                ));
                write_private(&probe, b"")?;
                let _ = std::fs::remove_file(&probe);
                Ok(())
            }
            Store::Secret(_) => self.write(&placeholder, keys, true).await.map(drop),
        }
    }

    async fn write(
        &self,
        token: &Secret,
        keys: &BTreeMap<String, ByteString>,
        dry_run: bool,
    ) -> anyhow::Result<String> {
        let issued_at = chrono::Utc::now().to_rfc3339();
        match self {
            Store::File(path) => {
                write_private(path, token.expose().as_bytes())?;
                Ok(format!("file {} (mode 0600)", path.display()))
            }
            Store::Secret(store) if store.existing.is_some() => {
                let SecretStore {
                    api,
                    namespace,
                    name,
                    ..
                } = store.as_ref();
                let patch = serde_json::json!({
                    "metadata": {"annotations": {ISSUED_AT_ANNOTATION: issued_at}},
                    "data": {"refreshToken": base64::engine::general_purpose::STANDARD.encode(token.expose())},
                });
                api.patch(
                    name,
                    &PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        dry_run,
                        ..Default::default()
                    },
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| kube_refusal(&e, "update", namespace, name))?;
                Ok(format!(
                    "Secret {namespace}/{name} (refreshToken replaced, every other key kept)"
                ))
            }
            Store::Secret(store) => {
                let SecretStore {
                    api,
                    namespace,
                    name,
                    ..
                } = store.as_ref();
                let mut data = keys.clone();
                data.insert(
                    "refreshToken".into(),
                    ByteString(token.expose().as_bytes().to_vec()),
                );
                let secret = KubeSecret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        annotations: Some(BTreeMap::from([(
                            ISSUED_AT_ANNOTATION.to_string(),
                            issued_at,
                        )])),
                        ..Default::default()
                    },
                    type_: Some("Opaque".into()),
                    data: Some(data),
                    ..Default::default()
                };
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    dry_run,
                };
                match api.create(&params, &secret).await {
                    Ok(_) => Ok(format!(
                        "Secret {namespace}/{name} (created with partnerTenantId, clientId, the client credential and refreshToken)"
                    )),
                    Err(kube::Error::Api(s)) if s.code == 409 => anyhow::bail!(
                        "Secret {namespace}/{name} was created by someone else while you signed in; nothing was stored — run login again to update it"
                    ),
                    Err(e) => Err(kube_refusal(&e, "create", namespace, name)),
                }
            }
        }
    }
}

/// Writes the refresh-token file readable by its owner only (0600; through a temporary file
/// and a rename, see [`crate::onboard::credentials::write_private`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.file_name().is_some_and(|n| !n.is_empty()),
        "--refresh-token-file {}: give a file name",
        path.display()
    );
    crate::onboard::credentials::write_private(path, bytes).with_context(|| {
        format!(
            "--refresh-token-file {}: cannot write it; nothing was stored",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_replaced_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh-token");
        std::fs::write(&path, "old").unwrap();
        write_private(&path, b"new-token").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new-token");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["refresh-token"]);
    }

    #[test]
    fn a_missing_folder_fails_and_says_nothing_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_private(&dir.path().join("no/such/file"), b"t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing was stored"), "{err}");
    }
}
