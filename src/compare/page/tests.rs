//! `compare.html` from synthetic comparisons: well-formed (parsed
//! strictly as XML, as `report.html` is), the chosen variant marked and
//! explained, costs said in words, each run linked to its report, one
//! timeline per run on a shared axis, and every string escaped.

use super::*;
use crate::compare::build_table;
use crate::compare::sparkline::{Bar, StepMark};
use crate::matrix::{self, Comparison, cross, parse_vary};
use crate::report::html::strict::parse_strict;
use std::collections::BTreeMap;

const EVIL: &str = "<script>alert(1)</script>";
const EVIL_ATTR: &str = "x\" onmouseover=\"alert(2)";

fn measured(sent: u64, failed: u64) -> Measured {
    Measured {
        verdict: if failed == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        interrupted: false,
        sent,
        failed,
        causes: if failed > 0 {
            BTreeMap::from([("endpoint_lag_on_termination".to_string(), failed)])
        } else {
            BTreeMap::new()
        },
        longest_disruption_ms: None,
        latency_p50_ms: 0.6,
        latency_p99_ms: 3.1,
        rollout_completed: true,
    }
}

fn activity(failed_at: Option<u64>) -> Activity {
    Activity {
        bars: (0..50)
            .map(|i| Bar {
                start_ms: 4600 + i * 100,
                ok: 20 - u64::from(failed_at == Some(i)) * 5,
                failed: u64::from(failed_at == Some(i)) * 5,
                host: 0,
            })
            .collect(),
        steps: vec![StepMark {
            at_ms: 6641.0,
            label: "1. set_image nginx=nginx:1.28.0".into(),
            done: true,
        }],
    }
}

fn linked(label: &str, activity: Activity) -> RunFiles {
    RunFiles {
        report: Link::Href(format!("{label}/report.html")),
        activity: Ok(activity),
    }
}

/// A matrix of `rollout.preStop=0s,3s`: 0s failed 201 of 1,820, 3s
/// failed none; each with a report and a timeline.
struct Matrix {
    runs: Vec<RunColumn>,
    files: Vec<RunFiles>,
    cmp: Comparison,
}

impl Matrix {
    fn new(failed: [u64; 2]) -> Matrix {
        let varies = [parse_vary("rollout.preStop=0s,3s").unwrap()];
        let variants = cross(&varies);
        let runs: Vec<RunColumn> = variants
            .iter()
            .zip(failed)
            .map(|(v, failed)| RunColumn {
                label: v.slug(),
                variant: v.settings.clone(),
                measured: Some(measured(1820, failed)),
                ..RunColumn::default()
            })
            .collect();
        let files = runs
            .iter()
            .zip(failed)
            .map(|(r, f)| linked(&r.label, activity((f > 0).then_some(10))))
            .collect();
        let cmp = matrix::comparison(&runs, &varies, &variants);
        Matrix { runs, files, cmp }
    }

    fn html(&self) -> String {
        render(&Page {
            title: "baton matrix: nginx-rolling-update",
            runs: &self.runs,
            files: &self.files,
            table: &self.cmp.table,
            matrix: Some(&self.cmp.choice),
        })
        .unwrap()
    }
}

/// Runs compared as they are (no matrix).
fn plain(runs: &[RunColumn], files: &[RunFiles]) -> String {
    render(&Page {
        title: "baton compare",
        runs,
        files,
        table: &build_table(runs),
        matrix: None,
    })
    .unwrap()
}

#[test]
fn the_page_is_well_formed_with_the_shared_style_and_one_root() {
    let html = Matrix::new([201, 0]).html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let p = parse_strict(&html);
    assert_eq!(p.roots, 1);
    assert_eq!(p.tags[0].0, "html");
    // report.html's stylesheet, inlined.
    assert!(html.contains(".verdict.pass { background: #1a7f37; }"));
    // Its two scripts: the fetch counter and the error counter.
    assert_eq!(p.named("script").len(), 2);
    // It declares it fetches nothing, as report.html does.
    let csp = p
        .named("meta")
        .into_iter()
        .find(|a| a.get("http-equiv").map(String::as_str) == Some("Content-Security-Policy"))
        .expect("a Content-Security-Policy");
    assert!(csp["content"].starts_with("default-src 'none';"), "{csp:?}");
}

