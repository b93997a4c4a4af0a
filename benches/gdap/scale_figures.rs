//! The figures of the scale measurement (`scale`, in `scale.rs`) from its samples, and the
//! arithmetic of its sizes and waits. Pure: no I/O, no clock (`tests/bench_harness.rs` tests it).
//!
//! Contract:
//! - One [`Sample`] per run and size. A size whose wait ran out is an incident (how many were
//!   Ready, after how long), never a number: its samples are `NaN`, which every median leaves
//!   out, and a size that no run finished gets no figures at all but a "not measured" entry.
//! - Per size: the operator's CPU per relationship and the throughput. Every size after the
//!   first is compared with the first, run by run (the growth ratio); the largest size carries
//!   the target: CPU per relationship within [`GROWTH_TARGET`]× of the first size's.

use crate::report::{Bound, Bounded, Divide, Figure, Unavailable, median, number};
use serde_json::json;
use std::time::Duration;

/// The section title.
pub const BENCHMARK: &str = "Reconcile at scale";
/// The most the CPU per relationship may grow from the first size to the largest (issue 27).
pub const GROWTH_TARGET: f64 = 1.2;
/// The wait for all Ready allowed per relationship: the 1,000-object benchmark's ten minutes.
pub const WAIT_PER_OBJECT: Duration = Duration::from_millis(600);
/// The shortest wait for all Ready, whatever the size.
pub const SHORTEST_WAIT: Duration = Duration::from_secs(60);

/// What one run of one size measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// Every relationship was Ready (or settled) within the wait.
    Done(Finished),
    /// The wait ran out.
    TimedOut {
        /// Relationships Ready when it ran out.
        ready: usize,
        /// How long the wait was.
        seconds: f64,
    },
}

/// The numbers of a run whose relationships were all Ready in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished {
    /// From the first `kubectl apply` to all Ready.
    pub seconds: f64,
    /// The operator's user + system CPU over the same span.
    pub cpu_seconds: f64,
    /// The operator's peak RSS.
    pub peak_rss_mib: f64,
    /// The operator's calls to the sandbox (Microsoft) over the same span, per relationship.
    pub calls_per_object: f64,
    /// The operator's GdapRelationship reconciles over the same span, per relationship.
    pub reconciles_per_object: f64,
}

/// The samples of one size, one per run, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct Size {
    /// Relationships applied.
    pub objects: usize,
    /// One per run.
    pub samples: Vec<Sample>,
}

/// What the measurement reports.
#[derive(Debug, Default)]
pub struct Report {
    /// CPU per relationship at every size, then throughput at every size.
    pub figures: Vec<Figure>,
    /// Supporting numbers (medians of wall time, CPU and peak RSS per size; how it was run).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Runs whose wait ran out, by "size, run".
    pub incidents: serde_json::Map<String, serde_json::Value>,
    /// Sizes no run finished.
    pub unavailable: Vec<Unavailable>,
}

/// Sizes must be positive and increasing: the first is the base of the ratios, the last the
/// size the target bounds.
pub fn check_sizes(sizes: &[usize]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !sizes.is_empty() && sizes[0] > 0 && sizes.windows(2).all(|w| w[0] < w[1]),
        "the scale sizes (GDAP_BENCH_SCALE) must be positive and increasing, e.g. 1000,3000,10000; got {sizes:?}"
    );
    Ok(())
}

/// The longest wait for `objects` relationships to be Ready: [`WAIT_PER_OBJECT`] each, at least
/// [`SHORTEST_WAIT`].
pub fn wait_for(objects: usize) -> Duration {
    let objects = u32::try_from(objects).unwrap_or(u32::MAX);
    WAIT_PER_OBJECT.saturating_mul(objects).max(SHORTEST_WAIT)
}

/// The order of the sizes in run `run`: ascending, then descending, and so on, so that what the
/// machine does over a run's course (etcd growing, a neighbour's build) falls on every size.
pub fn order(sizes: usize, run: usize) -> Vec<usize> {
    if run.is_multiple_of(2) {
        (0..sizes).collect()
    } else {
        (0..sizes).rev().collect()
    }
}

impl Sample {
    /// `pick` of the finished run; `NaN` when the wait ran out.
    fn get(&self, pick: impl Fn(&Finished) -> f64) -> f64 {
        match self {
            Sample::Done(finished) => pick(finished),
            Sample::TimedOut { .. } => f64::NAN,
        }
    }
}

impl Size {
    /// Whether any run had all Ready in time.
    fn finished(&self) -> bool {
        self.samples.iter().any(|s| matches!(s, Sample::Done(_)))
    }

    /// `pick` of every run, `NaN` for those whose wait ran out.
    fn each(&self, pick: impl Fn(&Finished) -> f64) -> Vec<f64> {
        self.samples.iter().map(|s| s.get(&pick)).collect()
    }

    /// Operator CPU milliseconds per relationship, per run.
    fn cpu(&self) -> Vec<f64> {
        let n = self.objects as f64;
        self.each(|f| f.cpu_seconds * 1000.0 / n)
    }

    /// Relationships Ready per second, per run.
    fn rates(&self) -> Vec<f64> {
        let n = self.objects as f64;
        self.each(|f| n / f.seconds)
    }
}

