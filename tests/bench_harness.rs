//! The benchmark harness's own logic (benches/gdap): medians, ratios measured in the same run,
//! targets, the notes that explain a miss, the report files' layout, and the before-and-after
//! comparison with a baseline. Pure and fast; the benchmarks themselves run only under
//! `make bench`.

#[path = "../benches/gdap/report.rs"]
#[allow(dead_code)]
mod report;

#[path = "../benches/gdap/scale_figures.rs"]
#[allow(dead_code)]
mod scale_figures;

use report::{Baseline, Bound, Bounded, Divide, Figure, Machine, Results, Unavailable};
use scale_figures::{Finished, Sample, Size};
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn the_median_is_the_middle_sample_or_the_mean_of_the_two_middle_ones() {
    assert_eq!(report::median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(report::median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(
        report::median(&[f64::NAN, 5.0]),
        5.0,
        "a failed sample is left out"
    );
    assert!(report::median(&[]).is_nan());
}

#[test]
fn the_ratio_is_the_median_of_the_per_run_ratios_not_the_ratio_of_the_medians() {
    // Run 2 was slow for both sides (a noisy neighbour): its ratio is still 2.
    let f = Figure::new("x", "B", "op time", "s", vec![10.0, 40.0, 12.0]).against(
        "floor",
        vec![5.0, 20.0, 4.0],
        Divide::FigureByReference,
        "op ÷ floor",
    );
    let ratio = f.ratio.as_ref().unwrap();
    assert_eq!(ratio.samples, vec![2.0, 2.0, 3.0]);
    assert_eq!(ratio.value, 2.0);
    assert_eq!(f.value, 12.0);
    assert_eq!(f.reference.as_ref().unwrap().value, 5.0);
    assert_ne!(ratio.value, f.value / 5.0, "not the ratio of the medians");
}

#[test]
fn times_faster_divides_the_reference_by_the_figure() {
    let f = Figure::new("x", "B", "import", "users/s", vec![30_000.0]).against(
        "sdk",
        vec![200.0],
        Divide::ReferenceByFigure,
        "sdk ÷ import",
    );
    assert_eq!(f.ratio.unwrap().value, 200.0 / 30_000.0);
    let g = Figure::new("x", "B", "import", "users/s", vec![30_000.0]).against(
        "sdk",
        vec![200.0],
        Divide::FigureByReference,
        "times faster",
    );
    assert_eq!(g.ratio.unwrap().value, 150.0);
}

#[test]
fn a_reference_run_fewer_times_is_compared_by_its_median() {
    let f = Figure::new("x", "B", "import", "users/s", vec![100.0, 300.0, 200.0]).against(
        "sdk",
        vec![2.0],
        Divide::FigureByReference,
        "times faster",
    );
    let ratio = f.ratio.unwrap();
    assert!(ratio.samples.is_empty());
    assert_eq!(ratio.value, 100.0);
}

#[test]
fn targets_bound_the_value_or_the_ratio_and_a_missing_number_never_meets_one() {
    let base = || {
        Figure::new("x", "B", "time", "s", vec![30.0]).against(
            "floor",
            vec![10.0],
            Divide::FigureByReference,
            "÷",
        )
    };
    assert!(
        !base()
            .target("2× floor", Bounded::Ratio, Bound::AtMost(2.0))
            .target
            .unwrap()
            .met
    );
    assert!(
        base()
            .target("3× floor", Bounded::Ratio, Bound::AtMost(3.0))
            .target
            .unwrap()
            .met
    );
    assert!(
        base()
            .target("≥ 20", Bounded::Value, Bound::AtLeast(20.0))
            .target
            .unwrap()
            .met
    );
    assert!(
        base()
            .target("≤ 20", Bounded::Value, Bound::AtMost(20.0))
            .missed()
    );
    let no_reference = Figure::new("x", "B", "time", "s", vec![1.0]);
    assert!(
        no_reference
            .clone()
            .target("r", Bounded::Ratio, Bound::AtMost(9.0))
            .missed()
    );
    assert!(!no_reference.missed(), "no target, nothing missed");
    let failed = Figure::new("x", "B", "time", "s", vec![]);
    assert!(
        failed
            .target("v", Bounded::Value, Bound::AtLeast(0.0))
            .missed()
    );
}

#[test]
fn notes_are_split_by_figure_id() {
    let notes = report::parse_notes(
        "# Notes\nintro ignored\n## reconcile.rate\nThe API server.\n\nSecond paragraph.\n## history\nBefore: 72 MiB.\n",
    );
    assert_eq!(
        notes["reconcile.rate"],
        "The API server.\n\nSecond paragraph."
    );
    assert_eq!(notes["history"], "Before: 72 MiB.");
    assert_eq!(notes.len(), 2);
}

#[test]
fn numbers_read_well() {
    assert_eq!(report::number(123_456.7), "123,457");
    assert_eq!(report::number(1_000.0), "1,000");
    assert_eq!(report::number(-2_500.0), "-2,500");
    assert_eq!(report::number(42.26), "42.3");
    assert_eq!(report::number(1.5), "1.50");
    assert_eq!(report::number(0.0421), "0.042");
    assert_eq!(report::number(f64::NAN), "—");
}

fn results() -> Results {
    let met = Figure::new(
        "reconcile.seconds",
        "Reconcile throughput",
        "1,000 objects to Ready",
        "s",
        vec![20.0, 22.0, 21.0],
    )
    .against(
        "the floor",
        vec![12.0, 11.0, 14.0],
        Divide::FigureByReference,
        "operator ÷ floor",
    )
    .target("within 2× of the floor", Bounded::Ratio, Bound::AtMost(2.0));
    let missed = Figure::new(
        "reconcile.rate",
        "Reconcile throughput",
        "objects per second",
        "objects/s",
        vec![40.0],
    )
    .target("at least 50/s", Bounded::Value, Bound::AtLeast(50.0));
    let unexplained = Figure::new("footprint.rss", "Footprint", "RSS", "MiB", vec![70.0]).target(
        "under 64 MiB",
        Bounded::Value,
        Bound::AtMost(64.0),
    );
    let mut details = BTreeMap::new();
    details.insert(
        "Reconcile throughput".to_string(),
        serde_json::json!({"Graph calls per object": 10.0}),
    );
    Results {
        schema: report::SCHEMA,
        generated_at: "2026-01-01T00:00:00Z".into(),
        commit: "abc1234".into(),
        runs: 3,
        duration_seconds: 1800.0,
        machine: Machine {
            cpu_model: "Example CPU".into(),
            cores: 2,
            memory_mib: 24_105,
            kernel: "Linux 6.1.0".into(),
            load_average_start: [3.5, 4.0, 4.5],
            load_average_end: [2.0, 3.0, 4.0],
            note: Some("three other cargo builds".into()),
        },
        figures: vec![met, missed, unexplained],
        unavailable: vec![Unavailable {
            id: "import.file.100k.vsSdk".into(),
            what: "100,000 users into files against the Graph SDK".into(),
            reason: "not measured: no Python with the Graph SDK".into(),
        }],
        details,
        baseline: None,
    }
}

#[test]
fn the_report_shows_the_machine_every_figure_and_explains_every_miss() {
    let mut notes = BTreeMap::new();
    notes.insert(
        "reconcile.rate".to_string(),
        "kubectl and the API server share two cores.".to_string(),
    );
    notes.insert(
        "history".to_string(),
        "72 MiB before, 40 MiB after.".to_string(),
    );
    let md = report::render_markdown(&results(), &notes);
    for expected in [
        "| CPU | Example CPU |",
        "| cores | 2 |",
        "| memory | 24,105 MiB |",
        "| kernel | Linux 6.1.0 |",
        "| also running | three other cargo builds |",
        "## Reconcile throughput",
        "| 1,000 objects to Ready | 21.0 s | the floor: 12.0 s | 1.67× (operator ÷ floor) | within 2× of the floor | met |",
        "| objects per second | 40.0 objects/s | — | — | at least 50/s | **missed** |",
        "### objects per second (target: at least 50/s)\n\nkubectl and the API server share two cores.",
        "No explanation is recorded for `footprint.rss` in bench/notes.md yet.",
        "- **100,000 users into files against the Graph SDK**: not measured: no Python with the Graph SDK",
        "- Graph calls per object: 10.0",
        "## History\n\n72 MiB before, 40 MiB after.",
        "## `bench/results.json`",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
    }
    assert!(
        !md.contains("### 1,000 objects to Ready"),
        "a met target is not listed as missed"
    );
}

#[test]
fn results_json_uses_the_documented_field_names_and_round_trips() {
    let r = results();
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "schema",
        "generatedAt",
        "commit",
        "runs",
        "durationSeconds",
        "machine",
        "figures",
        "unavailable",
        "details",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    assert_eq!(json["machine"]["loadAverageStart"][0], 3.5);
    assert_eq!(json["figures"][0]["target"]["bounds"], "ratio");
    assert_eq!(json["figures"][0]["target"]["bound"]["atMost"], 2.0);
    assert_eq!(json["figures"][0]["ratio"]["samples"][1], 2.0);
    let back: Results = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_baseline_shows_each_of_its_figures_before_and_after() {
    let mut then = results();
    then.commit = "0ld0000".into();
    then.generated_at = "2025-12-01T00:00:00Z".into();
    then.figures[2].value = 72.0;
    let baseline = Baseline::of(&then, "footprint.");
    assert_eq!(
        baseline.figures.len(),
        1,
        "only the footprint figures: {baseline:?}"
    );
    assert_eq!(
        (baseline.figures[0].id.as_str(), baseline.figures[0].value),
        ("footprint.rss", 72.0)
    );
    let mut now = results();
    now.figures[2].value = 36.0;
    now.baseline = Some(baseline.clone());
    let md = report::render_markdown(&now, &BTreeMap::new());
    for expected in [
        "## Before and after",
        "Before: commit `0ld0000`",
        "| RSS | 72.0 MiB | 36.0 MiB | 0.500× |",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
    }
    let json = serde_json::to_value(&now).unwrap();
    assert_eq!(json["baseline"]["commit"], "0ld0000");
    let mut gone = now.clone();
    gone.figures.truncate(2);
    let md = report::render_markdown(&gone, &BTreeMap::new());
    assert!(md.contains("| RSS | 72.0 MiB | not measured | — |"), "{md}");
    assert!(!report::render_markdown(&results(), &BTreeMap::new()).contains("Before and after"));
    let mut itself = results();
    itself.baseline = Some(Baseline::of(&itself, "footprint."));
    let md = report::render_markdown(&itself, &BTreeMap::new());
    assert!(
        !md.contains("Before and after"),
        "a run is not compared with itself"
    );
    // A merge keeps the first run's time; the footprint measured again is still compared.
    let mut merged = itself.clone();
    merged.figures[2].value = 9.0;
    let md = report::render_markdown(&merged, &BTreeMap::new());
    assert!(md.contains("## Before and after"), "{md}");
}

#[test]
fn a_ratio_written_as_null_reads_back_as_nan() {
    let mut r = results();
    r.figures[0].ratio.as_mut().unwrap().samples = vec![f64::NAN, 1.0];
    r.figures[0].ratio.as_mut().unwrap().value = f64::NAN;
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("null"), "{json}");
    let back: Results = serde_json::from_str(&json).unwrap();
    let ratio = back.figures[0].ratio.as_ref().unwrap();
    assert!(ratio.value.is_nan() && ratio.samples[0].is_nan() && ratio.samples[1] == 1.0);
}

#[test]
fn a_merge_replaces_the_benchmarks_measured_again_in_place_and_says_when() {
    let base = results();
    let mut again = results();
    again.generated_at = "2026-01-02T00:00:00Z".into();
    again.commit = "def5678".into();
    again.figures = vec![
        Figure::new(
            "reconcile.rate",
            "Reconcile throughput",
            "objects per second",
            "objects/s",
            vec![60.0],
        )
        .target("at least 50/s", Bounded::Value, Bound::AtLeast(50.0)),
    ];
    again.details = BTreeMap::new();
    again.unavailable = Vec::new();
    let merged = report::merge(base, again);
    let ids: Vec<&str> = merged.figures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["reconcile.rate", "footprint.rss"],
        "in place, the old ones gone"
    );
    assert_eq!(merged.figures[0].value, 60.0);
    assert!(
        !merged.details.contains_key("Reconcile throughput"),
        "its old details go"
    );
    assert_eq!(
        merged.unavailable.len(),
        1,
        "another benchmark's entry stays"
    );
    assert_eq!(merged.commit, "abc1234", "the rest keeps its commit");
    let note = merged.details["Merged"]["Reconcile throughput"]
        .as_str()
        .unwrap();
    assert!(
        note.contains("2026-01-02T00:00:00Z on commit def5678"),
        "{note}"
    );
    let md = report::render_markdown(&merged, &BTreeMap::new());
    let header = md.lines().find(|l| l.starts_with("Measured by")).unwrap();
    assert!(
        header.contains("on commit `abc1234`")
            && header.contains(
                "Measured again since: Reconcile throughput: measured again at 2026-01-02T00:00:00Z on commit def5678"
            ),
        "the header names what its commit does not describe: {header}"
    );
    // A later merge of another benchmark keeps this one on record.
    let mut later = results();
    later.generated_at = "2026-01-03T00:00:00Z".into();
    later.commit = "0f0f0f0".into();
    later.figures = vec![Figure::new(
        "footprint.rss",
        "Footprint",
        "RSS",
        "MiB",
        vec![50.0],
    )];
    later.details = BTreeMap::new();
    later.unavailable = Vec::new();
    let twice = report::merge(merged, later);
    let notes = twice.details["Merged"].as_object().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes["Reconcile throughput"]
            .as_str()
            .unwrap()
            .contains("def5678")
    );
    assert!(notes["Footprint"].as_str().unwrap().contains("0f0f0f0"));
    // A record of two sections, one measured again: the other stays on record.
    let mut both = twice.clone();
    let record = both
        .details
        .get_mut("Merged")
        .unwrap()
        .as_object_mut()
        .unwrap();
    let footprint = record.remove("Footprint").unwrap();
    record.insert("Footprint, Schedules at scale".into(), footprint);
    let mut again = results();
    again.generated_at = "2026-01-04T00:00:00Z".into();
    again.figures = vec![Figure::new(
        "footprint.rss",
        "Footprint",
        "RSS",
        "MiB",
        vec![40.0],
    )];
    again.details = BTreeMap::new();
    again.unavailable = Vec::new();
    let thrice = report::merge(both, again);
    let notes = thrice.details["Merged"].as_object().unwrap();
    assert!(
        notes["Schedules at scale"]
            .as_str()
            .unwrap()
            .contains("0f0f0f0"),
        "{notes:?}"
    );
    assert!(notes["Footprint"].as_str().unwrap().contains("2026-01-04"));
}

