//! Running the bus: health, dead letters, replay, the collaboration report, the audit log,
//! takedowns and moderation's rules.

use std::{path::PathBuf, time::Duration};

use bashu_proto::admin::v1::{
    CollaborationLine, CollaborationReportRequest, DeadLetterRef, GetBusHealthRequest, GetModerationRulesRequest,
    ListAuditEventsRequest, ListDeadLettersRequest, ListTakedownsRequest, ModerationRules, RebuildPoolIndexRequest,
    ReplayRequest, audit_service_client::AuditServiceClient, bus_health_service_client::BusHealthServiceClient,
    dead_letter_service_client::DeadLetterServiceClient, moderation_rules_service_client::ModerationRulesServiceClient,
    pool_index_service_client::PoolIndexServiceClient, replay_service_client::ReplayServiceClient,
    report_service_client::ReportServiceClient, takedown_service_client::TakedownServiceClient,
};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use time::{Date, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description};

use crate::{
    client::{Failure, StaffChannel},
    output::say,
    output::{BEIJING, Out, count, print_table, when},
};

/// `bashuctl dlq …`
#[derive(Subcommand)]
pub(crate) enum DeadLetterCommand {
    /// Every dead letter (or one consumer's).
    List {
        /// Only this consumer's, e.g. distribution.
        #[arg(long, default_value = "")]
        consumer: String,
    },
    /// One dead letter with its payload.
    Show {
        /// Its sequence number (from `bashuctl dlq list`).
        sequence: u64,
    },
    /// Publishes dead letters again on their original subjects (all of them with --all).
    Requeue {
        /// Their sequence numbers (from `bashuctl dlq list`).
        #[arg(required_unless_present = "all")]
        sequences: Vec<u64>,
        /// Every dead letter there is.
        #[arg(long, conflicts_with = "sequences")]
        all: bool,
    },
    /// Removes dead letters for good.
    Discard {
        /// Their sequence numbers (from `bashuctl dlq list`).
        #[arg(required = true)]
        sequences: Vec<u64>,
    },
}

/// `bashuctl replay …`
#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// The county to re-deliver to.
    #[arg(long)]
    county: String,
    /// One story, as `<origin>/<id>`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    story: Option<String>,
    /// Deliveries at or after this time (RFC 3339, or a date meaning 00:00 Beijing time).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Deliveries before this time.
    #[arg(long, requires = "from")]
    to: Option<String>,
}

/// The report's output format.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    /// A table per county with activity, then alliances and the region.
    Table,
    /// Every county, alliance and the region, one line each.
    Csv,
    /// The API's answer as JSON.
    Json,
}

/// `bashuctl report …`
#[derive(Args)]
pub(crate) struct ReportArgs {
    /// A calendar month in Beijing time, e.g. 2026-11.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    month: Option<String>,
    /// Period start (RFC 3339, or a date meaning 00:00 Beijing time).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Period end (exclusive).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// How to print it (`--json` is the same as `--format json`).
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
}

/// `bashuctl rules …`
#[derive(Subcommand)]
pub(crate) enum RulesCommand {
    /// Prints the moderation rules in force (JSON).
    Get,
    /// Checks and replaces the rules from a JSON file.
    Set {
        /// The rules as JSON (see docs/moderation.md).
        file: PathBuf,
    },
}

/// RFC 3339, or `YYYY-MM-DD` meaning midnight in Beijing time.
fn parse_time(flag: &str, value: &str) -> Result<bashu_proto::Timestamp, Failure> {
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| {
            Date::parse(value, format_description!("[year]-[month]-[day]")).map(|d| d.midnight().assume_offset(BEIJING))
        })
        .map_err(|_| Failure::usage(format!("--{flag} {value}: RFC 3339 (2026-11-01T08:00:00+08:00) or a date")))?;
    Ok(bashu_proto::Timestamp { seconds: at.unix_timestamp(), nanos: at.nanosecond() as i32 })
}

/// `YYYY-MM` as the Beijing-time month's start and the next month's start.
fn month(value: &str) -> Result<(bashu_proto::Timestamp, bashu_proto::Timestamp), Failure> {
    let first = Date::parse(&format!("{value}-01"), format_description!("[year]-[month]-[day]"))
        .map_err(|_| Failure::usage(format!("--month {value}: YYYY-MM")))?;
    let next = first
        .replace_day(28)
        .ok()
        .and_then(|d| d.checked_add(time::Duration::days(4)))
        .and_then(|d| d.replace_day(1).ok());
    let next = next.ok_or_else(|| Failure::usage(format!("--month {value}: out of range")))?;
    let at = |d: Date| {
        let t = d.midnight().assume_offset(BEIJING);
        bashu_proto::Timestamp { seconds: t.unix_timestamp(), nanos: 0 }
    };
    Ok((at(first), at(next)))
}

