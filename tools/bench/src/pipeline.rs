//! The story pipeline, ingest → moderation → distribution → a county's feed, with each service
//! its own process (one, then several replicas of each), beside raw three-hop JetStream pipelines
//! with the same acknowledgement rules (a hop acks its input only after its own publish is
//! acknowledged), driven the same way in the same run: one whose hops handle many messages at
//! once (the guarantees Bashu's keyed consumers give; the baseline the ratios use) and one whose
//! hops handle one at a time (the earlier baseline, for comparison).
//!
//! Two shapes of traffic per path: as fast as `concurrency` clients are answered (sustained
//! stories per second, and the rate at which the first hop accepts them: the ingest figure), and
//! a fixed rate (end-to-end p50/p99 from the moment each story was due). Then a region-wide story
//! (shared with every county) from submission to the last of its 219 feeds, beside raw JetStream
//! publishing the same 219 copies.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context as _;
use async_nats::jetstream;
use bashu_bus::{Bus, Subjects, Topology};
use bashu_proto::story::v1::StoryDelivery;
use futures::{StreamExt, future::BoxFuture};
use prost::Message as _;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{
    processes::{Memory, PeakSampler, Service, mib},
    stats::{Percentiles, Summary},
};

const ORIGIN: &str = "511083";
const RECEIVER: &str = "500153";
const OPERATOR_TOKEN: &str = "bench-operator-token";

/// Options of the pipeline scenario (its command line).
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Stories per run in the sustained phase.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) stories: usize,
    /// Clients sending at once in the sustained phase.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Stories per second in the paced phase (below what the machine sustains, or the latency
    /// measured is the backlog's).
    #[arg(long, default_value_t = 200)]
    pub(crate) rate: u64,
    /// Length of the paced phase, in seconds.
    #[arg(long, default_value_t = 5)]
    pub(crate) paced_seconds: u64,
    /// Runs; medians and spreads are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Start nats-server with `sync_interval: always` (fsync before every acknowledgement), as
    /// production runs it.
    #[arg(long)]
    pub(crate) sync_always: bool,
    /// Replicas of each pipeline service (ingest, moderation, distribution), one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    pub(crate) replicas: Vec<usize>,
    /// Region-wide stories (shared with all 220 counties) per run.
    #[arg(long, default_value_t = 40)]
    pub(crate) region_stories: usize,
    /// Region-wide stories per second.
    #[arg(long, default_value_t = 5)]
    pub(crate) region_rate: u64,
}

/// The median, smallest and largest of a rate over runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Rate {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Rate {
    fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

/// One path's figures over runs.
#[derive(Debug, Serialize)]
pub(crate) struct PathFigures {
    /// Stories (messages) per second through the whole pipeline, sustained.
    pub(crate) end_to_end_per_second: Rate,
    /// Stories accepted by the first hop per second in the same phase (ingest; raw publish).
    pub(crate) accepted_per_second: Rate,
    /// End-to-end latency at the fixed rate.
    pub(crate) paced: Summary,
    /// Where the paced stories' time went (Bashu only; the last run).
    pub(crate) budget: Option<Budget>,
}

/// Bashu's figures with some replicas of each pipeline service.
#[derive(Debug, Serialize)]
pub(crate) struct Replicated {
    pub(crate) replicas: usize,
    pub(crate) figures: PathFigures,
    /// A region-wide story, submitted → the last of its feeds.
    pub(crate) region: Summary,
    /// CPU milliseconds per story, per service (all its replicas) and for nats-server, over the
    /// whole measurement (sustained, paced and region-wide stories alike).
    pub(crate) cpu_ms_per_story: Vec<(String, f64)>,
}

/// The scenario's result.
#[derive(Debug, Serialize)]
pub(crate) struct PipelineResult {
    pub(crate) story_bytes: usize,
    pub(crate) sync_always: bool,
    pub(crate) bashu: Vec<Replicated>,
    /// Hops handling many messages at once: the baseline.
    pub(crate) raw: PathFigures,
    /// Hops handling one message at a time.
    pub(crate) raw_sequential: PathFigures,
    /// Raw JetStream publishing a region-wide story's 219 copies, each acknowledged.
    pub(crate) raw_region: Summary,
    pub(crate) region_copies: usize,
    pub(crate) memory: Vec<Memory>,
}

