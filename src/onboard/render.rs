//! The text output of `gdap-operator plan` (pure): per object a heading and its steps, like
//! `terraform plan`; objects with nothing to do in one line; a summary at the end.

use super::report::{ObjectPlan, PlanReport, Verdict};
use std::fmt::Write;

fn heading(o: &ObjectPlan) -> String {
    let name = match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.clone(),
    };
    format!("{} {name}", o.kind)
}

fn facts(o: &ObjectPlan) -> String {
    let mut facts = Vec::new();
    if let Some(id) = &o.relationship_id {
        facts.push(format!("relationship {id}"));
    }
    if let Some(state) = &o.state {
        facts.push(state.clone());
    } else if o.error.is_none() && o.result != Verdict::Skipped {
        facts.push("no relationship yet".into());
    }
    if let Some(policy) = &o.management_policy {
        facts.push(format!("managementPolicy {policy}"));
    }
    facts.join(", ")
}

/// The whole plan as text.
pub fn text(report: &PlanReport) -> String {
    let mut out = String::new();
    for o in &report.objects {
        object(&mut out, o);
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Plan: {} object(s): {} to change ({} step(s)), {} without changes, {} error(s), {} skipped.",
        s.objects, s.changes, s.steps, s.no_changes, s.errors, s.skipped
    );
    out
}

fn object(out: &mut String, o: &ObjectPlan) {
    let head = heading(o);
    match o.result {
        Verdict::Error => {
            let _ = writeln!(
                out,
                "{head} ({}): error: {}",
                o.file,
                o.error.as_deref().unwrap_or("unknown")
            );
        }
        Verdict::Skipped => {
            let _ = writeln!(out, "{head} ({}): skipped: {}", o.file, o.notes.join("; "));
            return;
        }
        Verdict::NoChanges => {
            let _ = writeln!(out, "{head}: no changes ({})", facts(o));
        }
        Verdict::Changes => {
            let _ = writeln!(out, "{head} ({})", facts(o));
            for step in &o.steps {
                let _ = writeln!(out, "  {} {}", step.symbol, step.description);
            }
        }
    }
    if let Some(then) = o.then.as_ref().filter(|_| o.result != Verdict::Error) {
        let _ = writeln!(out, "    then: {then}");
    }
    if !o.drift.is_empty() {
        let _ = writeln!(
            out,
            "    managementPolicy Observe: the operator changes nothing; with Manage it would:"
        );
        for step in &o.drift {
            let _ = writeln!(out, "      {} {}", step.symbol, step.description);
        }
    }
    if o.result != Verdict::Skipped {
        for note in &o.notes {
            let _ = writeln!(out, "    note: {note}");
        }
    }
}
