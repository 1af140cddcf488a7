//! `bashu-bench`: Bashu's figures on loopback beside the raw NATS figures of the same traffic,
//! measured in the same run, so that each result is a ratio and not a noisy absolute.

mod alerts;
mod coverage;
mod lexicon;
mod pipeline;
mod pool;
mod processes;
mod report;
mod stats;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bashu-bench", version, about = "Bashu beside raw NATS, in one run")]
struct Cli {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Alert fan-out: accepted → the last subscriber has it.
    Alerts {
        /// Replicas of the alert service; the desk's alerts are spread over them.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// Layouts as SUBSCRIBERSxCONNECTIONS.
        #[arg(long, value_delimiter = ',', default_value = "220x4,220x220,2000x4")]
        layouts: Vec<alerts::Layout>,
        /// Alerts per run and path.
        #[arg(long, default_value_t = 100)]
        iterations: u64,
        /// Runs; medians and the spread of p99 are reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Pause between alerts, in milliseconds.
        #[arg(long, default_value_t = 20)]
        pace_ms: u64,
    },
    /// The story pipeline (and ingest, and each service's memory) beside a raw three-hop
    /// JetStream pipeline; needs the `bashu` binary beside this one or in BENCH_BASHU_BINARY.
    Pipeline(pipeline::Options),
    /// The shared content pool: indexing rate, size, memory and search latency, beside a bare
    /// tantivy index of the same stories.
    Pool(pool::Options),
    /// What a joint coverage plan costs the story pipeline: the same stories in a plan of 20
    /// counties and outside it, in one run.
    Coverage(coverage::Options),
    /// Moderation's lexicon scan rate (MB/s), normalisation included.
    Lexicon {
        /// Terms in the lexicon.
        #[arg(long, default_value_t = 30_000)]
        terms: usize,
        /// Body sizes in bytes.
        #[arg(long, value_delimiter = ',', default_value = "2000,20000,200000")]
        body_bytes: Vec<usize>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.scenario {
        Scenario::Alerts { replicas, layouts, iterations, runs, pace_ms } => {
            let options = alerts::Options { replicas, layouts, iterations, runs, pace: Duration::from_millis(pace_ms) };
            let results = runtime.block_on(alerts::run(&options))?;
            if cli.json {
                report::json("alerts", &results)?;
            } else {
                report::print_alerts(&results, &options);
            }
        }
        Scenario::Pipeline(options) => {
            let result = runtime.block_on(pipeline::run(&options))?;
            if cli.json {
                report::json("pipeline", &result)?;
            } else {
                report::print_pipeline(&result, &options);
            }
        }
        Scenario::Pool(options) => {
            let result = pool::run(&options)?;
            if cli.json {
                report::json("pool", &result)?;
            } else {
                report::print_pool(&result);
            }
        }
        Scenario::Coverage(options) => {
            let result = runtime.block_on(coverage::run(&options))?;
            if cli.json {
                report::json("coverage", &result)?;
            } else {
                report::print_coverage(&result);
            }
        }
        Scenario::Lexicon { terms, body_bytes } => {
            let rates = lexicon::run(terms, &body_bytes);
            if cli.json {
                report::json("lexicon", &rates)?;
            } else {
                report::print_lexicon(&rates);
            }
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
