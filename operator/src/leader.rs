//! Leader election with a `coordination.k8s.io/v1` Lease, so that two operator replicas are
//! safe: only the holder reconciles, the other waits and takes over when the holder stops
//! renewing.
//!
//! The algorithm is client-go's: a candidate reads the Lease; it may take it when it is free or
//! when the record has not changed for `leaseDurationSeconds` *as measured by the candidate's
//! own clock since it first saw that record* (so clock skew between nodes does not matter).
//! Every write carries the `resourceVersion` it read: of two candidates racing for an expired
//! Lease, the API server accepts one and refuses the other with a conflict. The holder renews
//! every `duration / 3`; if it cannot renew within `duration` it must stop reconciling — the
//! binary exits, and Kubernetes restarts it as a candidate. A holder that stops cleanly
//! releases the Lease so the other replica takes over at once.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::{Duration, Instant};

/// A candidate for one Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The last record seen (its resourceVersion) and when this process first saw it.
    seen: Option<(String, Instant)>,
}

/// The state after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This candidate holds the Lease.
    Leading,
    /// Another candidate does (its identity).
    Following(String),
}

impl LeaseLock {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> LeaseLock {
        assert!(duration >= Duration::from_secs(1), "a lease lasts at least a second");
        LeaseLock { api, name: name.to_string(), identity: identity.to_string(), duration, seen: None }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often the holder renews.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn now() -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::now())
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: Some(acquired.unwrap_or_else(Self::now)),
            renew_time: Some(Self::now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Takes or renews the Lease when allowed. Conflicts (another candidate wrote first) are
    /// not errors: the answer is then `Following`.
    pub async fn try_acquire_or_renew(&mut self) -> kube::Result<Attempt> {
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                spec: Some(self.spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Following(String::new())),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let first_seen = match &self.seen {
            Some((v, at)) if *v == version => *at,
            _ => {
                let now = Instant::now();
                self.seen = Some((version.clone(), now));
                now
            }
        };
        let lease_duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
        let ours = holder.as_deref() == Some(self.identity.as_str());
        let expired = first_seen.elapsed() >= lease_duration;
        if !ours && holder.is_some() && !expired {
            return Ok(Attempt::Following(holder.unwrap_or_default()));
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + if ours { 0 } else { 1 };
        let acquired = if ours { spec.acquire_time.clone() } else { None };
        let mut next = lease.clone();
        next.spec = Some(self.spec(transitions, acquired));
        match self.api.replace(&self.name, &PostParams::default(), &next).await {
            Ok(written) => {
                self.seen = written.metadata.resource_version.map(|v| (v, Instant::now()));
                Ok(Attempt::Leading)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Following(holder.unwrap_or_default())),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (best effort) so another candidate takes over without waiting.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(Self::now());
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.name, "lease released"),
            Err(e) => tracing::warn!(lease = %self.name, error = %e, "releasing the lease failed"),
        }
    }

    /// Waits until this candidate leads, trying every `renew_every`.
    pub async fn acquire(&mut self) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
                    return;
                }
                Ok(Attempt::Following(h)) => {
                    if last_holder.as_ref() != Some(&h) {
                        tracing::info!(lease = %self.name, leader = %h, "another replica leads; standing by");
                        last_holder = Some(h);
                    }
                }
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "lease unavailable; retrying"),
            }
            tokio::time::sleep(self.renew_every()).await;
        }
    }

    /// Renews until a renewal has failed for a whole lease duration (returns then: leadership
    /// is lost) — runs for as long as the process leads.
    pub async fn keep(&mut self) {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.renew_every()).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => last_ok = Instant::now(),
                Ok(Attempt::Following(h)) => {
                    tracing::error!(lease = %self.name, leader = %h, "leadership taken by another replica");
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "renewing the lease failed");
                    // Stop before the lease can expire for the others.
                    if last_ok.elapsed() + self.renew_every() >= self.duration {
                        tracing::error!(lease = %self.name, "could not renew the lease in time");
                        return;
                    }
                }
            }
        }
    }
}
