//! The `gdap-operator` binary: parses the command line and dispatches.
#![forbid(unsafe_code)]

use clap::Parser;
use gdap_operator::api::RoleCatalog;
use gdap_operator::cli::{Cli, Command};
use gdap_operator::{api, crdgen, validate};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { out_dir } => print_crds(out_dir),
        Command::Validate { paths } => return run_validate(&paths),
        Command::Roles { json } => print_roles(json),
        Command::Run(args) => {
            start_with_malloc_tuned();
            block_on(gdap_operator::run::run(*args))
        }
        Command::Export(args) => block_on(gdap_operator::onboard::export::run(*args)),
        Command::Plan(args) => return run_plan(*args),
        Command::Approvals(args) => return run_approvals(*args),
        Command::Login(args) => block_on(gdap_operator::login::run(*args)),
        Command::Doctor(args) => return run_doctor(*args),
        Command::Webhook(args) => return exit_with(gdap_operator::webhook_admin::run(*args)),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => block_on(gdap_operator::sandbox::run(*args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the operator again with glibc set to give memory back (`run::allocator`); says so
/// when that fails, and goes on with glibc's defaults.
fn start_with_malloc_tuned() {
    use gdap_operator::run::allocator;
    if let Some(e) = allocator::tune() {
        eprintln!(
            "warning: could not start again with {}={} ({e}); glibc's malloc keeps its defaults, and memory a burst grew is not given back",
            allocator::VARIABLE,
            allocator::TUNABLES
        );
    }
}

/// Runs an async entry point on a multi-threaded Tokio runtime.
fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(future: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// `doctor` exits 0 (every check passed) or 1 (a check failed, or it could not run).
fn run_doctor(args: gdap_operator::doctor::DoctorArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(gdap_operator::doctor::run(args)));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `plan` exits 0 (nothing to do), 2 (changes) or 1 (an error).
fn run_approvals(args: gdap_operator::onboard::approvals::ApprovalsArgs) -> ExitCode {
    exit_with(gdap_operator::onboard::approvals::run(args))
}

fn run_plan(args: gdap_operator::onboard::plan::PlanArgs) -> ExitCode {
    exit_with(gdap_operator::onboard::plan::run(args))
}

/// Runs a command that answers its exit code on a new runtime; an error prints and exits 1.
fn exit_with(command: impl std::future::Future<Output = anyhow::Result<u8>>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(command));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_crds(out_dir: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    match out_dir {
        None => print!("{}", crdgen::render_all()),
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for crd in crdgen::crds() {
                std::fs::write(dir.join(crdgen::file_name(&crd)), crdgen::render(&crd))?;
            }
        }
    }
    Ok(())
}

fn run_validate(paths: &[std::path::PathBuf]) -> ExitCode {
    let validator = validate::ManifestValidator::new();
    match validator.validate_paths(paths) {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Ok(report) => {
            for problem in &report.problems {
                println!("{problem}");
            }
            eprintln!(
                "{} object(s) checked, {} problem(s), {} document(s) of other API groups skipped",
                report.objects_checked,
                report.problems.len(),
                report.skipped
            );
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn print_roles(json: bool) -> anyhow::Result<()> {
    let roles = RoleCatalog::builtin().all();
    if json {
        let rows: Vec<_> = roles
            .iter()
            .map(|r| serde_json::json!({"name": r.name, "id": r.id, "description": r.description, "privileged": r.privileged, "gdapSupport": format!("{:?}", r.gdap_support), "flags": r.flags}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<52} {:<36} NOTE", "NAME", "ID");
    for role in roles {
        let note = match role.gdap_support {
            api::roles::GdapSupport::Documented if role.forbids_auto_extend() => "no auto-extend",
            api::roles::GdapSupport::Documented => "",
            api::roles::GdapSupport::DoNotUse => "not for GDAP (refused)",
            api::roles::GdapSupport::Unverified => "new, not yet in Microsoft's docs",
        };
        println!("{:<52} {:<36} {note}", role.name, role.id);
    }
    Ok(())
}