/// Sends one item with the given id; true once it was accepted.
type Submit = Arc<dyn Fn(String) -> BoxFuture<'static, bool> + Send + Sync>;
/// An id seen at the end of the pipeline, and when.
type Arrival = (String, Instant);

pub(crate) async fn run(options: &Options) -> anyhow::Result<PipelineResult> {
    let binary = crate::processes::bashu_binary()?;
    let nats = if options.sync_always {
        // What k8s/nats/values.yaml runs in production (docs/deploy.md).
        bashu_test_support::NatsServer::start_with_config(None, "jetstream { sync_interval: always }").await
    } else {
        bashu_test_support::NatsServer::start().await
    };
    let prefix = "bench";
    let subjects = Subjects::new(prefix)?;
    let bus = Bus::connect(&nats.url(), "bench", subjects.clone(), Topology::default()).await?;
    bus.provision().await?;
    let counties = Arc::new(bashu_registry::Counties::builtin()?);
    let region_copies = counties.all().len() - 1;
    let token = bashu_registry::CountyTokens::open(&bus, counties).await?.issue(ORIGIN, "bench").await?.token;
    let client = async_nats::connect(nats.url()).await?;
    let story_bytes = story(&"x".repeat(24), false).to_string().len();
    let nats_pid = nats.pid();

    let mut bashu = Vec::new();
    let mut memory = Vec::new();
    for &replicas in &options.replicas {
        let set = ServiceSet::start(&binary, &nats.url(), prefix, replicas).await?;
        let sampler = (memory.is_empty()).then(|| PeakSampler::start(set.pids()));
        let idle: Vec<u64> = set.services.iter().map(|s| s.resident_bytes().unwrap_or(0)).collect();
        if sampler.is_some() {
            alerts_and_admin_load(&bus, set.first("alerts"), set.first("admin")).await?;
        }
        let mut runs = Runs::default();
        let mut region = Vec::new();
        let cpu_before = set.cpu_seconds(nats_pid);
        for run in 0..options.runs {
            eprintln!("pipeline, {replicas} replica(s) of each service: run {} of {}", run + 1, options.runs);
            let feeds = client.subscribe(subjects.all_feeds()).await?;
            client.flush().await?;
            let mut arrivals = arrivals_of(feeds, |payload| Some(StoryDelivery::decode(payload).ok()?.story?.id));
            let submit = bashu_submit(&set.ingest_urls(), &token);
            runs.measure(submit.clone(), &mut arrivals, &format!("b{replicas}-{run}"), options, Some(&bus)).await?;
            let tag = format!("g{replicas}-{run}");
            let (latency, _) =
                paced(&submit, &mut arrivals, &tag, options.region_stories, options.region_rate, region_copies).await?;
            region.push(latency);
        }
        if let Some(sampler) = sampler {
            let peaks = sampler.stop().await;
            memory = set
                .services
                .iter()
                .zip(idle.iter().zip(peaks))
                .map(|(service, (idle, peak))| Memory {
                    target: service.target,
                    idle_mib: mib(*idle),
                    load_peak_mib: mib(peak),
                })
                .collect();
        }
        let stories =
            options.runs * (options.stories + (options.rate * options.paced_seconds) as usize + options.region_stories);
        let cpu_ms_per_story = set
            .cpu_seconds(nats_pid)
            .into_iter()
            .zip(cpu_before)
            .map(|((name, after), (_, before))| (name, (after - before) * 1000.0 / stories as f64))
            .collect();
        bashu.push(Replicated {
            replicas,
            figures: runs.figures()?,
            region: Summary::of(&region).context("no region-wide samples")?,
            cpu_ms_per_story,
        });
    }

    let (mut raw, mut raw_sequential, mut raw_region) = (Runs::default(), Runs::default(), Vec::new());
    for run in 0..options.runs {
        eprintln!("raw JetStream: run {} of {}", run + 1, options.runs);
        let mut pipeline = raw_pipeline(&nats.url(), &format!("c{run}"), story_bytes, HOP_PARALLEL).await?;
        raw.measure(pipeline.submit.clone(), &mut pipeline.arrivals, &format!("rc{run}"), options, None).await?;
        let mut pipeline = raw_pipeline(&nats.url(), &format!("s{run}"), story_bytes, 1).await?;
        raw_sequential
            .measure(pipeline.submit.clone(), &mut pipeline.arrivals, &format!("rs{run}"), options, None)
            .await?;
        let mut copies = raw_region_publisher(&nats.url(), run, story_bytes, region_copies).await?;
        let tag = format!("rg{run}");
        let (latency, _) = paced(
            &copies.submit,
            &mut copies.arrivals,
            &tag,
            options.region_stories,
            options.region_rate,
            region_copies,
        )
        .await?;
        raw_region.push(latency);
    }
    Ok(PipelineResult {
        story_bytes,
        sync_always: options.sync_always,
        bashu,
        raw: raw.figures()?,
        raw_sequential: raw_sequential.figures()?,
        raw_region: Summary::of(&raw_region).context("no raw region-wide samples")?,
        region_copies,
        memory,
    })
}

