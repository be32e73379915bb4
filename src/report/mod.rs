//! Renders what a run measured into files a person or a CI system reads.
//! One module per output; each takes finished data and writes it.
//!
//! Not for: measuring or judging.

pub mod analyse;
pub mod html;
pub mod run_summary;
pub mod summary;
pub mod tables;
