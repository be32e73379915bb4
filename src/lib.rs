//! baton proves, or disproves, that a Kubernetes rollout drops no
//! requests.
//!
//! # Layout
//!
//! The path of data is the layout:
//!
//! - [`load`] makes request records: open-model HTTP load, a new TCP
//!   connection per request, one record per request streamed to disk.
//! - [`cluster`] talks to the API server (kube-rs): connects, watches
//!   (lifecycle events on the run clock), drives rollout steps.
//! - [`analyse`] measures `requests.csv` in one streaming pass: buckets,
//!   failures, the longest disruption, who answered before and after.
//! - [`timeline`] rebuilds the cluster's state at any instant from the
//!   lifecycle events, and the per-Pod lags between transitions.
//! - [`attribution`] joins the two: ties every failed request to the
//!   lifecycle moment that caused it, and groups failures into incidents.
//! - [`verdict`] judges: pass, fail or invalid, with the reason.
//! - [`report`] renders: `summary.json`, `summary.md`, `junit.xml`,
//!   `failures.csv`, `timeline.csv`, `report.html` and the terminal
//!   summary.
//! - [`rundir`] owns the run directory: every file's name and format,
//!   the format version, reading old directories back.
//! - [`profile`] parses and validates profiles; [`run`] is `baton run`'s
//!   sequence from cluster choice to reports.
//! - [`compare`] puts runs side by side; [`matrix`] holds `baton
//!   matrix`'s variants, their patches and costs.
//! - [`clock`] is the one clock requests and events share.
//! - [`cli`] defines the command line; [`commands`] runs each command.
//! - [`exit`] holds the exit codes; [`interrupt`] turns Ctrl-C and
//!   SIGTERM into one graceful stop.
//! - The sandbox (a simulator of the slice of Kubernetes a rollout's
//!   safety depends on) lives apart in the `baton-sandbox` crate and is
//!   reached only over HTTP and TCP, like a real cluster.

pub mod analyse;
pub mod attribution;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod compare;
pub mod exit;
pub mod fleet;
pub mod interrupt;
pub mod load;
pub mod matrix;
pub mod profile;
pub mod report;
pub mod run;
pub mod rundir;
pub mod timeline;
pub mod verdict;