#[test]
fn the_cheapest_zero_failure_variant_is_marked_chosen_and_the_page_says_why() {
    let m = Matrix::new([201, 0]);
    let p = parse_strict(&m.html());
    let chosen: Vec<&str> = p
        .with_class("chosen")
        .iter()
        .filter_map(|a| a.get("data-run").map(String::as_str))
        .collect();
    // Its timeline row and its column heading; nothing else.
    assert_eq!(chosen, ["preStop-3s", "preStop-3s"]);
    assert_eq!(p.with_class("chosen-badge").len(), 2);
    let text = p.text();
    assert!(text.contains("CHOSEN"), "{text}");
    assert!(
        text.contains(
            "preStop-3s (rollout.preStop=3s) is chosen: no request failed (0 of 1,820), its rollout completed and the run was valid, and it is the only variant that did all three, so the cheapest that did (cost 1.00, see below for what that means)."
        ),
        "{text}"
    );
    assert!(
        text.contains("not chosen: 201 of 1820 requests failed"),
        "{text}"
    );
}

#[test]
fn with_no_zero_failure_variant_nothing_is_chosen_and_each_says_why() {
    let m = Matrix::new([201, 7]);
    let p = parse_strict(&m.html());
    assert!(p.with_class("chosen").is_empty());
    assert!(p.with_class("chosen-badge").is_empty());
    let text = p.text();
    assert!(text.contains("NONE"));
    assert!(
        text.contains("None of the 2 variants had zero failures"),
        "{text}"
    );
    assert!(
        text.contains("not chosen: 7 of 1820 requests failed"),
        "{text}"
    );
}

#[test]
fn a_zero_failure_variant_that_costs_more_says_so() {
    let m = Matrix::new([0, 0]);
    let text = parse_strict(&m.html()).text();
    assert!(
        text.contains("preStop-0s (rollout.preStop=0s) is chosen"),
        "{text}"
    );
    assert!(
        text.contains("not chosen: zero failures, but it costs more (1.00, preStop-0s costs 0.00)"),
        "{text}"
    );
}

#[test]
fn among_several_zero_failure_variants_the_sentence_says_it_costs_least_and_names_ties() {
    let varies = [parse_vary("a=x,y").unwrap(), parse_vary("b=p,q").unwrap()];
    let variants = cross(&varies);
    let runs: Vec<RunColumn> = variants
        .iter()
        .zip([5, 0, 0, 0])
        .map(|(v, failed)| RunColumn {
            label: v.slug(),
            variant: v.settings.clone(),
            measured: Some(measured(100, failed)),
            ..RunColumn::default()
        })
        .collect();
    let files: Vec<RunFiles> = runs
        .iter()
        .map(|r| linked(&r.label, activity(None)))
        .collect();
    let cmp = matrix::comparison(&runs, &varies, &variants);
    let html = render(&Page {
        title: "m",
        runs: &runs,
        files: &files,
        table: &cmp.table,
        matrix: Some(&cmp.choice),
    })
    .unwrap();
    let text = parse_strict(&html).text();
    assert!(
        text.contains("of the 3 variants that did all three it has the lowest cost (cost 1.00"),
        "{text}"
    );
    assert!(
        text.contains("; a-y_b-p costs the same, and equal costs go to the values listed first."),
        "{text}"
    );
    assert!(
        text.contains(
            "not chosen: zero failures at the same cost as a-x_b-q, whose values are listed first"
        ),
        "{text}"
    );
    // Values that are not numbers are costed by their place in the list.
    assert!(
        text.contains("a x: listed 1st of 2 (not numbers: costed by order)"),
        "{text}"
    );
    assert!(
        text.contains("costs by its place in the list given"),
        "{text}"
    );
}

