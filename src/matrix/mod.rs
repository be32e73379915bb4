//! `baton matrix`'s pure parts: parsing `--vary path=v1,v2,...`, the
//! cross product of several, what each variant changes (a patch of the
//! Deployment run before the measured rollout, or a `--set` on the
//! profile), each variant's cost ([`cost`]), and the rule that names the
//! cheapest variant with zero failures.
//!
//! Also the matrix's own rows of the comparison ([`comparison`]): the
//! cost of each variant and the line naming the cheapest, with the
//! choice and the costs' parts kept for the HTML page to explain.
//!
//! Not for: running the variants, putting the Deployment back between
//! them (`cluster::restore`) or writing files (`commands::matrix`).

pub mod cost;

pub use cost::{Basis, Cost, CostPart, Scale, costs};

use crate::cluster::rollout::PatchType;
use crate::cluster::steps::{PatchStep, Step};
use crate::compare::{self, Row, RowKind, RunColumn, Table};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatrixError {
    #[error("--vary `{0}`: expected path=v1,v2,..., e.g. --vary rollout.preStop=0s,2s,5s")]
    Form(String),
    #[error("--vary `{path}`: the value `{value}` is listed twice")]
    Duplicate { path: String, value: String },
    #[error("--vary `{0}` is given twice: list every value in one --vary")]
    PathTwice(String),
    #[error("--vary {path}: `{value}` {why}")]
    Value {
        path: String,
        value: String,
        why: String,
    },
    #[error("--vary is required at least once, e.g. --vary rollout.preStop=0s,3s")]
    Nothing,
}

/// One `--vary`: a path and the values it takes, in the order given
/// (also as `matrix.json` records it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vary {
    pub path: String,
    pub values: Vec<String>,
}

/// What a varied path changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// `rollout.preStop`: a preStop `sleep N` on the first container.
    PreStop,
    /// `rollout.terminationGracePeriodSeconds`, on the Pod template.
    GracePeriod,
    /// `rollout.maxSurge`, the Deployment's RollingUpdate strategy.
    MaxSurge,
    /// `rollout.maxUnavailable`, likewise.
    MaxUnavailable,
    /// `rollout.readinessProbe.periodSeconds`, the first container's probe.
    ReadinessPeriod,
    /// Any other path: a `--set` on the profile.
    Set,
}

/// The paths that patch the Deployment; every other path is a `--set`.
pub const DEPLOYMENT_PATHS: &[(&str, Knob)] = &[
    ("rollout.preStop", Knob::PreStop),
    ("rollout.terminationGracePeriodSeconds", Knob::GracePeriod),
    ("rollout.maxSurge", Knob::MaxSurge),
    ("rollout.maxUnavailable", Knob::MaxUnavailable),
    (
        "rollout.readinessProbe.periodSeconds",
        Knob::ReadinessPeriod,
    ),
];

pub fn knob(path: &str) -> Knob {
    DEPLOYMENT_PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map_or(Knob::Set, |(_, k)| *k)
}

/// Parse one `--vary path=v1,v2,...`, checking each value the path's
/// patch will need.
pub fn parse_vary(arg: &str) -> Result<Vary, MatrixError> {
    let (path, list) = arg
        .split_once('=')
        .map(|(p, l)| (p.trim(), l))
        .filter(|(p, l)| !p.is_empty() && !l.trim().is_empty())
        .ok_or_else(|| MatrixError::Form(arg.to_string()))?;
    let values: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(MatrixError::Form(arg.to_string()));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(MatrixError::Duplicate {
                path: path.into(),
                value: v.clone(),
            });
        }
        // Built once here so a bad value is refused before anything runs.
        patch_for(knob(path), path, v)?;
    }
    Ok(Vary {
        path: path.to_string(),
        values,
    })
}

