//! The benchmark report: what `make bench` writes to `bench/results.json` and
//! `docs/benchmarks.md`, and the arithmetic behind it. Pure: no I/O, no clock.
//!
//! Contract:
//! - A [`Figure`] holds the samples of one measurement (one per run) and, when it has one, the
//!   samples of its reference measured in the same runs. Its value is the median of its samples;
//!   its ratio is the median of the per-run ratios (subject ÷ reference, or the inverse when the
//!   figure says "times faster"), so a noisy run moves both sides of its own ratio.
//! - A [`Target`] bounds either the value or the ratio; `met` is computed, never given.
//! - [`render_markdown`] lays out the machine, every figure with its reference, ratio and target,
//!   an explanation of every missed target (from `bench/notes.md`, a section per figure id), the
//!   benchmarks that could not run, with the reason, and — given a [`Baseline`] (the figures of
//!   an earlier build, labelled with its commit) — each figure before and after.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The version of the `results.json` layout.
pub const SCHEMA: u32 = 1;

/// Everything one `make bench` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: u32,
    /// When the run ended (RFC 3339, UTC).
    pub generated_at: String,
    /// The commit measured (`git describe --always --dirty`).
    pub commit: String,
    /// How many times each measurement ran (its samples; medians are reported).
    pub runs: usize,
    /// Wall time of the whole run in seconds.
    pub duration_seconds: f64,
    /// The machine.
    pub machine: Machine,
    /// The figures, in report order.
    pub figures: Vec<Figure>,
    /// Benchmarks that did not run, and why.
    pub unavailable: Vec<Unavailable>,
    /// Supporting numbers per benchmark (e.g. writes per object of the operator and the floor).
    pub details: BTreeMap<String, serde_json::Value>,
    /// The earlier figures this run is compared with, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

/// Figures of an earlier build, the "before" of a comparison (`bench/baseline.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    /// The commit measured then.
    pub commit: String,
    /// When.
    pub generated_at: String,
    /// Its figures (ids as in [`Figure::id`]).
    pub figures: Vec<BaselineFigure>,
}

/// One earlier figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineFigure {
    /// As [`Figure::id`].
    pub id: String,
    /// As [`Figure::what`].
    pub what: String,
    /// As [`Figure::unit`].
    pub unit: String,
    /// The median then.
    #[serde(deserialize_with = "nan_if_null")]
    pub value: f64,
}

impl Baseline {
    /// The figures of `results` whose id starts with `prefix`, as a baseline.
    pub fn of(results: &Results, prefix: &str) -> Baseline {
        Baseline {
            commit: results.commit.clone(),
            generated_at: results.generated_at.clone(),
            figures: results
                .figures
                .iter()
                .filter(|f| f.id.starts_with(prefix))
                .map(|f| BaselineFigure {
                    id: f.id.clone(),
                    what: f.what.clone(),
                    unit: f.unit.clone(),
                    value: f.value,
                })
                .collect(),
        }
    }
}

/// The machine the figures were measured on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    /// MemTotal in MiB.
    pub memory_mib: u64,
    /// `uname -sr`.
    pub kernel: String,
    /// The 1, 5 and 15-minute load averages when the run began.
    pub load_average_start: [f64; 3],
    /// The same when it ended.
    pub load_average_end: [f64; 3],
    /// What else ran on the machine, when known (`GDAP_BENCH_MACHINE_NOTE`).
    pub note: Option<String>,
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    /// Stable id (`reconcile.seconds`, `import.file.100k.usersPerSecond`, …); `bench/notes.md`
    /// explains a missed target under `## <id>`.
    pub id: String,
    /// The benchmark it belongs to (a section of the report).
    pub benchmark: String,
    /// What was measured.
    pub what: String,
    /// Unit of `value`, `samples` and the reference.
    pub unit: String,
    /// Median of `samples`.
    #[serde(deserialize_with = "nan_if_null")]
    pub value: f64,
    /// One per run.
    #[serde(deserialize_with = "nans_if_null")]
    pub samples: Vec<f64>,
    /// What it is compared with, measured in the same runs.
    pub reference: Option<Reference>,
    /// Figure and reference combined.
    pub ratio: Option<Ratio>,
    /// The goal.
    pub target: Option<Target>,
}