/// Messages a raw hop handles at once in its concurrent form: as many as Bashu's consumers.
const HOP_PARALLEL: usize = 64;

/// The services of one measurement: `replicas` of each pipeline service, one alerts and admin.
struct ServiceSet {
    services: Vec<Service>,
}

impl ServiceSet {
    async fn start(binary: &std::path::Path, nats: &str, prefix: &str, replicas: usize) -> anyhow::Result<Self> {
        let operator = [("BASHU_ADMIN__OPERATOR_TOKEN", OPERATOR_TOKEN)];
        let mut services = Vec::new();
        for (target, count) in
            [("ingest", replicas), ("moderation", replicas), ("distribution", replicas), ("alerts", 1), ("admin", 1)]
        {
            for _ in 0..count {
                services.push(Service::start(binary, target, nats, prefix, &operator).await?);
            }
        }
        // Settled after start (connections, consumers, the registry read) before "idle" is read.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(Self { services })
    }

    fn first(&self, target: &str) -> &Service {
        self.services.iter().find(|s| s.target == target).expect("a started target")
    }

    fn ingest_urls(&self) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| s.target == "ingest")
            .map(|s| format!("http://127.0.0.1:{}/v1/stories", s.http_port))
            .collect()
    }

    fn pids(&self) -> Vec<u32> {
        self.services.iter().filter_map(Service::pid).collect()
    }

    /// CPU seconds used so far by each pipeline service (its replicas added up) and nats-server.
    fn cpu_seconds(&self, nats: Option<u32>) -> Vec<(String, f64)> {
        let mut used: Vec<(String, f64)> = ["ingest", "moderation", "distribution"]
            .iter()
            .map(|target| {
                let seconds = self
                    .services
                    .iter()
                    .filter(|s| s.target == *target)
                    .filter_map(|s| crate::processes::cpu_seconds(s.pid()?))
                    .sum();
                ((*target).to_owned(), seconds)
            })
            .collect();
        used.push(("nats-server".into(), nats.and_then(crate::processes::cpu_seconds).unwrap_or(0.0)));
        used
    }
}

#[derive(Default)]
struct Runs {
    end_to_end: Vec<f64>,
    accepted: Vec<f64>,
    paced: Vec<Percentiles>,
    budgets: Vec<Budget>,
}

/// Where a paced story's time went, from the streams' own storage times: p50 and p99 per stage.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Budget {
    /// Due → its `StorySubmitted` stored (HTTP, token, validation, the publish).
    pub(crate) ingest: Percentiles,
    /// Submission stored → decision stored (moderation).
    pub(crate) moderation: Percentiles,
    /// Decision stored → the county's copy stored (distribution).
    pub(crate) distribution: Percentiles,
}

impl Runs {
    /// One run of both shapes; with `ledger`, Bashu's bus, also where the paced stories' time went.
    async fn measure(
        &mut self,
        submit: Submit,
        arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
        tag: &str,
        options: &Options,
        ledger: Option<&Bus>,
    ) -> anyhow::Result<()> {
        let (accepted, end_to_end) =
            sustained(&submit, arrivals, &format!("{tag}-s"), options.stories, options.concurrency).await?;
        self.accepted.push(accepted);
        self.end_to_end.push(end_to_end);
        let count = (options.rate * options.paced_seconds) as usize;
        let paced_tag = format!("{tag}-p");
        let (latency, started) = paced(&submit, arrivals, &paced_tag, count, options.rate, 1).await?;
        self.paced.push(latency);
        if let Some(bus) = ledger {
            let interval = Duration::from_secs_f64(1.0 / options.rate as f64);
            self.budgets.push(budget(bus, &paced_tag, started, interval).await?);
        }
        Ok(())
    }

