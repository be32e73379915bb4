//! The cluster side: talks to a Kubernetes API server through kube-rs,
//! the same way for a real cluster and for the sandbox.
//!
//! - [`choice`] decides between the sandbox and a real cluster, and
//!   [`connect`] connects to a real one the way kubectl does.
//! - [`watch`] runs the watches and [`normalise`] turns what they see into
//!   [`event::LifecycleEvent`]s on the run clock.
//! - [`steps`] executes a profile's rollout steps (with [`rollout`] doing
//!   each as kubectl would, [`rollout_status`] kubectl's completion rule
//!   and [`stall`] the stall rules); [`preflight`] checks permissions and
//!   objects first; [`snapshot`] records the objects before and after;
//!   [`restore`] puts a Deployment back as it was (`baton matrix`);
//!   [`exec`] runs the team's own deploy command as a step.

pub mod choice;
pub mod connect;
pub mod drain;
pub mod event;
pub mod exec;
pub mod liveness;
pub mod normalise;
pub mod object_ref;
pub mod preflight;
pub mod restore;
pub mod rollout;
pub mod rollout_status;
pub mod selector;
pub mod snapshot;
pub mod stall;
pub mod steps;
pub mod teardown;
pub mod watch;
