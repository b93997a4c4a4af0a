//! The outcome of `doctor`: one [`Check`] per line, the text and JSON renderings, and the exit
//! code (pure).

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The prerequisite is met.
    Pass,
    /// Met for now, or not verifiable; worth acting on (does not fail the run).
    Warn,
    /// Not met: the operator will fail on it.
    Fail,
    /// Not run, because a check it needs did not pass.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the report (`checks[]` of the JSON output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The check's stable id (several lines may share one, e.g. one per missing group).
    pub id: &'static str,
    /// Its outcome.
    pub status: Status,
    /// What was found, in one line.
    pub detail: String,
    /// What to do (warn and fail only; `null` otherwise).
    pub fix: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A warning with what to do.
    pub fn warn(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure with what to do.
    pub fn fail(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// Not run: `needs` names the check that did not pass.
    pub fn skip(id: &'static str, needs: &str) -> Check {
        Check {
            id,
            status: Status::Skip,
            detail: format!("needs: {needs}"),
            fix: None,
        }
    }
}

/// The whole report (the JSON output: `{"checks": [...], "passed": bool}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every line, in check order.
    pub checks: Vec<Check>,
    /// True when no check failed (warnings and skips allowed).
    pub passed: bool,
}

impl Report {
    /// A report of these checks.
    pub fn new(checks: Vec<Check>) -> Report {
        let passed = !checks.iter().any(|c| c.status == Status::Fail);
        Report { checks, passed }
    }

    /// 0 when nothing failed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.passed { 0 } else { 1 }
    }

    /// One line per check (`STATUS  id  detail; fix: …`) and a summary line.
    pub fn text(&self) -> String {
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{}  {:width$}  {}",
                c.status.label(),
                c.id,
                c.detail
            ));
            if let Some(fix) = &c.fix {
                out.push_str(" — ");
                out.push_str(fix);
            }
            out.push('\n');
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "{}: {} passed, {} warning(s), {} failed, {} skipped\n",
            if self.passed { "ok" } else { "not ready" },
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_fails_the_run_and_warnings_do_not() {
        let ok = Report::new(vec![
            Check::pass("a", "fine"),
            Check::warn("b", "soon", "renew"),
            Check::skip("c", "a"),
        ]);
        assert!(ok.passed);
        assert_eq!(ok.exit_code(), 0);
        let bad = Report::new(vec![Check::pass("a", "fine"), Check::fail("b", "no", "do")]);
        assert!(!bad.passed);
        assert_eq!(bad.exit_code(), 1);
    }

    #[test]
    fn text_is_one_line_per_check_with_its_fix() {
        let report = Report::new(vec![
            Check::pass("client-credentials", "accepted"),
            Check::fail("user-mfa", "no MFA", "sign in again with MFA"),
        ]);
        let text = report.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("PASS  client-credentials  accepted"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("FAIL  user-mfa")
                && lines[1].ends_with("no MFA — sign in again with MFA"),
            "{text}"
        );
        assert!(lines[2].starts_with("not ready: 1 passed"), "{text}");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let report = Report::new(vec![Check::skip("partner-center", "refresh-token")]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"checks": [{"id": "partner-center", "status": "skip",
                "detail": "needs: refresh-token", "fix": null}], "passed": true})
        );
    }
}