/// A reference measurement, in the figure's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// What the reference is.
    pub what: String,
    /// Median of `samples`.
    #[serde(deserialize_with = "nan_if_null")]
    pub value: f64,
    /// One per run.
    #[serde(deserialize_with = "nans_if_null")]
    pub samples: Vec<f64>,
}

/// How a figure relates to its reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratio {
    /// What is divided by what, e.g. "operator time ÷ floor time".
    pub definition: String,
    /// Median of `samples` (or of the medians, when the two sides ran a different number of
    /// times).
    #[serde(deserialize_with = "nan_if_null")]
    pub value: f64,
    /// One per run.
    #[serde(deserialize_with = "nans_if_null")]
    pub samples: Vec<f64>,
}

/// Which number a target bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Bounded {
    /// The figure's value.
    Value,
    /// The figure's ratio.
    Ratio,
}

/// A bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Bound {
    /// At most this.
    AtMost(f64),
    /// At least this.
    AtLeast(f64),
}

impl Bound {
    fn holds(self, x: f64) -> bool {
        match self {
            Bound::AtMost(b) => x <= b,
            Bound::AtLeast(b) => x >= b,
        }
    }
}

/// A goal of a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// As the issue states it, e.g. "within 2× of the floor".
    pub description: String,
    /// What it bounds.
    pub bounds: Bounded,
    /// The bound.
    pub bound: Bound,
    /// Whether the median meets it.
    pub met: bool,
}

/// A benchmark that did not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unavailable {
    /// Stable id (`schedules`, `export`, …).
    pub id: String,
    /// What it would measure.
    pub what: String,
    /// Why it did not run ("not available: needs …", or the error that stopped it).
    pub reason: String,
}

/// How a ratio is formed from a figure and its reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divide {
    /// figure ÷ reference (e.g. operator time over floor time).
    FigureByReference,
    /// reference ÷ figure (e.g. "times faster": SDK time over import time).
    ReferenceByFigure,
}

/// `base` with the benchmarks `newer` measured in place of its own: figures of the same sections,
/// details whose key starts with a section's name, not-measured entries whose id starts with a
/// figure id's first segment. A "Merged" detail says what was measured when, on which commit.
pub fn merge(mut base: Results, newer: Results) -> Results {
    let sections: Vec<String> =
        newer
            .figures
            .iter()
            .map(|f| f.benchmark.clone())
            .fold(Vec::new(), |mut v, s| {
                if !v.contains(&s) {
                    v.push(s);
                }
                v
            });
    let prefixes: Vec<String> = newer
        .figures
        .iter()
        .filter_map(|f| f.id.split('.').next().map(|p| format!("{p}.")))
        .collect();
    // The new figures go where the section's old ones began (report order), else at the end.
    let at = base
        .figures
        .iter()
        .position(|f| sections.contains(&f.benchmark))
        .unwrap_or(base.figures.len());
    base.figures.retain(|f| !sections.contains(&f.benchmark));
    base.details
        .retain(|k, _| !sections.iter().any(|s| k.starts_with(s.as_str())));
    base.unavailable
        .retain(|u| !prefixes.iter().any(|p| u.id.starts_with(p.as_str())));
    base.figures.splice(at..at, newer.figures);
    base.unavailable.extend(newer.unavailable);
    base.details.extend(newer.details);
    // Earlier merges stay on record, except of the sections measured again now.
    let merged = base
        .details
        .remove("Merged")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    // A record of several sections ("A, B") keeps those not measured again now.
    let mut merged: serde_json::Map<String, serde_json::Value> = merged
        .into_iter()
        .filter_map(|(key, note)| {
            let rest: Vec<&str> = key
                .split(", ")
                .filter(|name| !sections.iter().any(|s| s == name))
                .collect();
            (!rest.is_empty()).then(|| (rest.join(", "), note))
        })
        .collect();
    merged.insert(
        sections.join(", "),
        serde_json::json!(format!(
            "measured again at {} on commit {} ({} runs); the rest at {} on commit {}",
            newer.generated_at, newer.commit, newer.runs, base.generated_at, base.commit
        )),
    );
    base.details
        .insert("Merged".into(), serde_json::Value::Object(merged));
    base
}

