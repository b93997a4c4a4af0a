//! `gdap-operator export`: the partner's existing GDAP relationships as manifests that adopt them.
//!
//! Contract: reads only (GET), with the partner's delegated token — every relationship (every
//! page, 300 at a time, to the last `@odata.nextLink`), `delegatedAdminCustomers` (for customer
//! names), and the access assignments of each active relationship. Any failed read fails the
//! whole export before anything is written: a partial listing never becomes a partial set of
//! manifests. Ended or ending relationships (terminated, expired, and on their way) are skipped
//! unless `--include-ended`; relationships without a customer (not yet approved by "any
//! customer") cannot be adopted and are reported. Output: one YAML stream on stdout, or with
//! `--out-dir` one folder per customer and one file per relationship (Argo CD can sync the
//! directory recursively). Existing files are overwritten, never deleted.

use super::credentials::CredentialArgs;
use super::manifest::{self, Exported, ManifestOptions, is_ended, live_assignments};
use crate::api::{DeletionPolicy, ManagementPolicy};
use crate::microsoft::models::gdap::{AccessAssignment, Relationship, RelationshipStatus as State};
use crate::microsoft::{self, GdapApi, RelationshipFilter, TokenSource};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Options of `gdap-operator export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Partner credentials and Microsoft endpoints.
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Write one folder per customer and one file per relationship here, instead of one YAML
    /// stream on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Set metadata.namespace of every object.
    #[arg(long)]
    pub namespace: Option<String>,
    /// managementPolicy Manage instead of Observe: the operator takes the relationships over
    /// (assignments, auto-extend, renewal; never-locked drafts get locked for approval).
    #[arg(long)]
    pub manage: bool,
    /// deletionPolicy of the objects: Orphan (default; deleting an object leaves the relationship
    /// alone) or Delete (deleting an object terminates its relationship).
    #[arg(long, value_enum, default_value_t = Deletion::Orphan)]
    pub deletion_policy: Deletion,
    /// Set spec.credentialsRef.name (default: none, the operator's --credentials-secret).
    #[arg(long, value_name = "NAME")]
    pub credentials_secret: Option<String>,
    /// Also export terminated, expired and terminating relationships.
    #[arg(long)]
    pub include_ended: bool,
}

/// `--deletion-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deletion {
    /// Deleting the object leaves the relationship in Microsoft.
    Orphan,
    /// Deleting the object terminates the relationship.
    Delete,
}

/// What an export found.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// The manifests, sorted by folder and name.
    pub exported: Vec<Exported>,
    /// Relationships listed in Microsoft.
    pub listed: usize,
    /// Skipped because they ended or are ending.
    pub skipped_ended: usize,
    /// Skipped because Microsoft names no customer (display names).
    pub skipped_without_customer: Vec<String>,
    /// Customers the exported relationships belong to.
    pub customers: usize,
}

