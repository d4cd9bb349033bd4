//! `ticklake bench`: figures, not tests. See BENCHMARKS.md for how to run and read them.

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// Which benchmark: `simulator`, `encode`.
    #[arg(default_value = "simulator")]
    which: String,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    anyhow::bail!("benchmark {:?} is not available", args.which)
}