/// The median; `NaN` for no samples.
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

impl Figure {
    /// A figure from its samples.
    pub fn new(id: &str, benchmark: &str, what: &str, unit: &str, samples: Vec<f64>) -> Figure {
        Figure {
            id: id.into(),
            benchmark: benchmark.into(),
            what: what.into(),
            unit: unit.into(),
            value: median(&samples),
            samples,
            reference: None,
            ratio: None,
            target: None,
        }
    }

    /// Adds the reference measured in the same runs and the ratio. Per-run ratios pair the
    /// samples by run; when the counts differ (a reference too slow to repeat), the ratio is
    /// formed from the two medians.
    pub fn against(
        mut self,
        what: &str,
        samples: Vec<f64>,
        divide: Divide,
        definition: &str,
    ) -> Figure {
        let reference = Reference {
            what: what.into(),
            value: median(&samples),
            samples,
        };
        let quotient = |figure: f64, reference: f64| match divide {
            Divide::FigureByReference => figure / reference,
            Divide::ReferenceByFigure => reference / figure,
        };
        let paired = reference.samples.len() == self.samples.len();
        let ratios: Vec<f64> = if paired {
            self.samples
                .iter()
                .zip(&reference.samples)
                .map(|(f, r)| quotient(*f, *r))
                .collect()
        } else {
            Vec::new()
        };
        let value = if paired {
            median(&ratios)
        } else {
            quotient(self.value, reference.value)
        };
        self.ratio = Some(Ratio {
            definition: definition.into(),
            value,
            samples: ratios,
        });
        self.reference = Some(reference);
        self
    }

    /// Adds a target and whether the median meets it (a missing ratio or a `NaN` never does).
    pub fn target(mut self, description: &str, bounds: Bounded, bound: Bound) -> Figure {
        let x = match bounds {
            Bounded::Value => self.value,
            Bounded::Ratio => self.ratio.as_ref().map_or(f64::NAN, |r| r.value),
        };
        self.target = Some(Target {
            description: description.into(),
            bounds,
            bound,
            met: !x.is_nan() && bound.holds(x),
        });
        self
    }

    /// The target is set and missed.
    pub fn missed(&self) -> bool {
        self.target.as_ref().is_some_and(|t| !t.met)
    }
}

/// One line for the console: the figure, its reference and ratio, and the target's verdict.
pub fn summary_line(f: &Figure) -> String {
    let mut line = format!("{}: {} {}", f.what, number(f.value), f.unit);
    if let (Some(r), Some(q)) = (&f.reference, &f.ratio) {
        let _ = write!(
            line,
            " (reference {}: {} {}; {} = {})",
            r.what,
            number(r.value),
            f.unit,
            q.definition,
            ratio(q.value)
        );
    }
    if let Some(t) = &f.target {
        let verdict = if t.met { "met" } else { "MISSED" };
        let _ = write!(line, " — target {}: {verdict}", t.description);
    }
    line
}

/// Explanations by figure id, from `bench/notes.md`: the text under each `## <id>` heading.
pub fn parse_notes(text: &str) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("## ") {
            if let Some((id, body)) = current.take() {
                notes.insert(id, body.trim().to_string());
            }
            current = Some((id.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((id, body)) = current {
        notes.insert(id, body.trim().to_string());
    }
    notes
}

/// A number for people: three significant digits, thousands separated.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        return "—".into();
    }
    let magnitude = x.abs();
    let decimals = if magnitude >= 100.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    };
    let text = format!("{x:.decimals$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn ratio(x: f64) -> String {
    format!("{}×", number(x))
}

/// `docs/benchmarks.md`.
pub fn render_markdown(results: &Results, notes: &BTreeMap<String, String>) -> String {
    let mut md = String::new();
    header(&mut md, results);
    machine(&mut md, &results.machine);
    figures(&mut md, &results.figures);
    missed(&mut md, &results.figures, notes);
    // A baseline taken from this very run (or whose figures were not measured again since, e.g.
    // after a merge of other parts) compares nothing.
    if let Some(baseline) = &results.baseline
        && measured_since(baseline, &results.figures)
    {
        before_and_after(&mut md, baseline, &results.figures);
    }
    unavailable(&mut md, &results.unavailable);
    details(&mut md, &results.details);
    if let Some(history) = notes.get("history") {
        let _ = writeln!(md, "## History\n\n{history}\n");
    }
    schema(&mut md);
    md
}