/// Parse every `--vary`; a path may be given once.
pub fn parse_all(args: &[String]) -> Result<Vec<Vary>, MatrixError> {
    if args.is_empty() {
        return Err(MatrixError::Nothing);
    }
    let mut out: Vec<Vary> = Vec::new();
    for a in args {
        let v = parse_vary(a)?;
        if out.iter().any(|o| o.path == v.path) {
            return Err(MatrixError::PathTwice(v.path));
        }
        out.push(v);
    }
    Ok(out)
}

/// One combination of values: `(path, value)` per `--vary`, in `--vary`
/// order, with each value's position in its list (for the tie-break).
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub settings: Vec<(String, String)>,
    pub positions: Vec<usize>,
}

/// Every combination, the first `--vary` varying slowest (like nested
/// loops in the order given).
pub fn cross(varies: &[Vary]) -> Vec<Variant> {
    let mut out = vec![Variant {
        settings: Vec::new(),
        positions: Vec::new(),
    }];
    for v in varies {
        out = out
            .into_iter()
            .flat_map(|base| {
                v.values.iter().enumerate().map(move |(i, value)| {
                    let mut next = base.clone();
                    next.settings.push((v.path.clone(), value.clone()));
                    next.positions.push(i);
                    next
                })
            })
            .collect();
    }
    out
}

impl Variant {
    /// The variant of `varies` that sets `settings` (path, value), as
    /// `matrix.json` records it; `None` when a setting is not one of the
    /// values varied or a varied path is not set.
    pub fn of(varies: &[Vary], settings: &[(String, String)]) -> Option<Variant> {
        let mut v = Variant {
            settings: Vec::new(),
            positions: Vec::new(),
        };
        if settings.len() != varies.len() {
            return None;
        }
        for (vary, (path, value)) in varies.iter().zip(settings) {
            if *path != vary.path {
                return None;
            }
            v.positions
                .push(vary.values.iter().position(|x| x == value)?);
            v.settings.push((path.clone(), value.clone()));
        }
        Some(v)
    }

    /// A directory name: `preStop-3s`, `preStop-3s_rate-500` (the last
    /// segment of each path and the value; characters other than
    /// letters, digits, `-` and `.` become `_`, `%` becomes `pct`).
    pub fn slug(&self) -> String {
        self.settings
            .iter()
            .map(|(p, v)| {
                let last = p.rsplit('.').next().unwrap_or(p);
                format!("{}-{}", clean(last), clean(&v.replace('%', "pct")))
            })
            .collect::<Vec<_>>()
            .join("_")
    }

