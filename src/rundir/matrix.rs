//! `matrix.json`: at the top of a `baton matrix` directory, what was
//! varied, how each variant that ran went, and the cheapest with zero
//! failures. Each variant's own run directory holds the rest.

use super::variant::Setting;
use super::{FORMAT_VERSION, MATRIX_JSON, RunDirError};
pub use crate::matrix::Vary;
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixRecord {
    /// 1 when the file does not say (baton 0.1.0).
    #[serde(default = "super::unversioned")]
    pub format_version: u32,
    /// Empty in format 1.
    #[serde(default)]
    pub baton_version: String,
    /// The profile file, as given on the command line.
    pub profile: String,
    pub vary: Vec<Vary>,
    /// The variants that ran, in order.
    pub variants: Vec<VariantResult>,
    /// The slug of the cheapest variant with zero failures, if any.
    pub cheapest_zero_failures: Option<String>,
    /// Ctrl-C stopped the matrix before every variant ran.
    pub interrupted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub slug: String,
    pub settings: Vec<Setting>,
    pub cost: f64,
    /// `None`: the variant left no summary (its setup failed).
    pub verdict: Option<Verdict>,
    pub failed: Option<u64>,
    pub zero_failures: bool,
}

impl MatrixRecord {
    /// A record in this baton's format.
    pub fn new(profile: String, vary: Vec<Vary>) -> MatrixRecord {
        MatrixRecord {
            format_version: FORMAT_VERSION,
            baton_version: env!("CARGO_PKG_VERSION").to_string(),
            profile,
            vary,
            variants: Vec::new(),
            cheapest_zero_failures: None,
            interrupted: false,
        }
    }

    pub fn write(&self, dir: &Path) -> Result<(), RunDirError> {
        super::write_json(&dir.join(MATRIX_JSON), self)
    }

    /// Read `dir/matrix.json` in any released format; a newer one is refused.
    pub fn read(dir: &Path) -> Result<MatrixRecord, RunDirError> {
        super::read_versioned(&dir.join(MATRIX_JSON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_record_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MatrixRecord::new(
            "profiles/web.yaml".into(),
            vec![Vary {
                path: "rollout.preStop".into(),
                values: vec!["0s".into(), "3s".into()],
            }],
        );
        m.variants.push(VariantResult {
            slug: "preStop-0s".into(),
            settings: vec![Setting {
                path: "rollout.preStop".into(),
                value: "0s".into(),
            }],
            cost: 0.0,
            verdict: Some(Verdict::Fail),
            failed: Some(3),
            zero_failures: false,
        });
        m.write(dir.path()).unwrap();
        assert_eq!(MatrixRecord::read(dir.path()).unwrap(), m);
    }
}
