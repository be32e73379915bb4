//! Load from inside the cluster (issue 12): worker Pods of an Indexed
//! Job, each a baton process sending its interleaved share of the open
//! model ([`crate::load::pacing::Schedule::share`]), talking to the
//! coordinator (baton on the CI runner) through the Kubernetes API only.
//!
//! Here: [`wire`], the line protocol on a worker's stdin and stdout (the
//! start instant, clock pings, every record with a running checksum);
//! [`clock`], each worker's clock offset to the coordinator from those
//! pings, with its error bound; [`worker`], what `baton worker` does in a
//! Job's Pod.
//!
//! Not for (yet): creating the Job, attaching to its Pods and merging the
//! records (the coordinator). It builds on these pieces.

pub mod clock;
pub mod wire;
pub mod worker;
