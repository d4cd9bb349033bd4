//! `ticklake notify …`: reads the local runner's notification outbox
//! (`<data-dir>/notify/outbox.sqlite`) — the delivery log, the dead letters — and redrives
//! dead letters. Safe while the runner is going (SQLite in WAL mode): a redriven message is
//! picked up by its next delivery round.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use ticklake_notify::notifier::{now_ms, redact};
use ticklake_notify::outbox::Outbox;

#[derive(Args)]
pub struct NotifyArgs {
    /// Local runner data folder.
    #[arg(long, default_value = ".ticklake", env = "TICKLAKE_DATA_DIR", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    cmd: NotifyCmd,
}

#[derive(Subcommand)]
enum NotifyCmd {
    /// The delivery log, newest first: every attempt, confirmation and unsubscription.
    Deliveries {
        /// Lines at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The subscribed endpoints and their states.
    Endpoints,
    /// Messages that exhausted their attempts or age, with their last error.
    DeadLetters {
        #[arg(long)]
        json: bool,
    },
    /// Puts dead letters back in the queue with a fresh attempt count: the given ids, or all.
    Redrive {
        /// Outbox ids (the first column of `dead-letters`).
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

fn protocol(name: &str) -> Option<ticklake_api::crd::Protocol> {
    serde_json::from_value(serde_json::Value::from(name)).ok()
}

fn shown(proto: &str, address: &str) -> String {
    protocol(proto).map(|p| redact(p, address)).unwrap_or_else(|| address.to_string())
}

fn time(ms: i64) -> String {
    ticklake_notify::event::rfc3339(ms)
}

pub fn run(args: NotifyArgs) -> Result<()> {
    let path = args.data_dir.join("notify").join("outbox.sqlite");
    if !path.exists() {
        bail!("no notification outbox at {} (has `ticklake local up` run AlertSubscriptions here?)", path.display());
    }
    let outbox = Outbox::open(&path, u64::MAX).with_context(|| format!("opening {}", path.display()))?;
    match args.cmd {
        NotifyCmd::Deliveries { limit, json } => {
            for l in outbox.log(limit.min(100_000))? {
                let address = shown(&l.protocol, &l.address);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"time": time(l.ts_ms), "subscription": l.subscription, "protocol": l.protocol,
                            "endpoint": address, "message": l.message_id, "attempt": l.attempt, "outcome": l.outcome, "detail": l.detail})
                    );
                } else {
                    println!(
                        "{}  {:<12} {:<20} {:<10} {:<36} #{:<3} {}  {}",
                        time(l.ts_ms),
                        l.outcome,
                        l.subscription,
                        l.protocol,
                        l.message_id,
                        l.attempt,
                        address,
                        l.detail
                    );
                }
            }
        }
        NotifyCmd::Endpoints => {
            for e in outbox.endpoints()? {
                println!(
                    "{:<5} {:<20} {:<10} {:<20} {}",
                    e.id,
                    e.subscription,
                    e.protocol,
                    e.state,
                    shown(&e.protocol, &e.address)
                );
            }
        }
        NotifyCmd::DeadLetters { json } => {
            let endpoints = outbox.endpoints()?;
            for m in outbox.dead_letters()? {
                let ep = endpoints.iter().find(|e| e.id == m.endpoint_id);
                let (sub, address) =
                    ep.map(|e| (e.subscription.clone(), shown(&e.protocol, &e.address))).unwrap_or_default();
                let err = m.last_error.unwrap_or_default();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"id": m.id, "subscription": sub, "endpoint": address, "message": m.message_id,
                            "kind": m.kind, "attempts": m.attempts, "queued": time(m.created_ms), "lastError": err})
                    );
                } else {
                    println!(
                        "{:<6} {:<20} {:<36} {:<8} attempts={:<3} queued={}  {}  last error: {}",
                        m.id,
                        sub,
                        m.message_id,
                        m.kind,
                        m.attempts,
                        time(m.created_ms),
                        address,
                        err
                    );
                }
            }
        }
        NotifyCmd::Redrive { ids, all } => {
            if ids.is_empty() && !all {
                bail!("give --id <ID> (repeatable) or --all");
            }
            let n = outbox.redrive(if all { None } else { Some(&ids) }, now_ms())?;
            println!("redriven: {n}");
            if !all && (n as usize) < ids.len() {
                bail!("{} of the given ids are not dead letters", ids.len() - n as usize);
            }
        }
    }
    Ok(())
}
