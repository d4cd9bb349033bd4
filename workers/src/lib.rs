//! # ticklake-workers
//!
//! The two workers of a ticklake pipeline, as a library the `ticklake` binary runs:
//!
//! * [`producer`] — a `StockStream`'s source (simulator or replay) into a topic;
//! * [`sink`] — an `S3Sink`: a topic landed exactly once in an object store;
//!
//! and what they stand on: [`store`] (S3 or a local directory), [`connect`] (turning a
//! resource's spec into a bus and a store), [`telemetry`] (Prometheus metrics, health).
//!
//! A worker's configuration *is* its resource: the operator mounts the `StockStream` or
//! `S3Sink` manifest into the pod, and the local runner reads the same manifests.

pub mod connect;
pub mod notifier;
pub mod producer;
pub mod sink;
pub mod store;
pub mod telemetry;
pub mod verify;