    fn figures(&self) -> anyhow::Result<PathFigures> {
        Ok(PathFigures {
            end_to_end_per_second: Rate::of(&self.end_to_end),
            accepted_per_second: Rate::of(&self.accepted),
            paced: Summary::of(&self.paced).context("no paced samples")?,
            budget: self.budgets.last().cloned(),
        })
    }
}

/// Reads when each stage of the paced stories `tag-<n>` was stored.
async fn budget(bus: &Bus, tag: &str, started: SystemTime, interval: Duration) -> anyhow::Result<Budget> {
    use bashu_proto::story::v1::{ModerationDecision, StorySubmitted};
    let subjects = bus.subjects();
    let from = started - Duration::from_secs(1);
    let to = SystemTime::now() + Duration::from_secs(1);
    let prefix = format!("{tag}-");
    let index = |id: &str| id.strip_prefix(&prefix)?.parse::<u32>().ok();
    let (submitted, _) = bus
        .operations()
        .read_range::<StorySubmitted>(bashu_bus::STORIES, vec![subjects.story_submitted(ORIGIN)?.into()], from, to)
        .await?;
    let (decided, _) = bus
        .operations()
        .read_range::<ModerationDecision>(bashu_bus::STORIES, vec![subjects.story_decided(ORIGIN)?.into()], from, to)
        .await?;
    let (fed, _) = bus
        .operations()
        .read_range::<StoryDelivery>(bashu_bus::FEEDS, vec![subjects.feed_story(RECEIVER)?.into()], from, to)
        .await?;
    let times = |stored: Vec<(Option<String>, SystemTime)>| -> HashMap<u32, SystemTime> {
        stored.into_iter().filter_map(|(id, at)| Some((index(&id?)?, at))).collect()
    };
    let submitted = times(submitted.into_iter().map(|s| (s.event.story.map(|s| s.id), s.stored_at)).collect());
    let decided = times(decided.into_iter().map(|s| (s.event.story.map(|s| s.id), s.stored_at)).collect());
    let fed = times(fed.into_iter().map(|s| (s.event.story.map(|s| s.id), s.stored_at)).collect());
    let (mut ingest, mut moderation, mut distribution) = (Vec::new(), Vec::new(), Vec::new());
    for (n, submitted_at) in &submitted {
        let due = started + interval * *n;
        ingest.push(submitted_at.duration_since(due).unwrap_or_default());
        if let Some(decided_at) = decided.get(n) {
            moderation.push(decided_at.duration_since(*submitted_at).unwrap_or_default());
            if let Some(fed_at) = fed.get(n) {
                distribution.push(fed_at.duration_since(*decided_at).unwrap_or_default());
            }
        }
    }
    Ok(Budget {
        ingest: Percentiles::of(&ingest).context("no submissions in the ledger")?,
        moderation: Percentiles::of(&moderation).context("no decisions in the ledger")?,
        distribution: Percentiles::of(&distribution).context("no feed copies")?,
    })
}

/// Every message on `subscription` whose id `id_of` finds, with the moment it arrived.
fn arrivals_of(
    mut subscription: async_nats::Subscriber,
    id_of: fn(bytes::Bytes) -> Option<String>,
) -> mpsc::UnboundedReceiver<Arrival> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            let at = Instant::now();
            if let Some(id) = id_of(message.payload)
                && sender.send((id, at)).is_err()
            {
                return;
            }
        }
    });
    receiver
}

/// `count` items `{tag}-{n}` sent by `concurrency` clients, each sending its next as soon as the
/// last was accepted; the rates at which they were accepted and at which they arrived at the end.
async fn sustained(
    submit: &Submit,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    tag: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (submit, next, tag) = (submit.clone(), next.clone(), tag.to_owned());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return Instant::now();
                    }
                    while !submit(format!("{tag}-{n}")).await {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    let arrived = wait_for(arrivals, tag, count).await?;
    let mut last_accepted = start;
    for client in clients {
        last_accepted = last_accepted.max(client.await?);
    }
    let last_arrival = arrived.values().max().copied().unwrap_or(start);
    let per_second = |end: Instant| count as f64 / end.duration_since(start).as_secs_f64();
    Ok((per_second(last_accepted), per_second(last_arrival)))
}