fn header(md: &mut String, r: &Results) {
    let _ = writeln!(
        md,
        "# Benchmarks\n\n<!-- Generated by `make bench` (benches/gdap). Edit bench/notes.md for the explanations, not this file, then `cargo bench --bench gdap -- report` renders it again. -->\n\n\
         Measured by `make bench` on commit `{}`, finished {} after {:.0} minutes. Each measurement ran \
         {} times; every figure is the **median**, and every ratio is the median of the per-run ratios \
         against a reference measured **in the same run**, because the machine is shared and noisy. \
         Release builds. The raw samples are in [`bench/results.json`](../bench/results.json) \
         (schema below).{}\n",
        r.commit,
        r.generated_at,
        r.duration_seconds / 60.0,
        r.runs,
        merged_note(r)
    );
}

/// Names the sections a later run measured again, which the header's commit does not describe.
fn merged_note(r: &Results) -> String {
    r.details
        .get("Merged")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .map(|(sections, how)| {
                    format!(" {sections}: {}.", how.as_str().unwrap_or_default())
                })
                .collect::<String>()
        })
        .filter(|note| !note.is_empty())
        .map(|note| format!(" Measured again since:{note}"))
        .unwrap_or_default()
}

fn machine(md: &mut String, m: &Machine) {
    let load = |l: &[f64; 3]| format!("{:.2}, {:.2}, {:.2}", l[0], l[1], l[2]);
    let _ = writeln!(md, "## The machine\n\n| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu_model);
    let _ = writeln!(md, "| cores | {} |", m.cores);
    let _ = writeln!(md, "| memory | {} MiB |", number(m.memory_mib as f64));
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) at the start | {} |",
        load(&m.load_average_start)
    );
    let _ = writeln!(
        md,
        "| load average at the end | {} |",
        load(&m.load_average_end)
    );
    if let Some(note) = &m.note {
        let _ = writeln!(md, "| also running | {note} |");
    }
    md.push('\n');
}

fn figures(md: &mut String, figures: &[Figure]) {
    let mut benchmarks: Vec<&str> = Vec::new();
    for f in figures {
        if !benchmarks.contains(&f.benchmark.as_str()) {
            benchmarks.push(&f.benchmark);
        }
    }
    for benchmark in benchmarks {
        let _ = writeln!(
            md,
            "## {benchmark}\n\n| figure | median | reference (median) | ratio | target | |\n|---|---|---|---|---|---|"
        );
        for f in figures.iter().filter(|f| f.benchmark == benchmark) {
            let reference = f.reference.as_ref().map_or("—".to_string(), |r| {
                format!("{}: {} {}", r.what, number(r.value), f.unit)
            });
            let q = f.ratio.as_ref().map_or("—".to_string(), |q| {
                format!("{} ({})", ratio(q.value), q.definition)
            });
            let (target, verdict) = match &f.target {
                Some(t) if t.met => (t.description.clone(), "met"),
                Some(t) => (t.description.clone(), "**missed**"),
                None => ("—".to_string(), ""),
            };
            let _ = writeln!(
                md,
                "| {} | {} {} | {reference} | {q} | {target} | {verdict} |",
                f.what,
                number(f.value),
                f.unit
            );
        }
        md.push('\n');
    }
}

fn missed(md: &mut String, figures: &[Figure], notes: &BTreeMap<String, String>) {
    let missed: Vec<&Figure> = figures.iter().filter(|f| f.missed()).collect();
    if missed.is_empty() {
        let _ = writeln!(
            md,
            "## Missed targets\n\nNone: every target was met in this run.\n"
        );
        return;
    }
    let _ = writeln!(md, "## Missed targets, and what limits them\n");
    for f in missed {
        let target = f.target.as_ref().map_or("", |t| t.description.as_str());
        let why = notes.get(&f.id).map_or_else(
            || {
                format!(
                    "No explanation is recorded for `{}` in bench/notes.md yet.",
                    f.id
                )
            },
            Clone::clone,
        );
        let _ = writeln!(md, "### {} (target: {target})\n\n{why}\n", f.what);
    }
}

