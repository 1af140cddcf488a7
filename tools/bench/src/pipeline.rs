//! The story pipeline, ingest → moderation → distribution → a county's feed, with each service
//! its own process, beside a raw three-hop JetStream pipeline with the same acknowledgement rules
//! (each hop handles one message at a time in stream order, as Bashu's consumers do, and acks its
//! input only after its own publish is acknowledged), driven the same way in the same run.
//!
//! Two shapes of traffic per path: as fast as `concurrency` clients are answered (sustained
//! stories per second, and the rate at which the first hop accepts them: the ingest figure), and
//! a fixed rate (end-to-end p50/p99 from the moment each story was due).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
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

/// Options of the pipeline scenario.
pub(crate) struct Options {
    pub(crate) stories: usize,
    pub(crate) concurrency: usize,
    pub(crate) rate: u64,
    pub(crate) paced_seconds: u64,
    pub(crate) runs: usize,
    /// nats-server fsyncs every write before acknowledging it (`sync_interval: always`).
    pub(crate) sync_always: bool,
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
}

/// The scenario's result.
#[derive(Debug, Serialize)]
pub(crate) struct PipelineResult {
    pub(crate) story_bytes: usize,
    pub(crate) sync_always: bool,
    pub(crate) bashu: PathFigures,
    pub(crate) raw: PathFigures,
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
    let token = bashu_registry::CountyTokens::open(&bus, counties).await?.issue(ORIGIN, "bench").await?.token;

    let mut services = Vec::new();
    let operator = [("BASHU_ADMIN__OPERATOR_TOKEN", OPERATOR_TOKEN)];
    for target in ["ingest", "moderation", "distribution", "alerts", "admin"] {
        services.push(Service::start(&binary, target, &nats.url(), prefix, &operator).await?);
    }
    // Settled after start (connections, consumers, the registry read) before "idle" is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Vec<u64> = services.iter().map(|s| s.resident_bytes().unwrap_or(0)).collect();
    let client = async_nats::connect(nats.url()).await?;
    let ingest_url = format!("http://127.0.0.1:{}/v1/stories", services[0].http_port);
    let story_bytes = story(&"x".repeat(24)).to_string().len();

    let mut bashu = Runs::default();
    let mut raw = Runs::default();
    let sampler = PeakSampler::start(services.iter().filter_map(Service::pid).collect());
    alerts_and_admin_load(&bus, &services[3], &services[4]).await?;
    for run in 0..options.runs {
        eprintln!("pipeline: run {} of {}", run + 1, options.runs);
        let feed = client.subscribe(subjects.feed_story(RECEIVER)?).await?;
        client.flush().await?;
        let mut arrivals = arrivals_of(feed, |payload| Some(StoryDelivery::decode(payload).ok()?.story?.id));
        bashu.measure(bashu_submit(&ingest_url, &token), &mut arrivals, &format!("b{run}"), options).await?;

        let mut pipeline = raw_pipeline(&nats.url(), run, story_bytes).await?;
        raw.measure(pipeline.submit.clone(), &mut pipeline.arrivals, &format!("r{run}"), options).await?;
    }
    let peaks = sampler.stop().await;
    let memory = services
        .iter()
        .zip(idle.iter().zip(peaks))
        .map(|(service, (idle, peak))| Memory {
            target: service.target,
            idle_mib: mib(*idle),
            load_peak_mib: mib(peak),
        })
        .collect();
    Ok(PipelineResult {
        story_bytes,
        sync_always: options.sync_always,
        bashu: bashu.figures()?,
        raw: raw.figures()?,
        memory,
    })
}

#[derive(Default)]
struct Runs {
    end_to_end: Vec<f64>,
    accepted: Vec<f64>,
    paced: Vec<Percentiles>,
}

