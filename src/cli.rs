//! Command-line interface: one binary, one subcommand per job.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// gdap-operator: manage Microsoft GDAP relationships, app consents and tenant imports from Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "gdap-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML (or write one file per CRD with --out-dir).
    Crds {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Check manifests offline with the same rules as the API server and the operator.
    Validate {
        /// Files or directories (searched recursively for .yaml/.yml).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write the partner's existing GDAP relationships as manifests that adopt them (read-only).
    ///
    /// Every relationship (all pages), its roles by catalog name and its live access
    /// assignments, one manifest each with spec.relationshipId; managementPolicy Observe unless
    /// --manage, deletionPolicy Orphan unless --deletion-policy Delete; terminated and expired
    /// ones skipped unless --include-ended. To stdout, or with --out-dir one folder per customer.
    /// Nothing is written when a read fails.
    Export(Box<crate::onboard::export::ExportArgs>),
    /// Show what the operator would do for these manifests, like `terraform plan` (read-only).
    ///
    /// Microsoft is read through the controller's own observe, and the steps come from its own
    /// plan, run forward until it would wait for the customer or Microsoft. Exit status 0:
    /// nothing to do, 2: changes, 1: an error (an invalid manifest, a failed read, or a change
    /// the operator refuses).
    Plan(Box<crate::onboard::plan::PlanArgs>),
    /// Print, as CSV, the approval links of a GdapFleet's relationships that await their
    /// customer's approval (for the onboarding team; read from the cluster, read-only).
    Approvals(Box<crate::onboard::approvals::ApprovalsArgs>),
    /// Sign in as the partner's GDAP user and store the refresh token the operator needs.
    ///
    /// Device code flow by default (open the printed address on any device); `--browser` uses
    /// the authorization code flow with PKCE on a loopback redirect instead. The token is checked
    /// (the user, MFA, Partner Center) and written into the credentials Secret or a file; it is
    /// never printed.
    Login(Box<crate::login::LoginArgs>),
    /// Check a partner set-up against Microsoft before anything is applied (read-only).
    ///
    /// One line per check, each failure with what to do. Exit status 0: every check passed,
    /// 1: a check failed.
    Doctor(Box<crate::doctor::DoctorArgs>),
    /// The partner's Partner Center webhook registration: status, register, test.
    ///
    /// `status` prints it; `register --url URL` creates it or brings it to URL with the GDAP
    /// events (refusing to replace one that points elsewhere unless --force); `test` sends the
    /// validation event and prints each delivery attempt.
    Webhook(Box<crate::webhook_admin::WebhookArgs>),
    /// Run the operator: watch the custom resources and reconcile them with Microsoft.
    Run(Box<crate::run::RunArgs>),
    /// Serve the Microsoft emulator (login, Graph, Partner Center) for tests, demos and trials.
    #[cfg(feature = "sandbox")]
    Sandbox(Box<crate::sandbox::SandboxArgs>),
    /// List the GDAP role catalog compiled into the binary.
    Roles {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}