/// Whether any of the baseline's figures is different now: another value, or not measured.
fn measured_since(baseline: &Baseline, figures: &[Figure]) -> bool {
    baseline.figures.iter().any(|before| {
        !figures
            .iter()
            .any(|f| f.id == before.id && f.value == before.value)
    })
}

fn before_and_after(md: &mut String, baseline: &Baseline, figures: &[Figure]) {
    let _ = writeln!(
        md,
        "## Before and after\n\nBefore: commit `{}` (measured {}, `bench/baseline.json`); after: this run.\n\n| figure | before | after | after ÷ before |\n|---|---|---|---|",
        baseline.commit, baseline.generated_at
    );
    for before in &baseline.figures {
        let after = figures.iter().find(|f| f.id == before.id);
        let (now, change) = after.map_or(("not measured".to_string(), "—".to_string()), |f| {
            (
                format!("{} {}", number(f.value), f.unit),
                ratio(f.value / before.value),
            )
        });
        let _ = writeln!(
            md,
            "| {} | {} {} | {now} | {change} |",
            before.what,
            number(before.value),
            before.unit
        );
    }
    md.push('\n');
}

fn unavailable(md: &mut String, list: &[Unavailable]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Not measured\n");
    for u in list {
        let _ = writeln!(md, "- **{}**: {}", u.what, u.reason);
    }
    md.push('\n');
}

fn details(md: &mut String, details: &BTreeMap<String, serde_json::Value>) {
    if details.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Details\n");
    for (key, value) in details {
        let _ = writeln!(md, "**{key}**\n");
        match value.as_object() {
            Some(map) => {
                for (k, v) in map {
                    let shown = match v {
                        serde_json::Value::Number(n) => n.as_f64().map_or(n.to_string(), number),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(md, "- {k}: {shown}");
                }
            }
            None => {
                let _ = writeln!(md, "{value}");
            }
        }
        md.push('\n');
    }
}

fn schema(md: &mut String) {
    md.push_str(
        "## `bench/results.json`\n\n\
         ```\n\
         {\n\
         \x20 \"schema\": 1,                      // layout version\n\
         \x20 \"generatedAt\": \"RFC 3339\", \"commit\": \"git describe\", \"runs\": 3, \"durationSeconds\": 0.0,\n\
         \x20 \"machine\": {\"cpuModel\", \"cores\", \"memoryMib\", \"kernel\",\n\
         \x20              \"loadAverageStart\": [1m, 5m, 15m], \"loadAverageEnd\": [...], \"note\": null},\n\
         \x20 \"figures\": [{\n\
         \x20   \"id\": \"reconcile.seconds\",       // stable; bench/notes.md explains a miss under `## id`\n\
         \x20   \"benchmark\", \"what\", \"unit\",\n\
         \x20   \"value\": median, \"samples\": [one per run],\n\
         \x20   \"reference\": {\"what\", \"value\": median, \"samples\": [same runs]} | null,\n\
         \x20   \"ratio\": {\"definition\", \"value\": median of the per-run ratios, \"samples\": [...]} | null,\n\
         \x20   \"target\": {\"description\", \"bounds\": \"value\" | \"ratio\",\n\
         \x20              \"bound\": {\"atMost\": x} | {\"atLeast\": x}, \"met\": bool} | null\n\
         \x20 }],\n\
         \x20 \"unavailable\": [{\"id\", \"what\", \"reason\"}],   // benchmarks that did not run\n\
         \x20 \"details\": {\"<benchmark>\": {\"<name>\": value}},  // supporting counts\n\
         \x20 \"baseline\": {\"commit\", \"generatedAt\", \"figures\": [{\"id\", \"what\", \"unit\", \"value\"}]}  // optional: the \"before\"\n\
         }\n\
         ```\n",
    );
}

/// A figure JSON wrote as `null` (NaN: e.g. a ratio of two zero idle-CPU figures) reads back
/// as NaN, so a results file can always be merged and rendered again.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`nan_if_null`] for every sample.
fn nans_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let samples = Vec::<Option<f64>>::deserialize(d)?;
    Ok(samples.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}
