//! What a joint coverage plan costs the story pipeline: the same stories from the same 20
//! counties, each shared with all of them, once as ordinary stories and once as contributions to
//! a plan those 20 counties joined (4 of them following its channel), through one in-process
//! Bashu (ingest, moderation, distribution, coverage) on a fresh nats-server, measured in the
//! same run, alternating which goes first. The figure is the ratio of the two; the ledger's lag
//! (how long after the last story reached its feeds the coverage ledger had recorded everything)
//! is reported beside it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bashu::{Config, System, Target};
use bashu_bus::{Bus, Subjects, Topology};
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::stats::{Percentiles, Sequence, Summary};

/// Options of the coverage scenario (its command line).
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Participating counties (each story is shared with all of them).
    #[arg(long, default_value_t = 20)]
    pub(crate) participants: usize,
    /// Stories per batch (one batch in the plan, one without, per run).
    #[arg(long, default_value_t = 500)]
    pub(crate) stories: usize,
    /// Clients submitting at once.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Participants following the plan's channel.
    #[arg(long, default_value_t = 4)]
    pub(crate) followers: usize,
    /// Runs; medians and spreads are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
}

/// One batch's figures.
#[derive(Debug, Serialize)]
pub(crate) struct Batch {
    /// Stories per second from the first submission to the last story's feeds.
    pub(crate) per_second: f64,
    /// Submission answered by ingest, in milliseconds.
    pub(crate) submit: Percentiles,
    /// How long after the last story reached its feeds the coverage ledger had read everything,
    /// in milliseconds (the plan's batch: its contributions and channel copies).
    pub(crate) ledger_lag_ms: f64,
}

/// The scenario's result.
#[derive(Debug, Serialize)]
pub(crate) struct CoverageResult {
    pub(crate) participants: usize,
    pub(crate) stories: usize,
    pub(crate) followers: usize,
    pub(crate) without_plan: Vec<Batch>,
    pub(crate) with_plan: Vec<Batch>,
    /// Median stories per second with the plan divided by without: 1.0 costs nothing.
    pub(crate) throughput_ratio: f64,
    pub(crate) submit_without: Summary,
    pub(crate) submit_with: Summary,
    /// The ledger's lag, median over runs, in milliseconds.
    pub(crate) ledger_lag_ms: f64,
}

