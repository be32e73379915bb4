//! What a matrix variant costs, and how that number came about: for each
//! varied path, the value's share of that path's largest value (a preStop
//! of 2 s out of 0/2/5 s costs 0.4), summed over the varied paths. When a
//! path's values are not all numbers (durations, counts, percentages), a
//! value costs its position in the list given, from 0 (the first) to 1
//! (the last). Smaller is cheaper.
//!
//! The parts are kept ([`Cost::parts`], [`Scale`]) so a page can say what
//! the number means instead of printing it bare.
//!
//! Not for: choosing among the variants (`matrix::cheapest`).

use super::{Variant, Vary};

/// How one varied path's values turn into costs.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    pub path: String,
    /// How the values were read.
    pub basis: Basis,
    /// Each value, in the order given, with its cost (0 to 1).
    pub values: Vec<(String, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Basis {
    /// Every value is a number: each costs its share of the largest,
    /// `largest` as given (`5s`). When the largest is 0, every value
    /// costs 0.
    Share { largest: String },
    /// Not every value is a number: each costs its position in the list,
    /// 0 for the first to 1 for the last.
    Order,
}

/// One variant's cost and its parts, one per varied path.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    pub total: f64,
    pub parts: Vec<CostPart>,
}

/// A varied path's part of a variant's cost.
#[derive(Clone, Debug, PartialEq)]
pub struct CostPart {
    pub path: String,
    pub value: String,
    /// Its position in the list given, from 0.
    pub position: usize,
    /// How many values the path was given.
    pub of: usize,
    pub cost: f64,
    pub basis: Basis,
}

/// A value as a magnitude for the cost: a duration in seconds, a
/// percentage's number, a plain number; `None` for anything else.
fn magnitude(v: &str) -> Option<f64> {
    if let Some(p) = v.strip_suffix('%') {
        return p.parse::<f64>().ok().filter(|n| n.is_finite());
    }
    if let Ok(n) = v.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    humantime::parse_duration(v).ok().map(|d| d.as_secs_f64())
}

/// Each varied path's scale, in `--vary` order.
pub fn scales(varies: &[Vary]) -> Vec<Scale> {
    varies.iter().map(scale).collect()
}

fn scale(v: &Vary) -> Scale {
    let mags: Option<Vec<f64>> = v.values.iter().map(|x| magnitude(x)).collect();
    let (basis, costs): (Basis, Vec<f64>) = match mags {
        Some(m) => {
            let max = m.iter().cloned().fold(0.0, f64::max);
            let largest = m
                .iter()
                .position(|x| *x == max)
                .map_or_else(String::new, |i| v.values[i].clone());
            let costs = m
                .iter()
                .map(|x| if max > 0.0 { x.max(0.0) / max } else { 0.0 })
                .collect();
            (Basis::Share { largest }, costs)
        }
        None => {
            let n = v.values.len();
            let costs = (0..n)
                .map(|i| {
                    if n > 1 {
                        i as f64 / (n - 1) as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            (Basis::Order, costs)
        }
    };
    Scale {
        path: v.path.clone(),
        basis,
        values: v.values.iter().cloned().zip(costs).collect(),
    }
}

/// One variant's cost, part by part, on the given scales (from
/// [`scales`] of the matrix's `--vary`s).
pub fn cost_of(scales: &[Scale], variant: &Variant) -> Cost {
    let parts: Vec<CostPart> = scales
        .iter()
        .zip(&variant.positions)
        .filter_map(|(s, &pos)| {
            let (value, cost) = s.values.get(pos)?;
            Some(CostPart {
                path: s.path.clone(),
                value: value.clone(),
                position: pos,
                of: s.values.len(),
                cost: *cost,
                basis: s.basis.clone(),
            })
        })
        .collect();
    Cost {
        total: parts.iter().map(|p| p.cost).sum(),
        parts,
    }
}

/// Each variant's cost: the sum, over the varied paths, of the value's
/// share of that path's largest value (a preStop of 2 s out of 0/2/5 s
/// costs 0.4, 5 s costs 1). Smaller is cheaper. When a path's values are
/// not all numbers (durations, counts, percentages), a value costs its
/// position in the list given, from 0 (the first) to 1 (the last).
pub fn costs(varies: &[Vary], variants: &[Variant]) -> Vec<f64> {
    let scales = scales(varies);
    variants.iter().map(|v| cost_of(&scales, v).total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{cross, parse_vary};

    fn vary(s: &str) -> Vary {
        parse_vary(s).unwrap()
    }

    #[test]
    fn cost_is_each_values_share_of_its_paths_largest_summed() {
        let varies = [
            vary("rollout.preStop=0s,2s,5s"),
            vary("rollout.terminationGracePeriodSeconds=30,60"),
        ];
        let v = cross(&varies);
        let c = costs(&varies, &v);
        // 0s/30, 0s/60, 2s/30, 2s/60, 5s/30, 5s/60
        let expect = [0.5, 1.0, 0.9, 1.4, 1.5, 2.0];
        for (got, want) in c.iter().zip(expect) {
            assert!((got - want).abs() < 1e-9, "{c:?}");
        }
    }

    #[test]
    fn cost_of_non_numeric_values_follows_the_order_given() {
        let varies = [vary("rollout.steps.0.set_image.image=b,a,c")];
        let c = costs(&varies, &cross(&varies));
        assert_eq!(c, [0.0, 0.5, 1.0]);
    }

    #[test]
    fn a_cost_keeps_each_paths_part_and_what_it_was_measured_against() {
        let varies = [
            vary("rollout.preStop=0s,2s,5s"),
            vary("rollout.steps.0.set_image.image=b,a"),
        ];
        let v = cross(&varies);
        // 2s with image a.
        let c = cost_of(&scales(&varies), &v[3]);
        assert!((c.total - 1.4).abs() < 1e-9, "{c:?}");
        assert_eq!(c.parts.len(), 2);
        assert_eq!(
            (
                c.parts[0].value.as_str(),
                c.parts[0].position,
                c.parts[0].of
            ),
            ("2s", 1, 3)
        );
        assert_eq!(
            c.parts[0].basis,
            Basis::Share {
                largest: "5s".into()
            }
        );
        assert!((c.parts[0].cost - 0.4).abs() < 1e-9);
        assert_eq!(c.parts[1].basis, Basis::Order);
        assert_eq!(c.parts[1].cost, 1.0);
    }

    #[test]
    fn a_scale_lists_every_value_with_its_cost_in_the_order_given() {
        let s = scales(&[vary("rollout.maxSurge=3,1")]);
        assert_eq!(
            s[0].values,
            [("3".to_string(), 1.0), ("1".to_string(), 1.0 / 3.0)]
        );
        assert_eq!(
            s[0].basis,
            Basis::Share {
                largest: "3".into()
            }
        );
        let zero = scales(&[vary("load.rate=0")]);
        assert_eq!(zero[0].values, [("0".to_string(), 0.0)]);
    }
}
