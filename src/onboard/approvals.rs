//! `gdap-operator approvals FLEET`: the approval links of a fleet's relationships that await
//! their customer's approval, as CSV for the onboarding team (read from the cluster; nothing is
//! written anywhere).

use crate::api::GdapRelationship;
use crate::controllers::gdap_fleet::children::FLEET_LABEL;
use clap::Args;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use std::path::PathBuf;

/// Options of `gdap-operator approvals`.
#[derive(Debug, Clone, Args)]
pub struct ApprovalsArgs {
    /// The GdapFleet whose pending approval links to print.
    pub fleet: String,
    /// Its namespace (default: the kubeconfig's).
    #[arg(long, short)]
    pub namespace: Option<String>,
    /// Kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "GDAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// The CSV header.
pub const HEADER: &str =
    "customerTenantId,customerName,relationship,displayName,state,approvalUrl,approvalExpiresAt";

/// Prints the CSV; returns the exit code (0, also when nothing awaits approval).
pub async fn run(args: ApprovalsArgs) -> anyhow::Result<u8> {
    let config = crate::run::kube_config(args.kubeconfig.as_deref()).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)?;
    let api: Api<GdapRelationship> = Api::namespaced(client, &namespace);
    let selector = format!("{FLEET_LABEL}={}", args.fleet);
    let mut rows = Vec::new();
    let mut params = ListParams::default().labels(&selector).limit(500);
    loop {
        let page = api.list(&params).await?;
        rows.extend(page.items.iter().filter_map(row));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    rows.sort();
    print!("{}", csv(&rows));
    Ok(0)
}

/// The CSV text: the header and one line per row.
pub fn csv(rows: &[Vec<String>]) -> String {
    let mut out = format!("{HEADER}\n");
    for row in rows {
        let fields: Vec<String> = row.iter().map(|f| field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// One relationship's row, when it awaits approval with a link.
fn row(r: &GdapRelationship) -> Option<Vec<String>> {
    let status = r.status.as_ref()?;
    let url = status.approval_url.clone()?;
    if status.state.as_deref() != Some("approvalPending") {
        return None;
    }
    Some(vec![
        r.spec.customer.tenant_id.0.clone(),
        status.customer_display_name.clone().unwrap_or_default(),
        r.name_any(),
        status.display_name.clone().unwrap_or_default(),
        "approvalPending".into(),
        url,
        status
            .approval_expires_at
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
    ])
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run a customer's name as
/// a formula.
fn field(text: &str) -> String {
    let text = match text.starts_with(['=', '+', '-', '@']) {
        true => format!("'{text}"),
        false => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        let rows = vec![vec![
            "t".to_string(),
            "Contoso, \"Ltd\"".to_string(),
            "=HYPERLINK(\"x\")".to_string(),
        ]];
        let text = csv(&rows);
        let line = text.lines().nth(1).unwrap();
        assert_eq!(
            line,
            "t,\"Contoso, \"\"Ltd\"\"\",\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert!(text.starts_with(HEADER));
    }
}