/// `count` items at `rate` per second, each sent when due; latency from when it was due until its
/// `copies`-th copy arrived (1: end to end for one receiver; 219: the last county of a region-wide
/// story), and when (by the wall clock) the first was due.
async fn paced(
    submit: &Submit,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    tag: &str,
    count: usize,
    rate: u64,
    copies: usize,
) -> anyhow::Result<(Percentiles, SystemTime)> {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(50);
    let sender = tokio::spawn({
        let (submit, tag) = (submit.clone(), tag.to_owned());
        async move {
            for n in 0..count {
                tokio::time::sleep_until((start + interval * n as u32).into()).await;
                let (submit, id) = (submit.clone(), format!("{tag}-{n}"));
                tokio::spawn(async move {
                    while !submit(id.clone()).await {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
            }
        }
    });
    // `start` is still ahead: the wall-clock moment it stands for.
    let started_wall = SystemTime::now() + start.saturating_duration_since(Instant::now());
    let prefix = format!("{tag}-");
    // Per id: copies seen, and when the `copies`-th came.
    let mut seen: HashMap<String, (usize, Option<Instant>)> = HashMap::with_capacity(count);
    let mut complete = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while complete < count {
        let (id, at) = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .with_context(|| format!("{tag}: {complete} of {count} complete"))?
            .context("arrivals closed")?;
        if !id.starts_with(&prefix) {
            continue;
        }
        let entry = seen.entry(id).or_insert((0, None));
        entry.0 += 1;
        if entry.0 == copies {
            entry.1 = Some(at);
            complete += 1;
        }
    }
    sender.await?;
    let samples: Vec<Duration> = seen
        .iter()
        .filter_map(|(id, (_, at))| {
            let n: u32 = id.rsplit('-').next()?.parse().ok()?;
            Some(at.as_ref()?.saturating_duration_since(start + interval * n))
        })
        .collect();
    Ok((Percentiles::of(&samples).context("no samples")?, started_wall))
}

/// Waits until `count` distinct ids starting with `tag-` have arrived; their first arrivals.
async fn wait_for(
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    tag: &str,
    count: usize,
) -> anyhow::Result<HashMap<String, Instant>> {
    let prefix = format!("{tag}-");
    let mut arrived = HashMap::with_capacity(count);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while arrived.len() < count {
        let (id, at) = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .with_context(|| format!("{tag}: {} of {count} arrived", arrived.len()))?
            .context("arrivals closed")?;
        if id.starts_with(&prefix) {
            arrived.entry(id).or_insert(at);
        }
    }
    Ok(arrived)
}

/// Load for the two services the story pipeline does not touch, so that their peak memory means
/// something: 50 region-wide alerts one after another, and an operator's bus-health and report
/// calls beside them.
async fn alerts_and_admin_load(bus: &Bus, alerts: &Service, admin: &Service) -> anyhow::Result<()> {
    use bashu_proto::admin::v1::{
        CollaborationReportRequest, GetBusHealthRequest, bus_health_service_client::BusHealthServiceClient,
        report_service_client::ReportServiceClient,
    };
    eprintln!("alerts and admin under load");
    let counties = Arc::new(bashu_registry::Counties::builtin()?);
    let (secret, public) = bashu_alerts::signature::new_key_pair();
    bashu_registry::RegistryStore::open(bus, counties)
        .await?
        .put_desk(bashu_proto::registry::v1::Desk {
            id: "bench-desk".into(),
            name: "bench".into(),
            public_key: public.to_vec(),
            areas: vec!["region".into()],
            contact: "bench".into(),
            senders: vec!["bench@bashu.example".into()],
            ..Default::default()
        })
        .await?;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", admin.grpc_port))?.connect().await?;
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {OPERATOR_TOKEN}").parse()?;
    let with_token = move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", bearer.clone());
        Ok(request)
    };
    let operator = tokio::spawn({
        let channel = channel.clone();
        let with_token = with_token.clone();
        async move {
            let mut health = BusHealthServiceClient::with_interceptor(channel.clone(), with_token.clone());
            let mut report = ReportServiceClient::with_interceptor(channel, with_token);
            let today = CollaborationReportRequest {
                from: Some(bashu_proto::time::from_system_time(
                    std::time::SystemTime::now() - Duration::from_secs(86_400),
                )),
                to: Some(bashu_proto::time::now()),
            };
            for _ in 0..20 {
                health.get_bus_health(GetBusHealthRequest::default()).await?;
                report.get_collaboration_report(today).await?;
            }
            anyhow::Ok(())
        }
    });
    let http = bashu::http_client();
    for n in 0..50 {
        use base64::Engine as _;
        let xml = crate::alerts::region_alert("bench@bashu.example", &format!("BENCH-LOAD-{n}"));
        let now = bashu_proto::time::now().seconds;
        let signature = bashu_alerts::signature::sign(&secret, "bench-desk", now, xml.as_bytes());
        let response = http
            .post(format!("http://127.0.0.1:{}/v1/alerts", alerts.http_port))
            .header("content-type", "application/cap+xml")
            .header(bashu_alerts::DESK_HEADER, "bench-desk")
            .header(bashu_alerts::TIMESTAMP_HEADER, now.to_string())
            .header(bashu_alerts::SIGNATURE_HEADER, base64::engine::general_purpose::STANDARD.encode(signature))
            .body(xml)
            .send()
            .await?;
        if !response.status().is_success() {
            anyhow::bail!("the load alert was refused: {}", response.text().await.unwrap_or_default());
        }
    }
    operator.await?.context("the operator's calls")?;
    Ok(())
}

/// A story as a county's CMS sends it: about 1.5 KB of Chinese body text, different for every
/// story as real stories are (sentences picked by the id), shared with one county, or (ids of the
/// region-wide phase, `g…`) with the whole region.
fn story(id: &str, region: bool) -> serde_json::Value {
    const SENTENCES: [&str; 12] = [
        "川渝两地县级融媒体中心联合报道，今年以来两地在交通领域的合作持续深化。",
        "成渝地区双城经济圈建设带动沿线区县产业协同发展。",
        "涪江流域各区县共同推进生态保护和水质监测。",
        "跨省公交线路开通后，两地群众往来更加便利。",
        "文旅部门联合推出巴蜀文化旅游走廊精品线路。",
        "农业合作社通过电商平台把特色农产品销往全国。",
        "应急管理部门开展汛期联合演练，提升协同处置能力。",
        "职业院校与企业合作培养技能人才，服务地方产业。",
        "社区卫生服务中心推出家庭医生签约服务新举措。",
        "新能源汽车产业链上下游企业在园区集聚发展。",
        "非物质文化遗产传承人走进校园开展展示活动。",
        "基层治理创新试点经验在两地多个区县推广。",
    ];
    let seed = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let body: String = (0..30).map(|n| SENTENCES[((seed >> (n % 16 * 4)) as usize + n) % SENTENCES.len()]).collect();
    let sharing =
        if region { serde_json::json!({ "region": true }) } else { serde_json::json!({ "counties": [RECEIVER] }) };
    serde_json::json!({
        "id": id,
        "version": 1,
        "originCounty": ORIGIN,
        "headline": format!("基准测试稿件 {id}"),
        "body": body,
        "category": "CATEGORY_POLICY",
        "sharing": sharing,
    })
}

/// Submits to the ingest replicas in turn, as a load balancer would.
fn bashu_submit(urls: &[String], token: &str) -> Submit {
    let http = bashu::http_client();
    let (urls, token) = (urls.to_vec(), token.to_owned());
    let turn = Arc::new(AtomicUsize::new(0));
    Arc::new(move |id: String| {
        let url = &urls[turn.fetch_add(1, Ordering::Relaxed) % urls.len()];
        let region = id.starts_with('g');
        let request = http.post(url).bearer_auth(&token).json(&story(&id, region)).send();
        Box::pin(async move { request.await.is_ok_and(|response| response.status().is_success()) })
    })
}

/// The raw pipeline of one run: its hops stop when it is dropped.
struct RawPipeline {
    submit: Submit,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    hops: Vec<tokio::task::JoinHandle<()>>,
    /// The county's connection, which its subscription needs.
    _end: async_nats::Client,
}

impl RawPipeline {
    fn with_hops(mut self, hops: Vec<tokio::task::JoinHandle<()>>) -> Self {
        self.hops = hops;
        self
    }
}

impl Drop for RawPipeline {
    fn drop(&mut self) {
        for hop in &self.hops {
            hop.abort();
        }
    }
}

/// Four streams and three hops between them; what is published to the first arrives on the
/// fourth's subject, where a core subscriber (the county) sees it. Each hop handles up to
/// `parallel` messages at once, each acked only after its re-publish is acknowledged.
async fn raw_pipeline(url: &str, name: &str, bytes: usize, parallel: usize) -> anyhow::Result<RawPipeline> {
    let subject = |stage: usize| format!("rawpipe.{name}.{stage}");
    let admin = jetstream::new(async_nats::connect(url).await?);
    for stage in 1..=4 {
        admin
            .create_stream(jetstream::stream::Config {
                name: format!("RAWPIPE_{}_{stage}", name.to_uppercase()),
                subjects: vec![subject(stage)],
                ..Default::default()
            })
            .await?;
    }
    let mut hops = Vec::new();
    for stage in 1..=3 {
        // A connection per hop, as each service has its own.
        let js = jetstream::new(async_nats::connect(url).await?);
        let consumer: jetstream::consumer::PullConsumer = js
            .get_stream(format!("RAWPIPE_{}_{stage}", name.to_uppercase()))
            .await?
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(format!("hop{stage}")),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 1_000,
                ..Default::default()
            })
            .await?;
        let next = subject(stage + 1);
        hops.push(tokio::spawn(async move {
            let Ok(mut messages) = consumer.messages().await else { return };
            let mut in_flight = futures::stream::FuturesUnordered::new();
            loop {
                tokio::select! {
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                    message = messages.next(), if in_flight.len() < parallel => {
                        let Some(Ok(message)) = message else { return };
                        let (js, next) = (js.clone(), next.clone());
                        in_flight.push(async move {
                            let stored = match js.publish(next, message.payload.clone()).await {
                                Ok(ack) => ack.await.is_ok(),
                                Err(_) => false,
                            };
                            if stored {
                                let _ = message.ack().await;
                            }
                        });
                    }
                }
            }
        }));
    }
    let end = async_nats::connect(url).await?;
    let subscription = end.subscribe(subject(4)).await?;
    end.flush().await?;
    let arrivals = arrivals_of(subscription, id_of_raw);
    let submit = raw_publish(url, vec![subject(1)], bytes).await?;
    Ok(RawPipeline { submit, arrivals, hops: vec![], _end: end }.with_hops(hops))
}

