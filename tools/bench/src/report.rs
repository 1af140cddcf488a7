//! How each scenario's figures are printed: a table for people, JSON (with the machine) for
//! tools.

use crate::{
    alerts, coverage, lexicon, pipeline, pool,
    stats::{self, Summary},
};

/// Prints `figures` under `key` as JSON with the machine they were measured on.
pub(crate) fn json(key: &str, figures: impl serde::Serialize) -> anyhow::Result<()> {
    let mut document = serde_json::json!({ "machine": machine() });
    document[key] = serde_json::to_value(figures)?;
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    serde_json::json!({
        "cpus": cpus,
        "placement": "nats-server, Bashu and the subscribers unpinned, on one machine over loopback",
        "message_bytes": alerts::message_bytes(),
    })
}

pub(crate) fn print_alerts(results: &[alerts::LayoutResult], options: &alerts::Options) {
    let machine = machine();
    println!(
        "alert fan-out, accepted → last subscriber; {} alert replicas; {} alerts × {} runs, {} B each; medians (p99 range over runs); {} CPUs, {}",
        options.replicas,
        options.iterations,
        options.runs,
        machine["message_bytes"],
        machine["cpus"],
        machine["placement"].as_str().unwrap_or("")
    );
    println!(
        "{:<14} {:<16} {:>9} {:>9} {:>9} {:>19} {:>12}",
        "layout", "path", "p50 ms", "p99 ms", "max ms", "p99 range", "Bashu p99 ×"
    );
    for result in results {
        let layout = format!("{}×{} conns", result.layout.subscribers, result.layout.connections);
        let bashu_p99 = result.bashu.as_ref().ok().map(|s| s.median.p99);
        for (path, summary) in [
            ("Bashu live", &result.bashu),
            ("raw core NATS", &result.raw_core),
            ("raw JetStream", &result.raw_jetstream),
        ] {
            match summary {
                Ok(Summary { median, p99_min, p99_max, .. }) => {
                    let ratio = match (path, bashu_p99) {
                        ("Bashu live", _) | (_, None) => String::new(),
                        (_, Some(bashu)) => format!("{:.2}", bashu / median.p99),
                    };
                    println!(
                        "{layout:<14} {path:<16} {:>9.2} {:>9.2} {:>9.2} {:>19} {ratio:>12}",
                        median.p50,
                        median.p99,
                        median.max,
                        format!("{p99_min:.2}–{p99_max:.2}")
                    );
                }
                Err(reason) => println!("{layout:<14} {path:<16} not measured: {reason}"),
            }
        }
    }
    println!("targets: Bashu p99 within 1.5× raw JetStream and 2× raw core NATS");
}