#[test]
fn the_cost_is_said_in_words_not_as_a_bare_number() {
    let html = Matrix::new([201, 0]).html();
    let text = parse_strict(&html).text();
    for want in [
        "rollout.preStop 0s: 0% of the largest value tried (3s)",
        "rollout.preStop 3s: the largest value tried",
        "Cost is not money or time",
        "a variant's value costs its share of the largest value tried for it",
        "so it runs from 0 to 1",
        "0s → 0.00, 3s → 1.00",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    assert!(html.contains("href=\"#cost\"") && html.contains("id=\"cost\""));
}

#[test]
fn each_run_links_to_its_own_report_or_says_why_not() {
    let m = Matrix::new([201, 0]);
    let p = parse_strict(&m.html());
    let hrefs: Vec<&str> = p
        .with_class("report")
        .iter()
        .map(|a| a["href"].as_str())
        .collect();
    assert_eq!(
        hrefs,
        [
            "preStop-0s/report.html",
            "preStop-3s/report.html",
            "preStop-0s/report.html",
            "preStop-3s/report.html",
        ]
    );

    let mut files = m.files.clone();
    files[1].report = Link::Missing("there is no /runs/b/report.html".into());
    let html = plain(&m.runs, &files);
    let p = parse_strict(&html);
    // The other run's two links (its timeline, its column) remain.
    assert_eq!(p.with_class("report").len(), 2);
    assert!(
        p.text()
            .contains("no link to its report: there is no /runs/b/report.html")
    );
}

#[test]
fn every_run_has_a_timeline_on_one_shared_axis() {
    let m = Matrix::new([201, 0]);
    let html = m.html();
    let p = parse_strict(&html);
    let sparks: Vec<_> = p
        .named("svg")
        .into_iter()
        .filter(|a| a.get("class").map(String::as_str) == Some("spark"))
        .collect();
    assert_eq!(sparks.len(), 2);
    // One viewBox for all: the same seconds across, the same scale up.
    assert!(sparks.iter().all(|a| a["viewBox"] == "0 0 1000 40"));
    // Red only where requests failed: one failed path, in the first run.
    assert_eq!(
        p.with_class("failed")
            .iter()
            .filter(|a| a.contains_key("d"))
            .count(),
        1
    );
    // A step line per run, and the axis in seconds.
    assert_eq!(p.with_class("step").len(), 2);
    let text = p.text();
    assert!(text.contains("0 s") && text.contains("9 s"), "{text}");
    assert!(text.contains("201 of 1,820 failed"), "{text}");
    assert!(text.contains("none of 1,820 failed"), "{text}");

    let mut files = m.files.clone();
    files[0].activity = Err("requests.csv: cannot read it".into());
    let p = parse_strict(&plain(&m.runs, &files));
    assert_eq!(
        p.named("svg")
            .iter()
            .filter(|a| a.get("class").map(String::as_str) == Some("spark"))
            .count(),
        1
    );
    assert!(
        p.text()
            .contains("no timeline: requests.csv: cannot read it")
    );
}

#[test]
fn a_plain_comparison_chooses_nothing_and_explains_no_cost() {
    let m = Matrix::new([0, 0]);
    let html = plain(&m.runs, &m.files);
    let p = parse_strict(&html);
    assert!(p.with_class("chosen").is_empty());
    let text = p.text();
    assert!(text.contains("2 runs side by side"));
    assert!(!text.contains("Cost is not"));
    assert!(!text.contains("not chosen"));
}

#[test]
fn hostile_labels_settings_notes_and_reasons_stay_text() {
    for evil in [EVIL, EVIL_ATTR] {
        let mut runs = vec![
            RunColumn {
                label: evil.to_string(),
                variant: vec![(evil.to_string(), evil.to_string())],
                measured: Some(measured(100, 1)),
                ..RunColumn::default()
            },
            RunColumn {
                label: "b".into(),
                note: Some(evil.to_string()),
                ..RunColumn::default()
            },
        ];
        runs[0].measured.as_mut().unwrap().causes = BTreeMap::from([(evil.to_string(), 1)]);
        let mut act = activity(Some(3));
        act.steps[0].label = evil.to_string();
        let files = vec![
            RunFiles {
                report: Link::Missing(evil.to_string()),
                activity: Ok(act),
            },
            RunFiles {
                report: Link::Href(format!("{evil}/report.html")),
                activity: Err(evil.to_string()),
            },
        ];
        let mut table = build_table(&runs);
        table.notes.push(evil.to_string());
        let html = render(&Page {
            title: evil,
            runs: &runs,
            files: &files,
            table: &table,
            matrix: None,
        })
        .unwrap();
        let p = parse_strict(&html);
        // Our own two script elements only, and no attribute but ours.
        assert_eq!(p.named("script").len(), 2, "{evil}");
        assert!(
            p.tags.iter().all(|(_, a)| !a.contains_key("onmouseover")),
            "{evil}"
        );
        assert_eq!(html.matches("<script>").count(), 2, "{evil}");
        // And every one of them is there, as text.
        let texts = &p.texts;
        let count = texts.iter().filter(|t| t.contains(evil)).count();
        assert!(count >= 8, "{evil} shown {count} times");
    }
}

#[test]
fn the_page_is_deterministic() {
    let m = Matrix::new([201, 0]);
    assert_eq!(m.html(), m.html());
}

#[test]
fn ordinals_and_thousands_read_as_words_do() {
    let o: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 111].map(ordinal).into();
    assert_eq!(
        o,
        [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "111th"
        ]
    );
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1820), "1,820");
    assert_eq!(thousands(1_234_567), "1,234,567");
}