/// A run of `objects` relationships whose operator spent `cpu_seconds` over `seconds`.
fn done(seconds: f64, cpu_seconds: f64) -> Sample {
    Sample::Done(Finished {
        seconds,
        cpu_seconds,
        peak_rss_mib: 40.0,
        calls_per_object: 6.0,
        reconciles_per_object: 4.0,
    })
}

fn ids(figures: &[Figure]) -> Vec<&str> {
    figures.iter().map(|f| f.id.as_str()).collect()
}

#[test]
fn scale_reports_cpu_per_relationship_and_rate_per_size_and_bounds_the_largest_growth() {
    let sizes = [
        Size {
            objects: 1_000,
            samples: vec![done(50.0, 10.0), done(100.0, 20.0)],
        },
        Size {
            objects: 3_000,
            samples: vec![done(150.0, 33.0), done(300.0, 60.0)],
        },
        Size {
            objects: 10_000,
            samples: vec![done(500.0, 130.0), done(1_000.0, 200.0)],
        },
    ];
    let r = scale_figures::report(&sizes);
    assert_eq!(
        ids(&r.figures),
        [
            "scale.cpuPerObject.1000",
            "scale.cpuPerObject.3000",
            "scale.cpuPerObject.10000",
            "scale.rate.1000",
            "scale.rate.3000",
            "scale.rate.10000",
        ]
    );
    let cpu = |i: usize| &r.figures[i];
    assert_eq!(cpu(0).samples, vec![10.0, 20.0], "CPU ms per relationship");
    assert!(cpu(0).ratio.is_none() && cpu(0).target.is_none());
    let growth = cpu(2).ratio.as_ref().unwrap();
    assert_eq!(growth.definition, "at 10,000 ÷ at 1,000");
    assert_eq!(growth.samples, vec![1.3, 1.0], "paired by run");
    assert!((growth.value - 1.15).abs() < 1e-9);
    let target = cpu(2).target.as_ref().unwrap();
    assert_eq!(target.bound, Bound::AtMost(1.2));
    assert!(target.met);
    assert!(
        cpu(1).ratio.is_some() && cpu(1).target.is_none(),
        "3,000 ÷ 1,000, no target"
    );
    assert_eq!(r.figures[5].samples, vec![20.0, 10.0], "objects per second");
    assert!(r.incidents.is_empty() && r.unavailable.is_empty());
    assert!(
        r.details
            .contains_key("10,000 relationships: operator CPU, median (CPU s)")
    );
}