pub(crate) fn print_pipeline(result: &pipeline::PipelineResult, options: &pipeline::Options) {
    let machine = machine();
    println!(
        "story pipeline, ingest → moderation → distribution → county feed, each service its own process; \
         {} B stories; nats-server fsync {}; {} runs; medians (range over runs); {} CPUs, {}",
        result.story_bytes,
        if result.sync_always { "before every ack (sync_interval: always)" } else { "by default (every 2 min)" },
        options.runs,
        machine["cpus"],
        machine["placement"].as_str().unwrap_or("")
    );
    println!(
        "raw: three JetStream hops, each acking its input after its re-publish is acknowledged; \
         concurrent: up to 64 messages per hop at once (the ratio's baseline); one at a time: the earlier baseline"
    );
    let rate = |r: &pipeline::Rate| format!("{:.0} ({:.0}–{:.0})", r.median, r.min, r.max);
    let mut header = format!("{:<40}", "figure");
    for bashu in &result.bashu {
        header.push_str(&format!(" {:>20}", format!("Bashu ×{}", bashu.replicas)));
    }
    header.push_str(&format!(" {:>20} {:>20}", "raw concurrent", "raw one at a time"));
    for bashu in &result.bashu {
        header.push_str(&format!(" {:>9}", format!("ratio ×{}", bashu.replicas)));
    }
    println!("{header}");
    let row = |name: String, cell: &dyn Fn(&pipeline::PathFigures) -> (String, f64)| {
        let mut line = format!("{name:<40}");
        let (raw_text, raw_value) = cell(&result.raw);
        for bashu in &result.bashu {
            line.push_str(&format!(" {:>20}", cell(&bashu.figures).0));
        }
        line.push_str(&format!(" {:>20} {:>20}", raw_text, cell(&result.raw_sequential).0));
        for bashu in &result.bashu {
            let value = cell(&bashu.figures).1;
            line.push_str(&format!(" {:>9.2}", value / raw_value));
        }
        println!("{line}");
    };
    row(format!("sustained stories/s end to end ({} cl.)", options.concurrency), &|f| {
        (rate(&f.end_to_end_per_second), f.end_to_end_per_second.median)
    });
    row("ingest stories/s accepted (same phase)".into(), &|f| {
        (rate(&f.accepted_per_second), f.accepted_per_second.median)
    });
    for (name, pick) in [("p50", 0), ("p99", 1), ("max", 2)] {
        let value = move |s: &Summary| [s.median.p50, s.median.p99, s.median.max][pick];
        row(format!("at {}/s, end to end {name} ms", options.rate), &|f| {
            (format!("{:.2}", value(&f.paced)), value(&f.paced))
        });
    }
    row(format!("at {}/s, p99 range over runs ms", options.rate), &|f| {
        (format!("{:.2}–{:.2}", f.paced.p99_min, f.paced.p99_max), f.paced.p99_max)
    });
    println!();
    println!("where a paced story's time goes (p50 / p99 ms, from the streams' storage times, last run)");
    println!("{:<20} {:>18} {:>18} {:>18}", "Bashu", "ingest", "moderation", "distribution");
    for bashu in &result.bashu {
        if let Some(budget) = &bashu.figures.budget {
            let cell = |p: &stats::Percentiles| format!("{:.2} / {:.2}", p.p50, p.p99);
            println!(
                "{:<20} {:>18} {:>18} {:>18}",
                format!("×{}", bashu.replicas),
                cell(&budget.ingest),
                cell(&budget.moderation),
                cell(&budget.distribution)
            );
        }
    }
    println!();
    println!("CPU per story, ms (all replicas of a service added up; the whole measurement)");
    for bashu in &result.bashu {
        let cells: Vec<String> = bashu.cpu_ms_per_story.iter().map(|(name, ms)| format!("{name} {ms:.2}")).collect();
        println!("{:<20} {}", format!("Bashu ×{}", bashu.replicas), cells.join(", "));
    }
    println!();
    println!(
        "region-wide story at {}/s, submitted → last of its {} feeds (raw: {} copies published, each acknowledged)",
        options.region_rate, result.region_copies, result.region_copies
    );
    println!("{:<20} {:>10} {:>10} {:>10} {:>12}", "path", "p50 ms", "p99 ms", "max ms", "p99 ratio");
    for bashu in &result.bashu {
        let s = &bashu.region;
        println!(
            "{:<20} {:>10.2} {:>10.2} {:>10.2} {:>12.2}",
            format!("Bashu ×{}", bashu.replicas),
            s.median.p50,
            s.median.p99,
            s.median.max,
            s.median.p99 / result.raw_region.median.p99
        );
    }
    let raw = &result.raw_region;
    println!("{:<20} {:>10.2} {:>10.2} {:>10.2}", "raw 219 copies", raw.median.p50, raw.median.p99, raw.median.max);
    println!(
        "targets: throughput ≥ 0.8× raw, p99 ≤ 2× raw, ingest ≥ 0.8× raw publish, region-wide p99 ≤ 2× raw copies"
    );
    println!();
    println!("{:<14} {:>10} {:>14}", "service", "idle MiB", "load peak MiB");
    for memory in &result.memory {
        println!("{:<14} {:>10.1} {:>14.1}", memory.target, memory.idle_mib, memory.load_peak_mib);
    }
    println!("target: each service under 50 MiB resident when idle (one replica each)");
}