/// Reads everything the manifests need.
pub async fn collect(
    gdap: &dyn GdapApi,
    token: &dyn TokenSource,
    options: &ManifestOptions,
    include_ended: bool,
    concurrency: usize,
) -> microsoft::Result<ExportReport> {
    let filter = RelationshipFilter {
        page_size: Some(300),
        ..Default::default()
    };
    let relationships = gdap.list_relationships(token, &filter).await?;
    let names: BTreeMap<String, String> = gdap
        .list_customers(token)
        .await?
        .into_iter()
        .filter_map(|c| Some((c.tenant_id.to_ascii_lowercase(), c.display_name?)))
        .collect();
    let mut report = ExportReport {
        listed: relationships.len(),
        ..Default::default()
    };
    let mut wanted = Vec::new();
    for rel in relationships {
        if is_ended(rel.status.as_ref()) && !include_ended {
            report.skipped_ended += 1;
        } else if rel.customer.is_none() {
            report
                .skipped_without_customer
                .push(rel.display_name.clone());
        } else {
            wanted.push(rel);
        }
    }
    let with_assignments: Vec<(Relationship, Vec<AccessAssignment>)> =
        futures::stream::iter(wanted)
            .map(|rel| async move {
                let assignments = if rel.status == Some(State::Active) {
                    gdap.list_access_assignments(token, &rel.id).await?
                } else {
                    Vec::new()
                };
                Ok::<_, microsoft::Error>((rel, assignments))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
    for (rel, assignments) in &with_assignments {
        let customer = rel.customer.as_ref().expect("filtered above");
        let tenant = customer.tenant_id.to_ascii_lowercase();
        let name = names
            .get(&tenant)
            .cloned()
            .or_else(|| customer.display_name.clone());
        let live = live_assignments(assignments);
        report.exported.push(manifest::manifest(
            rel,
            &tenant,
            name.as_deref(),
            &live,
            options,
        ));
    }
    report
        .exported
        .sort_by(|a, b| (&a.folder, a.file_name()).cmp(&(&b.folder, b.file_name())));
    report.customers = report
        .exported
        .iter()
        .map(|e| e.folder.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok(report)
}

/// One exported object as a YAML document with its comment.
pub fn document(exported: &Exported) -> anyhow::Result<String> {
    let yaml = serde_yaml::to_string(&exported.object)?;
    Ok(format!(
        "# Exported by gdap-operator: {}\n{yaml}",
        exported.comment
    ))
}

/// All objects as one YAML stream.
pub fn stream(report: &ExportReport) -> anyhow::Result<String> {
    let documents: Vec<String> = report
        .exported
        .iter()
        .map(document)
        .collect::<anyhow::Result<_>>()?;
    Ok(documents.join("---\n"))
}

/// Writes `<dir>/<customer folder>/<object name>.yaml`; returns the files written.
pub fn write_tree(dir: &Path, report: &ExportReport) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for exported in &report.exported {
        let folder = dir.join(&exported.folder);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("--out-dir: cannot create {}", folder.display()))?;
        let file = folder.join(exported.file_name());
        std::fs::write(&file, document(exported)?)
            .with_context(|| format!("--out-dir: cannot write {}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

impl ExportArgs {
    fn manifest_options(&self) -> ManifestOptions {
        ManifestOptions {
            management: if self.manage {
                ManagementPolicy::Manage
            } else {
                ManagementPolicy::Observe
            },
            deletion: match self.deletion_policy {
                Deletion::Orphan => DeletionPolicy::Orphan,
                Deletion::Delete => DeletionPolicy::Delete,
            },
            namespace: self.namespace.clone(),
            credentials_secret: self.credentials_secret.clone(),
        }
    }
}

/// Runs `gdap-operator export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let credentials = args.credentials.credentials()?;
    let token = credentials.clients.tokens.partner_graph();
    let options = args.manifest_options();
    let report = collect(
        credentials.clients.gdap.as_ref(),
        &token,
        &options,
        args.include_ended,
        args.credentials.concurrency,
    )
    .await
    .map_err(|e| anyhow::anyhow!("reading Microsoft Graph failed, nothing was written: {e}"))?;
    for warning in report.exported.iter().flat_map(|e| &e.warnings) {
        eprintln!("warning: {warning}");
    }
    match &args.out_dir {
        Some(dir) => {
            let files = write_tree(dir, &report)?;
            eprintln!("wrote {} file(s) under {}", files.len(), dir.display());
        }
        None => print!("{}", stream(&report)?),
    }
    eprintln!("{}", summary(&report, &options, args.include_ended));
    Ok(())
}

fn summary(report: &ExportReport, options: &ManifestOptions, include_ended: bool) -> String {
    let drafts = report
        .exported
        .iter()
        .filter(|e| e.state == "created")
        .count();
    let mut lines = vec![format!(
        "exported {} of {} relationship(s), {} customer(s); managementPolicy {:?}, deletionPolicy {:?}",
        report.exported.len(),
        report.listed,
        report.customers,
        options.management,
        options.deletion
    )];
    if report.skipped_ended > 0 && !include_ended {
        lines.push(format!(
            "skipped {} terminated, expired or ending relationship(s) (--include-ended exports them)",
            report.skipped_ended
        ));
    }
    if !report.skipped_without_customer.is_empty() {
        lines.push(format!(
            "skipped {} relationship(s) that name no customer yet (approval by any customer): {}",
            report.skipped_without_customer.len(),
            report.skipped_without_customer.join(", ")
        ));
    }
    if drafts > 0 && options.management == ManagementPolicy::Manage {
        lines.push(format!(
            "note: {drafts} relationship(s) were never locked for approval (created); with --manage the operator locks them"
        ));
    }
    lines.join("\n")
}