fn spinner(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn progress_bar(total: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}").unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// Runs `bashuctl bus health`.
pub(crate) async fn bus_health(channel: StaffChannel, out: Out, silent_after_seconds: u32) -> Result<(), Failure> {
    let answer = BusHealthServiceClient::new(channel)
        .get_bus_health(GetBusHealthRequest { silent_after_seconds })
        .await?
        .into_inner();
    if out.json {
        return out.print_json(&answer);
    }
    let streams = answer
        .streams
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.messages.to_string(),
                s.bytes.to_string(),
                s.consumers.to_string(),
                when(&s.last_message_at),
            ]
        })
        .collect();
    print_table(&["stream", "messages", "bytes", "consumers", "last message"], streams);
    // Only consumers with something to say: waiting messages or redeliveries.
    let busy: Vec<Vec<String>> = answer
        .consumers
        .iter()
        .filter(|c| c.pending + c.ack_pending + c.redelivered > 0)
        .map(|c| {
            vec![
                c.stream.clone(),
                c.name.clone(),
                c.pending.to_string(),
                c.ack_pending.to_string(),
                c.redelivered.to_string(),
                format!("{}s", c.silent_seconds),
            ]
        })
        .collect();
    if busy.is_empty() {
        say!("no consumer has messages waiting");
    } else {
        print_table(&["stream", "consumer", "pending", "unacked", "redelivered", "silent for"], busy);
    }
    say!("dead letters: {}", answer.dead_letters);
    if answer.not_reading.is_empty() {
        say!("every county is reading");
    } else {
        say!("not reading: {}", answer.not_reading.join(" "));
    }
    Ok(())
}

/// Runs `bashuctl dlq …`.
pub(crate) async fn dead_letters(channel: StaffChannel, out: Out, command: DeadLetterCommand) -> Result<(), Failure> {
    let mut client = DeadLetterServiceClient::new(channel);
    match command {
        DeadLetterCommand::List { consumer } => {
            let answer = client.list_dead_letters(ListDeadLettersRequest { consumer }).await?.into_inner();
            let rows = answer
                .dead_letters
                .iter()
                .map(|d| {
                    vec![
                        d.sequence.to_string(),
                        d.consumer.clone(),
                        d.original_subject.clone(),
                        d.attempts.to_string(),
                        when(&d.dead_at),
                        d.reason.clone(),
                    ]
                })
                .collect();
            out.show(&answer, &["seq", "consumer", "subject", "attempts", "dead at", "reason"], rows)
        }
        DeadLetterCommand::Show { sequence } => {
            let detail = client.get_dead_letter(DeadLetterRef { sequence }).await?.into_inner();
            if out.json {
                return out.print_json(&detail);
            }
            let letter = detail.dead_letter.clone().unwrap_or_default();
            say!(
                "sequence {}\nconsumer {}\nsubject {}\nattempts {}\ntype {}\nreason {}",
                letter.sequence,
                letter.consumer,
                letter.original_subject,
                letter.attempts,
                letter.event_type,
                letter.reason
            );
            if detail.payload_json.is_empty() {
                say!("payload ({} bytes, not decodable as its type)", detail.payload.len());
            } else {
                let pretty = serde_json::from_str::<serde_json::Value>(&detail.payload_json)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or(detail.payload_json);
                say!("payload\n{pretty}");
            }
            Ok(())
        }
        DeadLetterCommand::Requeue { mut sequences, all } => {
            if all {
                let listed = client.list_dead_letters(ListDeadLettersRequest::default()).await?.into_inner();
                sequences = listed.dead_letters.iter().map(|d| d.sequence).collect();
            }
            if sequences.is_empty() {
                return out.say(&serde_json::json!({ "requeued": [] }), "no dead letters: nothing to requeue");
            }
            let bar = progress_bar(sequences.len() as u64, "requeue");
            let mut done = Vec::new();
            for sequence in sequences {
                let answer = client.requeue_dead_letter(DeadLetterRef { sequence }).await;
                bar.inc(1);
                done.push(serde_json::json!({ "sequence": sequence, "subject": answer?.into_inner().subject }));
            }
            bar.finish_and_clear();
            out.say(
                &serde_json::json!({ "requeued": done }),
                format!("{} requeued", count(done.len() as u64, "dead letter", "dead letters")),
            )
        }
        DeadLetterCommand::Discard { sequences } => {
            for &sequence in &sequences {
                client.discard_dead_letter(DeadLetterRef { sequence }).await?;
            }
            out.say(
                &serde_json::json!({ "discarded": sequences }),
                format!("{} discarded", count(sequences.len() as u64, "dead letter", "dead letters")),
            )
        }
    }
}