pub(crate) fn print_lexicon(rates: &[lexicon::ScanRate]) {
    println!("lexicon scan (normalisation and Aho–Corasick), one thread");
    println!("{:>8} {:>12} {:>10} {:>6}", "terms", "body bytes", "MB/s", "hits");
    for rate in rates {
        println!("{:>8} {:>12} {:>10.1} {:>6}", rate.terms, rate.body_bytes, rate.mb_per_second, rate.hits);
    }
}

pub(crate) fn print_pool(result: &pool::PoolResult) {
    println!(
        "content pool: {} generated Chinese stories, {} bytes each on average",
        result.stories, result.average_story_bytes
    );
    println!("{:<28} {:>14} {:>14} {:>8}", "", "bashu", "bare tantivy", "ratio");
    println!(
        "{:<28} {:>14.0} {:>14.0} {:>8.2}",
        "indexing, stories/s", result.bashu.stories_per_second, result.bare.stories_per_second, result.indexing_ratio
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{:<28} {:>14.1} {:>14.1} {:>8.2}",
        "index on disk, MiB",
        mib(result.bashu.bytes_on_disk),
        mib(result.bare.bytes_on_disk),
        result.bashu.bytes_on_disk as f64 / result.bare.bytes_on_disk.max(1) as f64
    );
    println!(
        "{:<28} {:>14.0} {:>14.0}",
        "resident memory added, MiB", result.bashu.resident_added_mib, result.bare.resident_added_mib
    );
    println!("{:<28} {:>14.0}", "jieba dictionary, MiB", result.dictionary_resident_mib);
    println!("{:<28} {:>14} {:>14} {:>8}", "query (ms)", "p50 / p99", "p50 / p99", "p99");
    for query in &result.queries {
        println!(
            "{:<28} {:>14} {:>14} {:>8.2}",
            query.kind,
            format!("{:.2} / {:.2}", query.bashu.p50, query.bashu.p99),
            format!("{:.2} / {:.2}", query.bare.p50, query.bare.p99),
            query.p99_ratio
        );
    }
}

pub(crate) fn print_coverage(result: &coverage::CoverageResult) {
    println!(
        "joint coverage: {} stories per batch from {} counties, each shared with all of them; {} follow the channel",
        result.stories, result.participants, result.followers
    );
    println!("{:<34} {:>14} {:>14} {:>8}", "", "no plan", "in the plan", "ratio");
    let rates = |batches: &[coverage::Batch]| {
        let mut rates: Vec<f64> = batches.iter().map(|b| b.per_second).collect();
        rates.sort_by(f64::total_cmp);
        rates
    };
    let (without, with) = (rates(&result.without_plan), rates(&result.with_plan));
    let median = |rates: &[f64]| rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{:<34} {:>14.0} {:>14.0} {:>8.2}",
        "stories/s to every feed (median)",
        median(&without),
        median(&with),
        result.throughput_ratio
    );
    println!(
        "{:<34} {:>14} {:>14}",
        "  spread over runs",
        format!("{:.0}–{:.0}", without.first().unwrap_or(&0.0), without.last().unwrap_or(&0.0)),
        format!("{:.0}–{:.0}", with.first().unwrap_or(&0.0), with.last().unwrap_or(&0.0))
    );
    println!(
        "{:<34} {:>14} {:>14} {:>8.2}",
        "submission answered, ms p50 / p99",
        format!("{:.1} / {:.1}", result.submit_without.median.p50, result.submit_without.median.p99),
        format!("{:.1} / {:.1}", result.submit_with.median.p50, result.submit_with.median.p99),
        result.submit_with.median.p99 / result.submit_without.median.p99.max(f64::EPSILON)
    );
    println!("{:<34} {:>14} {:>14.0}", "ledger done after the feeds, ms", "", result.ledger_lag_ms);
}