#[test]
fn scale_growth_beyond_the_target_is_missed() {
    let sizes = [
        Size {
            objects: 100,
            samples: vec![done(10.0, 1.0)],
        },
        Size {
            objects: 300,
            samples: vec![done(30.0, 4.5)],
        },
    ];
    let r = scale_figures::report(&sizes);
    let largest = &r.figures[1];
    assert_eq!(largest.id, "scale.cpuPerObject.300");
    assert_eq!(largest.ratio.as_ref().unwrap().value, 1.5);
    assert!(largest.missed());
}

#[test]
fn a_scale_run_whose_wait_ran_out_is_an_incident_not_a_number() {
    let sizes = [
        Size {
            objects: 1_000,
            samples: vec![done(50.0, 10.0), done(50.0, 12.0)],
        },
        Size {
            objects: 10_000,
            samples: vec![
                done(500.0, 110.0),
                Sample::TimedOut {
                    ready: 7_512,
                    seconds: 6_000.0,
                },
            ],
        },
    ];
    let r = scale_figures::report(&sizes);
    let largest = &r.figures[1];
    assert_eq!(largest.value, 11.0, "the run that finished");
    assert_eq!(largest.ratio.as_ref().unwrap().value, 1.1);
    assert!(largest.samples[1].is_nan());
    assert_eq!(
        r.incidents["Reconcile at scale, 10,000 relationships, run 2"],
        "only 7,512 of 10,000 Ready when the wait ran out after 6,000 s; not counted"
    );
    assert!(r.unavailable.is_empty());
}

