//! Where the controllers watch: the whole cluster or the namespaces given, and the routing of
//! what the shared context produces (Secret checks, ends of imports) to the scope that covers it.

use crate::controllers::secrets_by_name::SecretCheck;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client};
use tokio::sync::mpsc;

/// Where controllers watch: the whole cluster, or one namespace.
#[derive(Debug, Clone)]
pub(super) enum Scope {
    Cluster,
    Namespace(String),
}

impl Scope {
    pub(super) fn all_of(namespaces: &[String]) -> Vec<Scope> {
        if namespaces.is_empty() {
            vec![Scope::Cluster]
        } else {
            namespaces.iter().cloned().map(Scope::Namespace).collect()
        }
    }

    pub(super) fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Scope::Cluster => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }

    fn covers(&self, namespace: &str) -> bool {
        match self {
            Scope::Cluster => true,
            Scope::Namespace(ns) => ns == namespace,
        }
    }
}

/// One channel per scope: checks asked for through the context go to the scope that covers the
/// Secret's namespace.
pub(super) fn route_secret_checks(
    mut checks: mpsc::UnboundedReceiver<SecretCheck>,
    scopes: &[Scope],
) -> Vec<mpsc::UnboundedReceiver<SecretCheck>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        scopes.iter().map(|_| mpsc::unbounded_channel()).unzip();
    let scopes = scopes.to_vec();
    tokio::spawn(async move {
        while let Some(check) = checks.recv().await {
            let namespace = check.namespace().to_string();
            if let Some(i) = scopes.iter().position(|s| s.covers(&namespace)) {
                let _ = senders[i].send(check);
            }
        }
    });
    receivers
}

/// One channel per scope: object references go to the scope that covers their namespace.
pub(super) fn route_to_scopes<K>(
    mut refs: mpsc::UnboundedReceiver<ObjectRef<K>>,
    scopes: &[Scope],
) -> Vec<mpsc::UnboundedReceiver<ObjectRef<K>>>
where
    K: kube::Resource<DynamicType = ()> + Send + Sync + 'static,
{
    let (senders, receivers): (Vec<_>, Vec<_>) =
        scopes.iter().map(|_| mpsc::unbounded_channel()).unzip();
    let scopes = scopes.to_vec();
    tokio::spawn(async move {
        while let Some(r) = refs.recv().await {
            let namespace = r.namespace.clone().unwrap_or_default();
            if let Some(i) = scopes.iter().position(|s| s.covers(&namespace)) {
                let _ = senders[i].send(r);
            }
        }
    });
    receivers
}