impl Runs {
    async fn measure(
        &mut self,
        submit: Submit,
        arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
        tag: &str,
        options: &Options,
    ) -> anyhow::Result<()> {
        let (accepted, end_to_end) =
            sustained(&submit, arrivals, &format!("{tag}-s"), options.stories, options.concurrency).await?;
        self.accepted.push(accepted);
        self.end_to_end.push(end_to_end);
        let count = (options.rate * options.paced_seconds) as usize;
        self.paced.push(paced(&submit, arrivals, &format!("{tag}-p"), count, options.rate).await?);
        Ok(())
    }

    fn figures(&self) -> anyhow::Result<PathFigures> {
        Ok(PathFigures {
            end_to_end_per_second: Rate::of(&self.end_to_end),
            accepted_per_second: Rate::of(&self.accepted),
            paced: Summary::of(&self.paced).context("no paced samples")?,
        })
    }
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

/// `count` items at `rate` per second, each sent when due; end-to-end latency from when it was due.
async fn paced(
    submit: &Submit,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    tag: &str,
    count: usize,
    rate: u64,
) -> anyhow::Result<Percentiles> {
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
    let arrived = wait_for(arrivals, tag, count).await?;
    sender.await?;
    let samples: Vec<Duration> = arrived
        .iter()
        .filter_map(|(id, at)| {
            let n: u32 = id.rsplit('-').next()?.parse().ok()?;
            Some(at.saturating_duration_since(start + interval * n))
        })
        .collect();
    Percentiles::of(&samples).context("no samples")
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
        let xml = crate::alerts::region_alert(&format!("BENCH-LOAD-{n}"));
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

/// A story as a county's CMS sends it: about 1.5 KB of Chinese body text.
fn story(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "version": 1,
        "originCounty": ORIGIN,
        "headline": format!("基准测试稿件 {id}"),
        "body": "川渝两地县级融媒体中心联合报道：今年以来，两地在交通、产业、文旅等领域的合作持续深化。".repeat(12),
        "category": "CATEGORY_POLICY",
        "sharing": { "counties": [RECEIVER] },
    })
}

fn bashu_submit(url: &str, token: &str) -> Submit {
    let http = bashu::http_client();
    let (url, token) = (url.to_owned(), token.to_owned());
    Arc::new(move |id: String| {
        let request = http.post(&url).bearer_auth(&token).json(&story(&id)).send();
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

impl Drop for RawPipeline {
    fn drop(&mut self) {
        for hop in &self.hops {
            hop.abort();
        }
    }
}

/// Four streams and three hops between them; what is published to the first arrives on the
/// fourth's subject, where a core subscriber (the county) sees it.
async fn raw_pipeline(url: &str, run: usize, bytes: usize) -> anyhow::Result<RawPipeline> {
    let subject = |stage: usize| format!("rawpipe.{run}.{stage}");
    let admin = jetstream::new(async_nats::connect(url).await?);
    for stage in 1..=4 {
        admin
            .create_stream(jetstream::stream::Config {
                name: format!("RAWPIPE_{run}_{stage}"),
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
            .get_stream(format!("RAWPIPE_{run}_{stage}"))
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
            while let Some(Ok(message)) = messages.next().await {
                let stored = match js.publish(next.clone(), message.payload.clone()).await {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if stored {
                    let _ = message.ack().await;
                }
            }
        }));
    }
    let end = async_nats::connect(url).await?;
    let subscription = end.subscribe(subject(4)).await?;
    end.flush().await?;
    let arrivals = arrivals_of(subscription, |payload| {
        let id = payload.split(|b| *b == b'\n').next()?;
        Some(String::from_utf8_lossy(id).into_owned())
    });

    let publisher = jetstream::new(async_nats::connect(url).await?);
    let first = subject(1);
    let submit: Submit = Arc::new(move |id: String| {
        let mut payload = id.into_bytes();
        payload.push(b'\n');
        payload.resize(bytes.max(payload.len()), b'x');
        let (publisher, first) = (publisher.clone(), first.clone());
        Box::pin(async move {
            match publisher.publish(first, payload.into()).await {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            }
        })
    });
    Ok(RawPipeline { submit, arrivals, hops, _end: end })
}
