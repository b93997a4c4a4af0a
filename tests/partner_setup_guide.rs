//! docs/partner-setup.md says what a partner types: every `gdap-operator` command in its shell
//! blocks is one the binary accepts as written (the same parser as the binary's), and every
//! `helm install` renders with the values it sets. The commands themselves run against the
//! sandbox in tests/login_cli.rs, tests/doctor_cli.rs and the end-to-end suites.

mod support;

use clap::Parser;
use gdap_operator::cli::{Cli, Command};

const GUIDE: &str = include_str!("../docs/partner-setup.md");

/// The shell blocks' commands, continuation lines joined, `<placeholders>` filled in.
fn commands(program: &str) -> Vec<Vec<String>> {
    let placeholder = regex::Regex::new(r"<[^>]*>").unwrap();
    let mut out = Vec::new();
    let mut in_shell = false;
    let mut pending = String::new();
    for line in GUIDE.lines() {
        if line.starts_with("```") {
            in_shell = line.trim() == "```sh";
            continue;
        }
        if !in_shell {
            continue;
        }
        let line = line.split(" #").next().unwrap_or_default();
        pending.push_str(line.trim_end_matches('\\'));
        pending.push(' ');
        if line.ends_with('\\') {
            continue;
        }
        let command =
            placeholder.replace_all(pending.trim(), "0f0f0f0f-0000-4000-8000-000000000001");
        if command.starts_with(program) {
            out.push(words(&command));
        }
        pending.clear();
    }
    out
}

/// Splits a command line into words as a shell does for these simple lines (quotes, no
/// expansion).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[test]
fn every_gdap_operator_command_of_the_guide_is_accepted_as_written() {
    let commands = commands("gdap-operator");
    let mut seen = Vec::new();
    for words in &commands {
        let cli = Cli::try_parse_from(words)
            .unwrap_or_else(|e| panic!("docs/partner-setup.md: `{}`:\n{e}", words.join(" ")));
        seen.push(match cli.command {
            Command::Login(_) => "login",
            Command::Doctor(_) => "doctor",
            Command::Webhook(_) => "webhook",
            _ => "other",
        });
    }
    for needed in ["login", "doctor", "webhook"] {
        assert!(
            seen.iter().filter(|s| **s == needed).count() >= 1,
            "the guide shows no `gdap-operator {needed}`: {seen:?}"
        );
    }
    assert!(
        commands.iter().any(|w| w.iter().any(|a| a == "--browser")),
        "the guide shows the browser sign-in"
    );
}

#[test]
fn the_guides_helm_install_renders_with_the_values_it_sets() {
    let installs = commands("helm install");
    assert!(!installs.is_empty(), "the guide shows `helm install`");
    for words in installs {
        let sets: Vec<&str> = words
            .windows(2)
            .filter(|w| w[0] == "--set")
            .map(|w| w[1].as_str())
            .collect();
        support::chart::template("gdap-operator", "gdap-system", &sets)
            .unwrap_or_else(|e| panic!("helm template with {sets:?}: {e}"));
    }
}

#[test]
fn the_words_of_a_command_line() {
    assert_eq!(
        words("helm install x --set 'rbac.connectionSecrets={a,b}' \"two words\""),
        [
            "helm",
            "install",
            "x",
            "--set",
            "rbac.connectionSecrets={a,b}",
            "two words"
        ]
    );
}
