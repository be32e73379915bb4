//! Renders what a run measured and how it was judged into the files a
//! person or a CI system reads. One module per output; each takes
//! finished data and writes it.
//!
//! - [`run_summary`] writes `summary.json`, `summary.md`, `junit.xml` and
//!   the terminal summary of a `baton run`, all from one
//!   [`RunSummary`](crate::rundir::RunSummary);
//! - [`load_summary`] does the same for a `baton load`;
//! - [`tables`] writes `failures.csv` and `timeline.csv`;
//! - [`html`] writes `report.html`.
//!
//! Not for: measuring (`analyse`), judging (`verdict`), or the files'
//! names and formats (`rundir`).

pub mod html;
pub mod load_summary;
pub mod look;
pub mod run_summary;
pub mod tables;
