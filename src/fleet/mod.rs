//! Load from inside the cluster (issue 12): worker Pods of an Indexed
//! Job, each a baton process sending its interleaved share of the open
//! model ([`crate::load::pacing::Schedule::share`]), talking to the
//! coordinator (baton on the CI runner) through the Kubernetes API only.
//!
//! Here: [`wire`], the line protocol on a worker's stdin and stdout (the
//! start instant, clock pings, every record with a running checksum);
//! [`clock`], each worker's clock offset to the coordinator from those
//! pings, with its error bound; [`worker`], what `baton worker` does in a
//! Job's Pod; [`job`], the Indexed Job that runs the workers;
//! [`coordinator`], baton's side: the Job created, its Pods attached to,
//! their records merged onto the run's clock, and the Job removed.
//!
//! Not for: judging or reporting (the merged `requests.csv` is read like
//! any other, with its `worker` column).

pub mod clock;
pub mod coordinator;
pub mod job;
pub mod wire;
pub mod worker;