    /// `rollout.preStop=3s, load.rate=500`.
    pub fn describe(&self) -> String {
        self.settings
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `--set`s this variant adds to the profile.
    pub fn sets(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter(|(p, _)| knob(p) == Knob::Set)
            .map(|(p, v)| format!("{p}={v}"))
            .collect()
    }

    /// The patches that put the Deployment in this variant's state, run
    /// before the watches and the load (`RunOptions::setup`).
    pub fn setup(&self) -> Result<Vec<Step>, MatrixError> {
        let mut steps = Vec::new();
        for (p, v) in &self.settings {
            if let Some(step) = patch_for(knob(p), p, v)? {
                steps.push(step);
            }
        }
        Ok(steps)
    }
}

/// Slugs made unique: a repeated slug gets `-2`, `-3`, ... appended.
pub fn unique_slugs(variants: &[Variant]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in variants {
        let base = v.slug();
        let mut s = base.clone();
        let mut n = 2;
        while out.contains(&s) {
            s = format!("{base}-{n}");
            n += 1;
        }
        out.push(s);
    }
    out
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The step a `path=value` needs, `None` for a `--set`. The error says
/// what a value of that path must look like.
pub fn patch_for(knob: Knob, path: &str, value: &str) -> Result<Option<Step>, MatrixError> {
    let bad = |why: &str| MatrixError::Value {
        path: path.into(),
        value: value.into(),
        why: why.into(),
    };
    let json_patch = |ops: serde_json::Value| {
        Some(Step::Patch(PatchStep {
            kind: PatchType::Json,
            patch: ops,
        }))
    };
    let strategic = |patch: serde_json::Value| {
        Some(Step::Patch(PatchStep {
            kind: PatchType::Strategic,
            patch,
        }))
    };
    Ok(match knob {
        Knob::Set => None,
        Knob::PreStop => {
            let d = humantime::parse_duration(value)
                .map_err(|_| bad("is not a duration (examples: 0s, 2s, 5s)"))?;
            if d.subsec_nanos() != 0 {
                return Err(bad("must be whole seconds (a preStop `sleep N`)"));
            }
            let secs = d.as_secs();
            // The whole `lifecycle` of the first container is replaced:
            // JSON patch cannot remove a key that may not be there, and
            // `add` creates or replaces. 0s means no preStop hook.
            let lifecycle = if secs == 0 {
                json!({})
            } else {
                json!({"preStop": {"exec": {"command": ["sleep", secs.to_string()]}}})
            };
            json_patch(json!([{
                "op": "add",
                "path": "/spec/template/spec/containers/0/lifecycle",
                "value": lifecycle,
            }]))
        }
        Knob::GracePeriod => {
            let n = seconds(value).ok_or_else(|| bad("is not a whole number of seconds"))?;
            strategic(json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": n}}}}))
        }
        Knob::MaxSurge | Knob::MaxUnavailable => {
            let v = int_or_percent(value)
                .ok_or_else(|| bad("is not a count or a percentage (examples: 0, 1, 25%)"))?;
            let key = if knob == Knob::MaxSurge {
                "maxSurge"
            } else {
                "maxUnavailable"
            };
            strategic(json!({"spec": {"strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {key: v},
            }}}))
        }
        Knob::ReadinessPeriod => {
            let n = seconds(value)
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("is not a whole number of seconds >= 1"))?;
            json_patch(json!([{
                "op": "add",
                "path": "/spec/template/spec/containers/0/readinessProbe/periodSeconds",
                "value": n,
            }]))
        }
    })
}

/// `30` or `30s` as whole seconds.
fn seconds(v: &str) -> Option<u64> {
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    humantime::parse_duration(v)
        .ok()
        .filter(|d| d.subsec_nanos() == 0)
        .map(|d| d.as_secs())
}

/// Kubernetes' IntOrString for maxSurge/maxUnavailable: `1` or `25%`.
fn int_or_percent(v: &str) -> Option<serde_json::Value> {
    if let Ok(n) = v.parse::<u32>() {
        return Some(json!(n));
    }
    let pct = v.strip_suffix('%')?.parse::<u32>().ok()?;
    Some(json!(format!("{pct}%")))
}

/// The cheapest variant among those with zero failures: least cost, ties
/// broken by the order the values were given (earlier `--vary` first).
/// `None` when no variant qualifies.
pub fn cheapest(variants: &[Variant], costs: &[f64], zero_failures: &[bool]) -> Option<usize> {
    (0..variants.len())
        .filter(|&i| zero_failures[i])
        .min_by(|&a, &b| {
            costs[a]
                .total_cmp(&costs[b])
                .then_with(|| variants[a].positions.cmp(&variants[b].positions))
        })
}

/// What a matrix chose, and what each variant that ran cost, part by
/// part: what the page needs to say why.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The cheapest variant with zero failures, as an index into the
    /// columns compared; `None` when none had zero failures.
    pub best: Option<usize>,
    /// One per column.
    pub costs: Vec<Cost>,
    /// How each varied path's values became costs, in `--vary` order.
    pub scales: Vec<Scale>,
}

/// The comparison of the variants that ran and what was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The table of runs with a cost row above the verdict, and the line
    /// naming the cheapest variant with zero failures
    /// ([`Table::choice_line`]).
    pub table: Table,
    pub choice: Choice,
}

