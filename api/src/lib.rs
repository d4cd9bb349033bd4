//! # ticklake-api
//!
//! What every part of ticklake agrees on:
//!
//! * [`crd`] — the custom resources `StockStream`, `S3Sink` and `AlertSubscription`;
//! * [`tick`] — the versioned JSON message format producers write and sinks read.

pub mod crd;
pub mod tick;
