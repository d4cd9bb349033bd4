//! # ticklake-operator
//!
//! The Kubernetes operator: it makes `StockStream`, `S3Sink` and `AlertSubscription` resources
//! become running pipelines, keeps them that way, reports truthfully in `status`, and cleans up.
//!
//! * [`render`] — desired state: a resource → its ConfigMap and workload (pure, unit-tested);
//! * [`apply`] — writes an object only when it differs from the live one (server-side apply);
//! * [`conditions`] — `Ready`, `Progressing`, `Degraded` from what a reconcile observed (pure);
//! * [`kafka`] — the topic plan (create, grow, never shrink) and admin connections;
//! * [`scrape`] — the workers' live figures from their `/status`;
//! * [`controller`] — one `kube::runtime::Controller` per kind and their shared context;
//! * [`leader`] — Lease-based leader election;
//! * [`metrics`] — Prometheus metrics and health endpoints;
//! * [`run`] — everything together, what the binary calls.
//!
//! Invariants: the operator writes only what it renders, labelled
//! `app.kubernetes.io/managed-by=ticklake-operator` and owned (controller owner reference) by
//! the resource, so deletion cascades through the garbage collector; a reconcile of an unchanged
//! resource makes no writes; an invalid resource is reported in its status and never stops the
//! operator; only the Lease holder reconciles.

pub mod apply;
pub mod conditions;
pub mod controller;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod run;
pub mod scrape;