/// The comparison of the variants that ran (`columns[i]` ran
/// `variants[i]`; `varies` are the matrix's `--vary`s, every value, so
/// a cost is the same whichever variants ran).
pub fn comparison(columns: &[RunColumn], varies: &[Vary], variants: &[Variant]) -> Comparison {
    let scales = cost::scales(varies);
    let costs: Vec<Cost> = variants.iter().map(|v| cost::cost_of(&scales, v)).collect();
    let totals: Vec<f64> = costs.iter().map(|c| c.total).collect();
    let zero: Vec<bool> = columns
        .iter()
        .map(|c| c.measured.as_ref().is_some_and(|m| m.zero_failures()))
        .collect();
    let best = cheapest(variants, &totals, &zero);
    let mut table = compare::build_table(columns);
    let at = table
        .rows
        .iter()
        .position(|r| r.kind == RowKind::Verdict)
        .unwrap_or(table.rows.len());
    table.rows.insert(
        at,
        Row {
            kind: RowKind::Cost,
            label: "cost (smaller is cheaper)".into(),
            cells: totals.iter().map(|c| format!("{c:.2}")).collect(),
        },
    );
    table.choice_line = Some(match best {
        Some(b) => format!(
            "Cheapest variant with zero failures: {} ({}), cost {:.2}.",
            columns[b].label,
            variants[b].describe(),
            totals[b]
        ),
        None => "No variant had zero failures.".to_string(),
    });
    Comparison {
        table,
        choice: Choice {
            best,
            costs,
            scales,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(s: &str) -> Vary {
        parse_vary(s).unwrap()
    }

    fn ops(step: Option<Step>) -> (PatchType, serde_json::Value) {
        match step {
            Some(Step::Patch(p)) => (p.kind, p.patch),
            other => panic!("expected a patch, got {other:?}"),
        }
    }

    #[test]
    fn a_vary_lists_its_values_in_order() {
        assert_eq!(
            vary("rollout.preStop=0s, 2s,5s"),
            Vary {
                path: "rollout.preStop".into(),
                values: vec!["0s".into(), "2s".into(), "5s".into()],
            }
        );
    }

    #[test]
    fn a_vary_without_path_or_values_is_a_form_error() {
        for bad in ["rollout.preStop", "=1,2", "load.rate=", "load.rate=1,,2"] {
            assert!(
                matches!(parse_vary(bad), Err(MatrixError::Form(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_value_listed_twice_is_refused() {
        assert_eq!(
            parse_vary("load.rate=100,100"),
            Err(MatrixError::Duplicate {
                path: "load.rate".into(),
                value: "100".into()
            })
        );
    }

    #[test]
    fn a_path_varied_twice_is_refused_and_none_at_all_too() {
        let e = parse_all(&["load.rate=1,2".into(), "load.rate=3".into()]).unwrap_err();
        assert_eq!(e, MatrixError::PathTwice("load.rate".into()));
        assert_eq!(parse_all(&[]), Err(MatrixError::Nothing));
    }

    #[test]
    fn bad_values_for_deployment_paths_are_refused_with_what_they_must_be() {
        for (arg, needle) in [
            ("rollout.preStop=soon", "not a duration"),
            ("rollout.preStop=1500ms", "whole seconds"),
            ("rollout.terminationGracePeriodSeconds=1.5", "whole number"),
            ("rollout.maxSurge=lots", "count or a percentage"),
            ("rollout.maxUnavailable=-1", "count or a percentage"),
            ("rollout.readinessProbe.periodSeconds=0", ">= 1"),
        ] {
            let e = parse_vary(arg).unwrap_err().to_string();
            assert!(e.contains(needle), "{arg}: {e}");
        }
    }

    #[test]
    fn the_cross_product_varies_the_first_vary_slowest() {
        let v = cross(&[
            vary("rollout.preStop=0s,3s"),
            vary("rollout.maxSurge=1,2,3"),
        ]);
        let described: Vec<String> = v.iter().map(Variant::describe).collect();
        assert_eq!(
            described,
            [
                "rollout.preStop=0s, rollout.maxSurge=1",
                "rollout.preStop=0s, rollout.maxSurge=2",
                "rollout.preStop=0s, rollout.maxSurge=3",
                "rollout.preStop=3s, rollout.maxSurge=1",
                "rollout.preStop=3s, rollout.maxSurge=2",
                "rollout.preStop=3s, rollout.maxSurge=3",
            ]
        );
        assert_eq!(v[4].positions, [1, 1]);
    }

    #[test]
    fn slugs_name_each_setting_and_stay_unique() {
        let v = cross(&[vary("rollout.maxSurge=25%,1"), vary("load.rate=100")]);
        assert_eq!(v[0].slug(), "maxSurge-25pct_rate-100");
        let twins = cross(&[vary("a.x=1"), vary("b.x=1")]);
        let one = Variant {
            settings: vec![("a.x".into(), "1".into())],
            positions: vec![0],
        };
        let other = Variant {
            settings: vec![("b.x".into(), "1".into())],
            positions: vec![0],
        };
        assert_eq!(unique_slugs(&[one, other]), ["x-1", "x-1-2"]);
        assert_eq!(twins[0].slug(), "x-1_x-1");
        let odd = cross(&[vary("rollout.steps.0.set_image.image=nginx:1.29/x")]);
        assert_eq!(odd[0].slug(), "image-nginx_1.29_x");
    }

    #[test]
    fn other_paths_become_sets_and_deployment_paths_do_not() {
        let v = &cross(&[vary("rollout.preStop=2s"), vary("load.rate=500")])[0];
        assert_eq!(v.sets(), ["load.rate=500"]);
        assert_eq!(v.setup().unwrap().len(), 1);
    }

    #[test]
    fn a_prestop_becomes_an_exec_sleep_on_the_first_container() {
        let (kind, patch) = ops(patch_for(Knob::PreStop, "rollout.preStop", "3s").unwrap());
        assert_eq!(kind, PatchType::Json);
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/template/spec/containers/0/lifecycle",
                    "value": {"preStop": {"exec": {"command": ["sleep", "3"]}}}}])
        );
    }

    #[test]
    fn a_zero_prestop_removes_the_hook() {
        let (_, patch) = ops(patch_for(Knob::PreStop, "rollout.preStop", "0s").unwrap());
        assert_eq!(patch[0]["value"], json!({}));
    }

    #[test]
    fn a_grace_period_patches_the_pod_template() {
        let (kind, patch) = ops(patch_for(
            Knob::GracePeriod,
            "rollout.terminationGracePeriodSeconds",
            "60",
        )
        .unwrap());
        assert_eq!(kind, PatchType::Strategic);
        assert_eq!(
            patch,
            json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 60}}}})
        );
        let (_, patch) = ops(patch_for(
            Knob::GracePeriod,
            "rollout.terminationGracePeriodSeconds",
            "45s",
        )
        .unwrap());
        assert_eq!(
            patch["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            45
        );
    }

    #[test]
    fn surge_and_unavailable_patch_the_strategy_as_int_or_percent() {
        let (_, patch) = ops(patch_for(Knob::MaxSurge, "rollout.maxSurge", "3").unwrap());
        assert_eq!(
            patch,
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3}}}})
        );
        let (_, patch) =
            ops(patch_for(Knob::MaxUnavailable, "rollout.maxUnavailable", "25%").unwrap());
        assert_eq!(
            patch["spec"]["strategy"]["rollingUpdate"],
            json!({"maxUnavailable": "25%"})
        );
    }

    #[test]
    fn a_readiness_period_patches_the_first_containers_probe() {
        let (kind, patch) = ops(patch_for(
            Knob::ReadinessPeriod,
            "rollout.readinessProbe.periodSeconds",
            "5",
        )
        .unwrap());
        assert_eq!(kind, PatchType::Json);
        assert_eq!(
            patch,
            json!([{"op": "add",
                    "path": "/spec/template/spec/containers/0/readinessProbe/periodSeconds",
                    "value": 5}])
        );
    }

    #[test]
    fn a_set_path_needs_no_patch() {
        assert_eq!(patch_for(Knob::Set, "load.rate", "anything").unwrap(), None);
        assert_eq!(knob("load.rate"), Knob::Set);
        assert_eq!(knob("rollout.preStop"), Knob::PreStop);
    }

    #[test]
    fn the_cheapest_zero_failure_variant_is_named() {
        let varies = [vary("rollout.preStop=0s,2s,5s")];
        let v = cross(&varies);
        let c = costs(&varies, &v);
        assert_eq!(cheapest(&v, &c, &[false, true, true]), Some(1));
        assert_eq!(cheapest(&v, &c, &[false, false, true]), Some(2));
        assert_eq!(cheapest(&v, &c, &[false, false, false]), None);
        // Listed in any order, smaller is still cheaper.
        let varies = [vary("rollout.maxSurge=3,1")];
        let v = cross(&varies);
        let c = costs(&varies, &v);
        assert_eq!(cheapest(&v, &c, &[true, true]), Some(1));
    }

    #[test]
    fn equal_costs_go_to_the_values_given_first() {
        let varies = [vary("a=x,y"), vary("b=p,q")];
        let v = cross(&varies);
        // x/q and y/p both cost 1.
        let c = costs(&varies, &v);
        assert_eq!(c[1], c[2]);
        assert_eq!(cheapest(&v, &c, &[false, true, true, true]), Some(1));
    }

    #[test]
    fn a_variant_is_found_again_from_its_recorded_settings() {
        let varies = [vary("rollout.preStop=0s,3s"), vary("load.rate=100,200")];
        let set = |p: &str, v: &str| (p.to_string(), v.to_string());
        let v = Variant::of(
            &varies,
            &[set("rollout.preStop", "3s"), set("load.rate", "100")],
        )
        .unwrap();
        assert_eq!(v, cross(&varies)[2]);
        // A value never varied, a path out of order, a path missing.
        for bad in [
            vec![set("rollout.preStop", "9s"), set("load.rate", "100")],
            vec![set("load.rate", "100"), set("rollout.preStop", "3s")],
            vec![set("rollout.preStop", "3s")],
        ] {
            assert_eq!(Variant::of(&varies, &bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_comparison_adds_a_cost_row_and_names_the_choice_with_its_costs() {
        use crate::compare::{Measured, RunColumn};
        use crate::verdict::Verdict;
        let varies = [vary("rollout.preStop=0s,3s,5s")];
        let variants = cross(&varies);
        let m = |failed| Measured {
            verdict: Verdict::Pass,
            interrupted: false,
            sent: 100,
            failed,
            causes: Default::default(),
            longest_disruption_ms: None,
            latency_p50_ms: 1.0,
            latency_p99_ms: 2.0,
            rollout_completed: true,
        };
        let columns: Vec<RunColumn> = [9, 0, 0]
            .into_iter()
            .zip(["preStop-0s", "preStop-3s", "preStop-5s"])
            .map(|(failed, label)| RunColumn {
                label: label.into(),
                measured: Some(m(failed)),
                ..Default::default()
            })
            .collect();
        let c = comparison(&columns, &varies, &variants);
        assert_eq!(c.choice.best, Some(1));
        assert_eq!(c.choice.costs.len(), 3);
        assert!((c.choice.costs[1].total - 0.6).abs() < 1e-9);
        let cost = c
            .table
            .rows
            .iter()
            .find(|r| r.kind == RowKind::Cost)
            .unwrap();
        assert_eq!(cost.cells, ["0.00", "0.60", "1.00"]);
        assert_eq!(
            c.table.choice_line.as_deref(),
            Some(
                "Cheapest variant with zero failures: preStop-3s (rollout.preStop=3s), cost 0.60."
            )
        );
        let none = comparison(&columns[..1], &varies, &variants[..1]);
        assert_eq!(none.choice.best, None);
        assert_eq!(
            none.table.choice_line.as_deref(),
            Some("No variant had zero failures.")
        );
    }
}