/// The report of the measured `sizes` (in increasing order, as [`check_sizes`] wants them).
pub fn report(sizes: &[Size]) -> Report {
    let mut out = Report::default();
    let Some(base) = sizes.first() else {
        return out;
    };
    let base = base.finished().then_some(base);
    let largest = sizes.len() - 1;
    let mut cpu = Vec::new();
    let mut rates = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        incidents(size, &mut out.incidents);
        if !size.finished() {
            out.unavailable.push(not_measured(size));
            continue;
        }
        let base = base.filter(|_| i > 0);
        cpu.push(cpu_figure(size, base, i == largest && i > 0));
        rates.push(rate_figure(size, base));
        medians(size, &mut out.details);
    }
    out.figures = cpu.into_iter().chain(rates).collect();
    out.details.insert("how".into(), json!(how()));
    out
}

/// "CPU per relationship at N", against the base size when given, with the target when `bounded`.
fn cpu_figure(size: &Size, base: Option<&Size>, bounded: bool) -> Figure {
    let n = whole(size.objects);
    let figure = Figure::new(
        &format!("scale.cpuPerObject.{}", size.objects),
        BENCHMARK,
        &format!("operator CPU per relationship at {n} relationships"),
        "CPU ms",
        size.cpu(),
    );
    let Some(base) = base else {
        return figure;
    };
    let b = whole(base.objects);
    let figure = figure.against(
        &format!("CPU per relationship at {b}"),
        base.cpu(),
        Divide::FigureByReference,
        &format!("at {n} ÷ at {b}"),
    );
    if !bounded {
        return figure;
    }
    figure.target(
        &format!("within {GROWTH_TARGET}× of {b}"),
        Bounded::Ratio,
        Bound::AtMost(GROWTH_TARGET),
    )
}

/// "Relationships to Ready per second at N", against the base size when given.
fn rate_figure(size: &Size, base: Option<&Size>) -> Figure {
    let n = whole(size.objects);
    let figure = Figure::new(
        &format!("scale.rate.{}", size.objects),
        BENCHMARK,
        &format!("relationships to Ready per second at {n} relationships"),
        "objects/s",
        size.rates(),
    );
    match base {
        Some(base) => {
            let b = whole(base.objects);
            figure.against(
                &format!("the rate at {b}"),
                base.rates(),
                Divide::FigureByReference,
                &format!("at {n} ÷ at {b}"),
            )
        }
        None => figure,
    }
}

/// One number of a finished run.
type Pick = fn(&Finished) -> f64;

/// The medians of one size's finished runs: wall time, CPU, peak RSS, Microsoft calls and
/// reconciles per relationship.
fn medians(size: &Size, details: &mut serde_json::Map<String, serde_json::Value>) {
    let n = whole(size.objects);
    let rows: [(&str, Pick); 5] = [
        ("wall time, median (s)", |f| f.seconds),
        ("operator CPU, median (CPU s)", |f| f.cpu_seconds),
        ("operator peak RSS, median (MiB)", |f| f.peak_rss_mib),
        ("Microsoft calls per relationship, median", |f| {
            f.calls_per_object
        }),
        ("reconciles per relationship, median", |f| {
            f.reconciles_per_object
        }),
    ];
    for (what, pick) in rows {
        details.insert(
            format!("{n} relationships: {what}"),
            json!(median(&size.each(pick))),
        );
    }
}

/// Each run of `size` whose wait ran out, as an incident.
fn incidents(size: &Size, incidents: &mut serde_json::Map<String, serde_json::Value>) {
    let n = whole(size.objects);
    for (run, sample) in size.samples.iter().enumerate() {
        if let Sample::TimedOut { ready, seconds } = sample {
            incidents.insert(
                format!("{BENCHMARK}, {n} relationships, run {}", run + 1),
                json!(format!(
                    "only {} of {n} Ready when the wait ran out after {} s; not counted",
                    whole(*ready),
                    whole(seconds.round() as usize)
                )),
            );
        }
    }
}

/// A size no run finished.
fn not_measured(size: &Size) -> Unavailable {
    let n = whole(size.objects);
    Unavailable {
        id: format!("scale.{}", size.objects),
        what: format!("{BENCHMARK}: {n} relationships"),
        reason: format!(
            "not measured: in no run were all {n} Ready within {} s (see Incidents)",
            whole(wait_for(size.objects).as_secs() as usize)
        ),
    }
}

/// A count for people: thousands separated, no decimals.
fn whole(n: usize) -> String {
    if n < 100 {
        n.to_string()
    } else {
        number(n as f64)
    }
}

/// How the measurement runs, for the details.
fn how() -> String {
    format!(
        "the operator alone (no floor); each size on a fresh operator, release sandbox (approval and activation at once, reads without lag (--immediate), throttling off) and namespace; the relationships applied by ten concurrent `kubectl apply` of a tenth each, as in Reconcile throughput; CPU is the operator's user + system time (/proc) from the first apply to all Ready, with --resync-interval 2h so that no Ready relationship is resynced within a run; sizes in increasing order in odd runs, decreasing in even ones; the wait for all Ready is {} s per relationship (at least {} s), and a size whose wait runs out is an incident, not a figure",
        WAIT_PER_OBJECT.as_secs_f64(),
        SHORTEST_WAIT.as_secs()
    )
}
