//! # ticklake-api
//!
//! What every part of ticklake agrees on:
//!
//! * [`crd`] — the custom resources `StockStream`, `S3Sink` and `AlertSubscription`;
//! * [`tick`] — the versioned JSON message format producers write and sinks read;
//! * [`report`] — the live figures workers serve at `/status` and the operator shows in `status`.

pub mod crd;
pub mod report;
pub mod tick;
