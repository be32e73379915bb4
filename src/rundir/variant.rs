//! `variant.json`: in a matrix variant's run directory, the settings that
//! make it that variant and its cost, so `baton compare` can show them.

use super::{RunDirError, VARIANT_JSON};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantRecord {
    /// The variant's directory name, e.g. `preStop-3s`.
    pub slug: String,
    /// What it sets, in `--vary` order.
    pub variant: Vec<Setting>,
    /// Its cost among the matrix's variants (0 = the cheapest setting of
    /// every `--vary`).
    pub cost: f64,
}

/// One `--vary` path and the value a variant gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub path: String,
    pub value: String,
}

impl VariantRecord {
    pub fn write(&self, dir: &Path) -> Result<(), RunDirError> {
        super::write_json(&dir.join(VARIANT_JSON), self)
    }

    /// `dir/variant.json`, or `None` when the directory is not a matrix
    /// variant's.
    pub fn read(dir: &Path) -> Result<Option<VariantRecord>, RunDirError> {
        let path = dir.join(VARIANT_JSON);
        if !path.exists() {
            return Ok(None);
        }
        super::read_json(&path).map(Some)
    }

    /// The settings as (path, value) pairs.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.variant
            .iter()
            .map(|s| (s.path.clone(), s.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_survives_a_round_trip_and_its_absence_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(VariantRecord::read(dir.path()).unwrap(), None);
        let v = VariantRecord {
            slug: "preStop-3s".into(),
            variant: vec![Setting {
                path: "rollout.preStop".into(),
                value: "3s".into(),
            }],
            cost: 1.0,
        };
        v.write(dir.path()).unwrap();
        assert_eq!(VariantRecord::read(dir.path()).unwrap(), Some(v.clone()));
        assert_eq!(
            v.settings(),
            [("rollout.preStop".to_string(), "3s".to_string())]
        );
    }

    #[test]
    fn a_broken_variant_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(VARIANT_JSON), "{").unwrap();
        let e = VariantRecord::read(dir.path()).unwrap_err();
        assert!(e.to_string().contains(VARIANT_JSON), "{e}");
    }
}