/// Runs `bashuctl replay`.
pub(crate) async fn replay(channel: StaffChannel, out: Out, args: ReplayArgs) -> Result<(), Failure> {
    let mut request = ReplayRequest { county: args.county.clone(), ..Default::default() };
    match (&args.story, &args.from, &args.to) {
        (Some(story), None, None) => {
            let (origin, id) =
                story.split_once('/').ok_or_else(|| Failure::usage("--story <origin county>/<story id>"))?;
            request.origin_county = origin.to_owned();
            request.story_id = id.to_owned();
        }
        (None, Some(from), Some(to)) => {
            request.from = Some(parse_time("from", from)?);
            request.to = Some(parse_time("to", to)?);
        }
        _ => return Err(Failure::usage("give --story, or --from and --to")),
    }
    let mut stream = ReplayServiceClient::new(channel).replay(request).await?.into_inner();
    let bar = progress_bar(0, "replay");
    let mut last = None;
    while let Some(progress) = stream.message().await? {
        bar.set_length(progress.total.max(progress.scanned));
        bar.set_position(progress.scanned);
        last = Some(progress);
    }
    bar.finish_and_clear();
    let last = last.ok_or_else(|| Failure::new(1, "the replay ended without a result"))?;
    out.say(
        &last,
        format!(
            "{} re-sent to {} ({} looked at)",
            count(last.replayed, "delivery", "deliveries"),
            args.county,
            count(last.scanned, "message", "messages")
        ),
    )
}

/// `bashuctl pool …`.
#[derive(Subcommand)]
pub(crate) enum PoolCommand {
    /// Empties every distribution replica's content pool index and builds it again from the
    /// streams, with a progress bar, until each has caught up.
    Reindex,
}

/// Runs `bashuctl pool …`.
pub(crate) async fn pool(channel: StaffChannel, out: Out, command: PoolCommand) -> Result<(), Failure> {
    let PoolCommand::Reindex = command;
    let mut stream =
        PoolIndexServiceClient::new(channel).rebuild_pool_index(RebuildPoolIndexRequest {}).await?.into_inner();
    let bar = progress_bar(0, "reindex");
    let mut last = None;
    while let Some(progress) = stream.message().await? {
        let target: u64 = progress.replicas.iter().map(|r| r.target).sum();
        let read: u64 = progress.replicas.iter().map(|r| r.read.min(r.target)).sum();
        bar.set_length(target.max(read));
        bar.set_position(read);
        last = Some(progress);
    }
    bar.finish_and_clear();
    let last = last.ok_or_else(|| Failure::new(1, "the rebuild ended without a result"))?;
    if !last.done {
        return Err(Failure::new(1, "the rebuild ended before every replica had caught up"));
    }
    out.say(
        &last,
        format!(
            "{} rebuilt: {}",
            count(last.replicas.len() as u64, "replica", "replicas"),
            last.replicas.iter().map(|r| format!("{} ({} read)", r.replica, r.read)).collect::<Vec<_>>().join(", ")
        ),
    )
}

fn report_row(line: &CollaborationLine) -> Vec<String> {
    let alerts = line.alerts.unwrap_or_default();
    vec![
        line.id.clone(),
        line.name.clone(),
        line.contributed.to_string(),
        line.contributed_cross_province.to_string(),
        line.received.to_string(),
        line.received_cross_province.to_string(),
        line.reused.to_string(),
        line.corrections_issued.to_string(),
        line.corrections_received.to_string(),
        line.kills_confirmed.to_string(),
        alerts.targeted.to_string(),
        alerts.received.to_string(),
        alerts.acknowledged.to_string(),
        alerts.missed.to_string(),
        alerts.receipt_median_ms.to_string(),
        alerts.receipt_p95_ms.to_string(),
        alerts.ack_median_ms.to_string(),
        alerts.ack_p95_ms.to_string(),
        line.joint_plans.to_string(),
        line.joint_contributed.to_string(),
        line.joint_received.to_string(),
    ]
}

const REPORT_HEADER: [&str; 21] = [
    "id",
    "name",
    "contributed",
    "contributed_cross_province",
    "received",
    "received_cross_province",
    "reused",
    "corrections_issued",
    "corrections_received",
    "kills_confirmed",
    "alerts_targeted",
    "alerts_received",
    "alerts_acknowledged",
    "alerts_missed",
    "receipt_median_ms",
    "receipt_p95_ms",
    "ack_median_ms",
    "ack_p95_ms",
    "joint_plans",
    "joint_contributed",
    "joint_received",
];