/// The id a raw payload starts with (up to its first newline).
fn id_of_raw(payload: bytes::Bytes) -> Option<String> {
    let id = payload.split(|b| *b == b'\n').next()?;
    Some(String::from_utf8_lossy(id).into_owned())
}

/// Publishes an id (padded to `bytes`) to every one of `subjects`, all acknowledgements in flight
/// at once, then waits for them: accepted once every copy is stored.
async fn raw_publish(url: &str, subjects: Vec<String>, bytes: usize) -> anyhow::Result<Submit> {
    let publisher = jetstream::new(async_nats::connect(url).await?);
    let subjects = Arc::new(subjects);
    Ok(Arc::new(move |id: String| {
        let mut payload = id.into_bytes();
        payload.push(b'\n');
        payload.resize(bytes.max(payload.len()), b'x');
        let payload = bytes::Bytes::from(payload);
        let (publisher, subjects) = (publisher.clone(), subjects.clone());
        Box::pin(async move {
            let mut acks = Vec::with_capacity(subjects.len());
            for subject in subjects.iter() {
                match publisher.publish(subject.clone(), payload.clone()).await {
                    Ok(ack) => acks.push(ack),
                    Err(_) => return false,
                }
            }
            futures::future::join_all(acks.into_iter().map(|ack| ack.into_future())).await.iter().all(Result::is_ok)
        })
    }))
}

/// A region-wide story's copies, raw: one stream, one subject per county, each copy stored and
/// acknowledged, seen by a core subscriber as a county would.
async fn raw_region_publisher(url: &str, run: usize, bytes: usize, copies: usize) -> anyhow::Result<RawPipeline> {
    let admin = jetstream::new(async_nats::connect(url).await?);
    admin
        .create_stream(jetstream::stream::Config {
            name: format!("RAWREGION_{run}"),
            subjects: vec![format!("rawregion.{run}.>")],
            ..Default::default()
        })
        .await?;
    let end = async_nats::connect(url).await?;
    let subscription = end.subscribe(format!("rawregion.{run}.>")).await?;
    end.flush().await?;
    let arrivals = arrivals_of(subscription, id_of_raw);
    let subjects = (0..copies).map(|county| format!("rawregion.{run}.{county}")).collect();
    let submit = raw_publish(url, subjects, bytes).await?;
    Ok(RawPipeline { submit, arrivals, hops: vec![], _end: end })
}
