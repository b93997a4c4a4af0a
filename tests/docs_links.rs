//! The documentation holds together: in README.md, docs/*.md, the chart's READMEs and every other
//! Markdown file of the repository, every relative link `[text](path)` names a file or directory
//! that exists, and every `#anchor` (on the same page or on another Markdown page) names a heading
//! of that page, by GitHub's rules for heading anchors. External links (`http:`, `https:`,
//! `mailto:`) are not followed. And the short manifests README.md tours the four kinds with are
//! valid, by the same rules as `gdap-operator validate`.

use gdap_operator::validate::ManifestValidator;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GitHub's anchor for a heading's text: lower case, every character that is not a letter, a
/// digit, a space, `-` or `_` removed, then each space a `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text of a Markdown file with fenced code blocks blanked (their lines kept, empty), so that
/// line numbers stay right and nothing inside a block counts as a heading or a link.
fn without_code_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker)
                    && trimmed.trim_start_matches(marker).trim().is_empty()
                {
                    fence = None;
                }
            }
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Inline code spans replaced by a word (a link's text may be code; a code span is never a link).
fn without_code_spans(text: &str) -> String {
    regex::Regex::new(r"`[^`\n]*`")
        .unwrap()
        .replace_all(text, "code")
        .into_owned()
}

/// The anchors a page offers: one per heading (repeated ones numbered `-1`, `-2`, … as GitHub
/// does), and any explicit `<a name="…">` or `id="…"`.
fn anchors(text: &str) -> BTreeSet<String> {
    let text = without_code_blocks(text);
    let heading = regex::Regex::new(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$").unwrap();
    let link = regex::Regex::new(r"!?\[([^\]]*)\]\([^)]*\)").unwrap();
    let html = regex::Regex::new(r#"<a\s+(?:name|id)="([^"]+)""#).unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(c) = heading.captures(line) {
            let base = slug(&link.replace_all(&c[1], "$1"));
            let n = seen.entry(base.clone()).or_insert(0);
            out.insert(if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            });
            *n += 1;
        }
        for c in html.captures_iter(line) {
            out.insert(c[1].to_string());
        }
    }
    out
}

/// Every inline link and image target of a page, with the line it starts on.
fn links(text: &str) -> Vec<(usize, String)> {
    let text = without_code_spans(&without_code_blocks(text));
    let link = regex::Regex::new(r"\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+[^)]*)?\)").unwrap();
    link.captures_iter(&text)
        .map(|c| {
            let at = c.get(0).unwrap().start();
            (text[..at].matches('\n').count() + 1, c[1].to_string())
        })
        .collect()
}

/// The Markdown files of the repository (not under `target/` or hidden directories).
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            markdown_files(&path, out);
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// What is wrong with the links of `file`: one line per broken link.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut broken = Vec::new();
    for (line, target) in links(&text) {
        if target.is_empty()
            || ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| target.starts_with(scheme))
        {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap().join(path)
        };
        if !resolved.exists() {
            broken.push(format!(
                "{shown}:{line}: {target}: {} does not exist",
                resolved.strip_prefix(root).unwrap_or(&resolved).display()
            ));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if resolved.extension().is_none_or(|e| e != "md") {
            broken.push(format!(
                "{shown}:{line}: {target}: an anchor on a page that is not Markdown"
            ));
            continue;
        }
        let offered = anchors(&std::fs::read_to_string(&resolved).unwrap());
        if !offered.contains(anchor) {
            broken.push(format!(
                "{shown}:{line}: {target}: no heading of {} has the anchor #{anchor}",
                resolved.strip_prefix(root).unwrap_or(&resolved).display()
            ));
        }
    }
    broken
}

#[test]
fn every_relative_link_and_anchor_of_the_documentation_resolves() {
    let root = root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    files.sort();
    for needed in [
        "README.md",
        "docs/operations.md",
        "docs/sandbox.md",
        "charts/gdap-operator/README.md",
    ] {
        assert!(
            files.contains(&root.join(needed)),
            "{needed} not among {files:?}"
        );
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        checked += links(&std::fs::read_to_string(file).unwrap()).len();
        broken.extend(broken_links(&root, file));
    }
    assert!(checked >= 50, "only {checked} links found in {files:?}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let linked: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|(_, target)| target.split('#').next().unwrap().to_string())
        .collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && !linked.contains(&format!("docs/{name}")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs pages README.md does not link: {missing:?}"
    );
    assert!(linked.contains("charts/gdap-operator/README.md"));
}

#[test]
fn the_readmes_example_manifests_are_valid() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = regex::Regex::new(r"(?s)```yaml\n(.*?)```").unwrap();
    let validator = ManifestValidator::new();
    let mut report = gdap_operator::validate::Report::default();
    let mut kinds = BTreeSet::new();
    for c in block.captures_iter(&readme) {
        let value: serde_yaml::Value = serde_yaml::from_str(&c[1]).unwrap();
        kinds.insert(value["kind"].as_str().unwrap_or_default().to_string());
        validator.validate_text(Path::new("README.md"), &c[1], &mut report);
    }
    assert_eq!(
        kinds,
        BTreeSet::from(
            ["AppConsent", "GdapFleet", "GdapRelationship", "TenantSync"].map(String::from)
        ),
        "README.md tours the four kinds with one example each"
    );
    assert_eq!(report.objects_checked, 4);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn anchors_follow_githubs_rules() {
    let page = "# Title\n\
                ## Uninstall: what happens to the relationships\n\
                ### `validate`: the API server's rules, offline\n\
                ## Checking a set-up (`gdap-operator doctor`)\n\
                ## The scale fixture (`--scale-fixture`)\n\
                ## Control API (`/_sandbox/…`)\n\
                ## Microsoft's failures read the same on every kind\n\
                ## Details\n\
                ```sh\n\
                # not a heading\n\
                ```\n\
                ## Details\n\
                ## Details ##\n\
                ## See [the chart](charts/README.md)\n";
    let expected = [
        "title",
        "uninstall-what-happens-to-the-relationships",
        "validate-the-api-servers-rules-offline",
        "checking-a-set-up-gdap-operator-doctor",
        "the-scale-fixture---scale-fixture",
        "control-api-_sandbox",
        "microsofts-failures-read-the-same-on-every-kind",
        "details",
        "details-1",
        "details-2",
        "see-the-chart",
    ];
    assert_eq!(
        anchors(page),
        expected
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn links_are_found_outside_code_only() {
    let page = "See [the chart](charts/README.md#values) and [`argocd/`](argocd/README.md).\n\
                A link across [two\n\
                lines](docs/x.md \"title\"), an image ![logo](logo.png), [web](https://x.y).\n\
                `[not](a-link.md)` and e.g. `[--resync-interval, 5m]` (see below)\n\
                ```md\n\
                [in a block](nowhere.md)\n\
                ```\n";
    let targets: Vec<(usize, String)> = links(page);
    assert_eq!(
        targets,
        [
            (1, "charts/README.md#values"),
            (1, "argocd/README.md"),
            (2, "docs/x.md"),
            (3, "logo.png"),
            (3, "https://x.y"),
        ]
        .map(|(l, t)| (l, t.to_string()))
    );
}