/// Runs `bashuctl report`.
pub(crate) async fn report(channel: StaffChannel, out: Out, args: ReportArgs) -> Result<(), Failure> {
    let (from, to) = match (&args.month, &args.from, &args.to) {
        (Some(m), None, None) => month(m)?,
        (None, Some(from), Some(to)) => (parse_time("from", from)?, parse_time("to", to)?),
        _ => return Err(Failure::usage("give --month, or --from and --to")),
    };
    let bar = spinner("compiling the report from the ledgers");
    let answer = ReportServiceClient::new(channel)
        .get_collaboration_report(CollaborationReportRequest { from: Some(from), to: Some(to) })
        .await;
    bar.finish_and_clear();
    let report = answer?.into_inner();
    let region = report.region.clone().unwrap_or_default();
    // `--json` means JSON for every command, this one included.
    let format = if out.json { ReportFormat::Json } else { args.format };
    match format {
        ReportFormat::Json => out.print_json(&report),
        ReportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(std::io::stdout());
            let mut header = vec!["kind"];
            header.extend(REPORT_HEADER);
            let rows = report
                .counties
                .iter()
                .map(|l| ("county", l))
                .chain(report.alliances.iter().map(|l| ("alliance", l)))
                .chain(std::iter::once(("region", &region)));
            let write = |writer: &mut csv::Writer<std::io::Stdout>| -> csv::Result<()> {
                writer.write_record(&header)?;
                for (kind, line) in rows {
                    let mut record = vec![kind.to_owned()];
                    record.extend(report_row(line));
                    writer.write_record(&record)?;
                }
                writer.flush()?;
                Ok(())
            };
            write(&mut writer).map_err(|e| match e.kind() {
                csv::ErrorKind::Io(io) => crate::output::stdout_failed(io),
                _ => Failure::new(1, format!("cannot write CSV: {e}")),
            })
        }
        ReportFormat::Table => {
            say!("collaboration report {} – {}", when(&report.from), when(&report.to));
            let header = [
                "id",
                "name",
                "given",
                "↳ cross",
                "taken",
                "↳ cross",
                "reused",
                "corr. out",
                "corr. in",
                "kills ok",
                "alerts",
                "received",
                "acked",
                "missed",
                "receipt p50 ms",
                "receipt p95 ms",
                "ack p50 ms",
                "ack p95 ms",
                "joint plans",
                "joint given",
                "joint taken",
            ];
            let active = report
                .counties
                .iter()
                .filter(|l| {
                    l.contributed + l.received + l.kills_confirmed > 0 || l.alerts.is_some_and(|a| a.targeted > 0)
                })
                .map(report_row)
                .collect();
            print_table(&header, active);
            print_table(&header, report.alliances.iter().map(report_row).collect());
            print_table(&header, vec![report_row(&region)]);
            Ok(())
        }
    }
}

/// Runs `bashuctl audit`.
pub(crate) async fn audit(channel: StaffChannel, out: Out, limit: u32) -> Result<(), Failure> {
    let answer =
        AuditServiceClient::new(channel).list_audit_events(ListAuditEventsRequest { limit }).await?.into_inner();
    let rows = answer
        .events
        .iter()
        .map(|e| {
            vec![
                when(&e.at),
                e.actor.clone(),
                e.method.rsplit('/').next().unwrap_or_default().to_owned(),
                e.target.clone(),
            ]
        })
        .collect();
    out.show(&answer, &["at", "who", "what", "target"], rows)
}

/// Runs `bashuctl takedowns`.
pub(crate) async fn takedowns(channel: StaffChannel, out: Out, missing_only: bool) -> Result<(), Failure> {
    let answer =
        TakedownServiceClient::new(channel).list_takedowns(ListTakedownsRequest { missing_only }).await?.into_inner();
    let rows = answer
        .takedowns
        .iter()
        .map(|t| {
            let confirmed: Vec<&str> = t.confirmed.iter().map(|c| c.county.as_str()).collect();
            vec![
                format!("{}/{}", t.origin_county, t.story_id),
                when(&t.killed_at),
                confirmed.join(" "),
                t.missing.join(" "),
            ]
        })
        .collect();
    out.show(&answer, &["story", "killed", "confirmed", "missing"], rows)
}

/// Runs `bashuctl rules …`.
pub(crate) async fn rules(channel: StaffChannel, out: Out, command: RulesCommand) -> Result<(), Failure> {
    let mut client = ModerationRulesServiceClient::new(channel);
    let rules = match command {
        RulesCommand::Get => client.get_moderation_rules(GetModerationRulesRequest {}).await?.into_inner(),
        RulesCommand::Set { file } => {
            let json =
                std::fs::read_to_string(&file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
            client.set_moderation_rules(ModerationRules { json, effective_json: String::new() }).await?.into_inner()
        }
    };
    let text = format!("stored:\n{}\n\nin force (every default filled in):\n{}", rules.json, rules.effective_json);
    out.say(&rules, text)
}
