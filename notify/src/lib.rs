//! ticklake's own notifier: subscribers told when data lands, without Amazon SNS.
//!
//! The local runner (and a cluster configured without SNS) runs `AlertSubscription`s here.
//! What SNS gives its users, this gives too:
//!
//! | concern | module |
//! |---|---|
//! | what happened: `object.created` (S3-event shaped), `table.schema_changed` | [`event`] |
//! | who wants it: SNS filter policies (exact, prefix, anything-but, numeric, exists, `$or`) | [`filter`] |
//! | what it looks like: email text + HTML, digests with totals, webhook JSON, Slack, Discord | [`render`] |
//! | when to retry, when to give up, how fast: backoff with jitter, limits, rate limits | [`backoff`] |
//! | nothing lost: the SQLite outbox, dead letters, redrive, the delivery log, replay marks | [`outbox`] |
//! | how it is sent: SMTP ([`email`]), HTTP with signatures and target checks ([`http`]) | |
//! | double opt-in and unsubscribe links | `server` (the runner's HTTP endpoint) |
//! | all of it running | [`notifier`] |
//!
//! The first four are pure — no clock, no I/O — and tested as tables. Everything that talks to
//! the world sits in the last four. The event schema, the webhook signature and the CLI are
//! documented for users in `notify/README.md`.

pub mod backoff;
pub mod config;
pub mod email;
pub mod event;
pub mod filter;
pub mod http;
pub mod notifier;
pub mod outbox;
pub mod render;
mod server;

pub use config::NotifierConfig;
pub use event::{Event, ObjectWritten, SchemaChange};
pub use notifier::{NotifierHandle, NotifyError, Replayer, Running, Subscription, start};
