//! Load from inside the cluster (issue 12): worker Pods of an Indexed
//! Job, each a baton process sending its interleaved share of the open
//! model ([`crate::load::pacing::Schedule::share`]), talking to the
//! coordinator (baton on the CI runner) through the Kubernetes API only.
//!
//! The pure parts live here: [`wire`], the line protocol on a worker's
//! stdin and stdout (the start instant, clock pings, every record with a
//! running checksum); [`clock`], each worker's clock offset to the
//! coordinator from those pings, with its error bound.
//!
//! Not for (yet): creating the Job, attaching to its Pods and merging the
//! records; the worker command. Those build on these pieces.

pub mod clock;
pub mod wire;