const OPERATOR_TOKEN: &str = "bench-operator-token";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the scenario.
pub(crate) async fn run(options: &Options) -> anyhow::Result<CoverageResult> {
    anyhow::ensure!((2..=220).contains(&options.participants), "--participants: 2 to 220");
    anyhow::ensure!(options.followers <= options.participants, "--followers: at most --participants");
    let nats = bashu_test_support::NatsServer::start().await;
    let mut config = Config::default();
    config.nats.url = nats.url();
    config.nats.prefix = "bench".into();
    config.http.listen = "127.0.0.1:0".parse()?;
    config.grpc.listen = "127.0.0.1:0".parse()?;
    config.admin.operator_token = bashu_admin::Secret::new(OPERATOR_TOKEN);
    config.ingest.rate_per_minute = 100_000_000;
    config.ingest.rate_burst = 1_000_000;
    let shutdown = CancellationToken::new();
    let targets = [Target::Ingest, Target::Moderation, Target::Distribution, Target::Coverage];
    let system = System::start(&config, &targets, shutdown.clone()).await?;
    let base = format!("http://{}", system.http_addr);
    let bus = Bus::connect(&nats.url(), "bench-observer", Subjects::new("bench")?, Topology::default()).await?;

    // Half from each side of the border.
    let registry = bashu_registry::Counties::builtin()?;
    let counties: Vec<String> = registry
        .within("50")
        .take(options.participants / 2)
        .chain(registry.within("51").take(options.participants - options.participants / 2))
        .map(|c| c.code.clone())
        .collect();
    let county_tokens = bashu_registry::CountyTokens::open(&bus, Arc::new(registry)).await?;
    let mut tokens = std::collections::HashMap::new();
    for county in &counties {
        tokens.insert(county.clone(), county_tokens.issue(county, "bench").await?.token);
    }
    let http = bashu::http_client();
    let post = |county: &str, path: &str, body: Value| {
        http.post(format!("{base}{path}")).bearer_auth(&tokens[county]).json(&body).send()
    };
    let plan = "bench-plan";
    let at = |hours: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::hours(hours);
        t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    let proposal = json!({
        "planId": plan, "topic": "基准测试协同报道", "category": "CATEGORY_MAJOR_PROJECT",
        "windowStart": at(-1), "windowEnd": at(72),
        "phases": [
            {"name": "first", "title": "一", "dueAt": at(24), "kinds": ["CONTRIBUTION_KIND_TEXT"]},
            {"name": "second", "title": "二", "dueAt": at(48), "kinds": ["CONTRIBUTION_KIND_TEXT"]},
        ],
        "invitees": {"counties": counties[1..]},
        "weights": {"proposerSharePercent": 10, "phaseSharePercent": {"first": 50, "second": 40}, "kindPoints": {"text": 10}}
    });
    let steps = std::iter::once((counties[0].clone(), "/v1/coverage/plans".to_owned(), proposal))
        .chain(
            counties[1..]
                .iter()
                .map(|c| (c.clone(), format!("/v1/coverage/plans/{plan}/answer"), json!({"answer": "accepted"}))),
        )
        .chain([(counties[0].clone(), format!("/v1/coverage/plans/{plan}/state"), json!({"state": "active"}))])
        .chain(
            counties[..options.followers]
                .iter()
                .map(|c| (c.clone(), format!("/v1/coverage/plans/{plan}/channel"), json!({"subscribe": true}))),
        );
    for (county, path, body) in steps {
        let response = post(&county, &path, body).await?;
        anyhow::ensure!(response.status().is_success(), "{path}: {}", response.text().await.unwrap_or_default());
    }

    let mut sequence = Sequence(0x9E37_79B9_7F4A_7C15);
    let mut without_plan = Vec::new();
    let mut with_plan = Vec::new();
    for run in 0..options.runs {
        for in_plan in if run % 2 == 0 { [false, true] } else { [true, false] } {
            eprintln!(
                "coverage: run {} of {}, {}",
                run + 1,
                options.runs,
                if in_plan { "in the plan" } else { "no plan" }
            );
            let stories: Vec<(String, Value)> = (0..options.stories)
                .map(|n| {
                    let origin = sequence.pick(&counties).clone();
                    let body: String = (0..300).map(|_| sequence.cjk()).collect();
                    let mut story = json!({
                        "id": format!("bench-{run}-{in_plan}-{n}"), "version": 1, "originCounty": origin,
                        "headline": format!("协同基准 {run}-{n}"), "body": body,
                        "category": "CATEGORY_MAJOR_PROJECT", "sharing": {"counties": counties},
                    });
                    if in_plan {
                        let phase = if n % 2 == 0 { "first" } else { "second" };
                        story["coverage"] = json!({"planId": plan, "phase": phase, "kind": "CONTRIBUTION_KIND_TEXT"});
                    }
                    (origin, story)
                })
                .collect();
            let batch = measure(&bus, &http, &base, &tokens, stories, options.concurrency).await?;
            if in_plan { with_plan.push(batch) } else { without_plan.push(batch) }
        }
    }
    let store = bashu_coverage_core::PlanStore::open(&bus).await?;
    let recorded = store.contributions(plan).await?.iter().filter(|c| !c.approved_versions.is_empty()).count();
    anyhow::ensure!(recorded == options.stories * options.runs, "the ledger recorded {recorded} stories");
    shutdown.cancel();
    system.stopped(Duration::from_secs(10)).await;

    let rate = |batches: &[Batch]| median(batches.iter().map(|b| b.per_second).collect());
    let submits = |batches: &[Batch]| Summary::of(&batches.iter().map(|b| b.submit).collect::<Vec<_>>());
    Ok(CoverageResult {
        participants: options.participants,
        stories: options.stories,
        followers: options.followers,
        throughput_ratio: rate(&with_plan) / rate(&without_plan).max(f64::EPSILON),
        submit_without: submits(&without_plan).context("no samples")?,
        submit_with: submits(&with_plan).context("no samples")?,
        ledger_lag_ms: median(with_plan.iter().map(|b| b.ledger_lag_ms).collect()),
        without_plan,
        with_plan,
    })
}

/// Submits `stories` with `concurrency` clients and waits until every one reached its feeds
/// (its `story.published` record), then until the coverage ledger has read everything.
async fn measure(
    bus: &Bus,
    http: &reqwest::Client,
    base: &str,
    tokens: &std::collections::HashMap<String, String>,
    stories: Vec<(String, Value)>,
    concurrency: usize,
) -> anyhow::Result<Batch> {
    let published = || async {
        let filter = bus.subjects().all_story_published();
        let counts = bus.operations().subject_counts(bashu_bus::STORIES, &filter).await?;
        anyhow::Ok(counts.values().sum::<u64>())
    };
    let before = published().await?;
    let total = stories.len() as u64;
    let started = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(stories)
        .map(|(origin, story)| async move {
            let sent = Instant::now();
            let response =
                http.post(format!("{base}/v1/stories")).bearer_auth(&tokens[&origin]).json(&story).send().await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
            Ok(sent.elapsed())
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<anyhow::Result<Duration>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    while published().await? < before + total {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "the stories did not reach their feeds");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let through = started.elapsed();
    let reached_feeds = Instant::now();
    let stories = bus.subjects().stream_name(bashu_bus::STORIES);
    let stream = bus.jetstream().get_stream(&stories).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("coverage-ledger").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    loop {
        let info = consumer.info().await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        anyhow::ensure!(reached_feeds.elapsed() < Duration::from_secs(600), "the ledger did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Batch {
        per_second: total as f64 / through.as_secs_f64(),
        submit: Percentiles::of(&latencies).context("no submissions")?,
        ledger_lag_ms: reached_feeds.elapsed().as_secs_f64() * 1000.0,
    })
}