#[test]
fn a_scale_size_no_run_finished_has_no_figures_but_is_reported_not_measured() {
    let timed_out = Sample::TimedOut {
        ready: 10,
        seconds: 60.0,
    };
    let sizes = [
        Size {
            objects: 100,
            samples: vec![done(10.0, 1.0)],
        },
        Size {
            objects: 300,
            samples: vec![timed_out, timed_out],
        },
    ];
    let r = scale_figures::report(&sizes);
    assert_eq!(
        ids(&r.figures),
        ["scale.cpuPerObject.100", "scale.rate.100"]
    );
    assert_eq!(r.unavailable.len(), 1);
    assert_eq!(r.unavailable[0].id, "scale.300");
    assert!(
        r.unavailable[0].reason.contains("180 s"),
        "{:?}",
        r.unavailable[0]
    );
    assert_eq!(r.incidents.len(), 2);
    assert_eq!(
        r.incidents["Reconcile at scale, 300 relationships, run 1"],
        "only 10 of 300 Ready when the wait ran out after 60 s; not counted",
        "counts without decimals"
    );
}

#[test]
fn the_scale_wait_grows_with_the_size_and_sizes_must_increase() {
    assert_eq!(scale_figures::wait_for(1_000), Duration::from_secs(600));
    assert_eq!(scale_figures::wait_for(10_000), Duration::from_secs(6_000));
    assert_eq!(scale_figures::wait_for(10), Duration::from_secs(60));
    assert!(scale_figures::check_sizes(&[100, 300]).is_ok());
    for bad in [&[][..], &[0, 10], &[3_000, 1_000], &[100, 100]] {
        assert!(scale_figures::check_sizes(bad).is_err(), "{bad:?}");
    }
    assert_eq!(scale_figures::order(3, 0), [0, 1, 2]);
    assert_eq!(scale_figures::order(3, 1), [2, 1, 0]);
}
