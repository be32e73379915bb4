//! A **simulator** of the slice of Kubernetes that decides whether a rollout
//! drops requests: an API server speaking the Kubernetes wire format over
//! HTTP on loopback, Deployment/ReplicaSet/EndpointSlice controllers, Pods
//! that are real HTTP servers on their own loopback addresses, and a Service
//! proxy whose endpoints lag the EndpointSlices like kube-proxy's do.
//!
//! It exists so that `baton demo` and baton's tests run with no cluster,
//! through the same kube-rs client path used against real clusters. It is not
//! a cluster: its Nodes are names Pods are bound to (cordon and
//! PodDisruptionBudget-honouring evictions are simulated, taints and node
//! lifecycle are not), no containers (Pods of configured `process_images`
//! run as plain child processes), no TLS, no RBAC beyond a deny list.
//! The product targets real clusters.
//!
//! See [`Sandbox`] for the entry point.
//!
//! # Layout
//!
//! - [`store`]: the in-memory object store (JSON objects, one global
//!   resourceVersion, a bounded change history for watches).
//! - [`api`]: the HTTP API server: discovery, CRUD, list/watch, patch,
//!   server-side apply, `Status` errors, access rules.
//! - [`config`]: the sandbox configuration file, the seed scenario and
//!   the simulated cluster's knobs ([`ClusterConfig`]).
//! - [`kubeconfig`]: writes the kubeconfig that points clients at the sandbox.
//! - [`sandbox`]: the [`Sandbox`] handle that starts and stops everything.
//! - [`cluster`]: spawns the cluster behaviour below.
//! - [`clusterip`]: the Service range and ClusterIP allocation (pure).
//! - [`controllers`]: Deployment, ReplicaSet, EndpointSlice, disruption
//!   (PodDisruptionBudget status) and HorizontalPodAutoscaler controllers.
//! - [`kubelet`]: schedules Pods onto Nodes, and runs them as real HTTP
//!   servers (probes, preStop, grace period), or as child processes for
//!   the `process_images` (`pods/log`, `pods/attach`).
//! - [`scheduler`]: which Node a new Pod goes to (pure).
//! - [`job`]: batch/v1 Job defaults, validation and the Job controller's
//!   decisions (pure).
//! - [`pdb`]: PodDisruptionBudget arithmetic and eviction decisions (pure).
//! - [`hpa`]: HorizontalPodAutoscaler defaults, the simulated metric and
//!   the replica decision (pure).
//! - [`proxy`]: the Service proxy with propagation lag.
//! - [`kernel`]: the kernel data plane (nftables DNAT, conntrack as
//!   ground truth), which carries the proxy's endpoint sets instead of its
//!   userspace relay when the config asks for it (root only).
//! - [`ingress`]: the ingress controller (ingress-nginx's routing and canary
//!   weights) in front of the proxy's endpoint tables.
//! - [`affinity`]: the proxy's `sessionAffinity: ClientIP` (pure).
//! - [`truth`]: the ground truth: where each connection went, what each Pod did.
//! - [`events`]: records core/v1 Events into the store.
//! - [`node`]: the simulated Nodes' names and objects, and the clock (a leaf).

pub mod affinity;
pub mod api;
pub mod cluster;
pub mod clusterip;
pub mod config;
pub mod controllers;
pub mod events;
pub mod hpa;
pub mod ingress;
pub mod job;
pub mod kernel;
pub mod kubeconfig;
pub mod kubelet;
pub mod node;
pub mod pdb;
pub mod proxy;
pub mod sandbox;
pub mod scheduler;
pub mod store;
pub mod truth;

pub use config::{AccessRule, ClusterConfig, ConfigError, ProcessImage, SandboxConfig};
pub use kernel::{DataPlane, DataPlaneUsed};
pub use sandbox::Sandbox;
pub use store::{Change, ChangeType, Store, StoreConfig, StoreError};
