//! The AWS resources ticklake's operator owns, as desired state and reconcile functions.
//!
//! Each module has the same shape, so the operator's controllers read alike:
//!
//! * a **pure** `desired(...)` that turns a resource's spec into what should exist in AWS
//!   (names, settings, policies as JSON) — no client, unit-tested;
//! * `async fn ensure(&Clients, &Desired, &Owner)` that reads what exists, creates what is
//!   missing, updates what drifted, and returns what it observed (for `status`) and what it
//!   changed (for Events);
//! * `async fn delete(...)` for the finalizer, which removes only what carries our [`Owner`]
//!   tags.
//!
//! Ownership: everything created is tagged ([`tags`]); a same-named resource without our tags
//! is never updated or deleted — `ensure` returns [`ErrorKind::NotOwned`] instead. Resources
//! that cannot carry tags (Athena named queries, bucket notification rules) belong to a
//! tagged parent or carry our id prefix.
//!
//! Errors ([`AwsError`]) say which call failed and classify it, so the operator can back off
//! on throttling, report `AccessDenied` with the missing permission, and repair `NotFound`.
//! The SDK's own retries (standard mode) absorb short bursts of throttling first.

pub mod athena;
pub mod clients;
pub mod error;
pub mod glue;
pub mod s3notify;
pub mod sns;
pub mod sqs;
pub mod tags;

pub use clients::{AwsSettings, Clients};

/// The SDK crates, for callers that need their types (tests checking the AWS side).
pub mod sdk {
    pub use aws_sdk_athena as athena;
    pub use aws_sdk_glue as glue;
    pub use aws_sdk_s3 as s3;
    pub use aws_sdk_sns as sns;
    pub use aws_sdk_sqs as sqs;
}
pub use error::{AwsError, ErrorKind};
pub use tags::Owner;
