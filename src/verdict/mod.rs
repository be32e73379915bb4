//! Judges a run: pass, fail, or invalid, with the reason in one line;
//! [`load`] judges a `baton load`, [`run`] a `baton run`.
//!
//! Pure: counts in, verdict out. `invalid` means baton could not measure
//! faithfully (its own resource limits, lost records), so nothing may be
//! concluded about the target; it outranks `fail`.

pub mod affinity;
pub mod load;
pub mod run;
pub mod schedule;
pub mod share;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Invalid,
    /// The run was stopped (Ctrl-C, SIGTERM) before it ended: nothing is
    /// concluded, whatever the thresholds say so far. Outranks the rest.
    Interrupted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Invalid => "invalid",
            Verdict::Interrupted => "interrupted",
        }
    }

    /// The word printed for a person: `PASS`, `FAIL`, `INVALID`,
    /// `INTERRUPTED`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Invalid => "INVALID",
            Verdict::Interrupted => "INTERRUPTED",
        }
    }
}
