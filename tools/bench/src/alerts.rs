//! Alert fan-out: from "alert accepted" to "the last subscriber has it", for Bashu's live path
//! and, in the same run and with the same subscribers over the same connections, for raw core
//! NATS (one message per county subject) and raw JetStream (one stored message read by as many
//! durable consumers).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::{Client, jetstream};
use bashu::{Config, System, Target};
use bashu_proto::alert::v1::AlertDelivery;
use futures::StreamExt;
use prost::Message as _;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::stats::{Percentiles, Summary};

const PROBE: &[u8] = b"probe";
const PROBE_ITERATION: u64 = u64::MAX;
/// An arrival of iteration n at some subscriber, or (subscriber None) the moment it was accepted.
type Arrival = (Option<usize>, u64, Instant);

/// Subscribers over connections.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Layout {
    pub(crate) subscribers: usize,
    pub(crate) connections: usize,
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let (subscribers, connections) =
            value.split_once('x').ok_or("a layout is SUBSCRIBERSxCONNECTIONS, e.g. 220x4")?;
        let layout = Layout {
            subscribers: subscribers.parse().map_err(|_| "subscribers must be a number")?,
            connections: connections.parse().map_err(|_| "connections must be a number")?,
        };
        if layout.subscribers == 0 || layout.connections == 0 || layout.connections > layout.subscribers {
            return Err("need 1 <= connections <= subscribers".into());
        }
        Ok(layout)
    }
}

/// One layout's figures: each path's summary over runs, or why it could not be measured.
#[derive(Debug, Serialize)]
pub(crate) struct LayoutResult {
    pub(crate) layout: Layout,
    pub(crate) bashu: Result<Summary, String>,
    pub(crate) raw_core: Result<Summary, String>,
    pub(crate) raw_jetstream: Result<Summary, String>,
}

/// Options of the alert scenario.
pub(crate) struct Options {
    /// Alert service replicas (each its own `System`, desks' requests spread over them).
    pub(crate) replicas: usize,
    pub(crate) layouts: Vec<Layout>,
    pub(crate) iterations: u64,
    pub(crate) runs: usize,
    pub(crate) pace: Duration,
}

/// Runs every layout against a fresh nats-server and an in-process Bashu (alerts only).
pub(crate) async fn run(options: &Options) -> anyhow::Result<Vec<LayoutResult>> {
    let nats = bashu_test_support::NatsServer::start().await;
    let mut config = Config::default();
    config.nats.url = nats.url();
    config.nats.prefix = "bench".into();
    config.http.listen = "127.0.0.1:0".parse()?;
    config.grpc.listen = "127.0.0.1:0".parse()?;
    config.registry.seed_demo = true;
    let shutdown = CancellationToken::new();
    // The first replica writes the demo desks; the others only read them.
    let mut systems = vec![System::start(&config, &[Target::Alerts], shutdown.clone()).await?];
    config.registry.seed_demo = false;
    for _ in 1..options.replicas.max(1) {
        systems.push(System::start(&config, &[Target::Alerts], shutdown.clone()).await?);
    }
    let subjects = bashu_bus::Subjects::new("bench")?;
    let counties: Vec<String> = bashu_registry::Counties::builtin()?.all().iter().map(|c| c.code.clone()).collect();
    let live_subjects: Vec<String> =
        counties.iter().map(|c| subjects.alert_live(c).map(String::from)).collect::<Result<_, _>>()?;

    let mut results = Vec::new();
    for layout in &options.layouts {
        let mut bashu = Vec::new();
        let mut core = Vec::new();
        let mut js = Vec::new();
        let mut js_refused = None;
        for run in 0..options.runs {
            eprintln!("alerts {}x{}: run {} of {}", layout.subscribers, layout.connections, run + 1, options.runs);
            bashu.push(measure_bashu(&nats.url(), &systems, &subjects, &live_subjects, *layout, options, run).await?);
            core.push(measure_raw_core(&nats.url(), &live_subjects, *layout, options, run).await?);
            if js_refused.is_none() {
                match measure_raw_jetstream(&nats.url(), *layout, options, run).await {
                    Ok(percentiles) => js.push(percentiles),
                    Err(error) => js_refused = Some(format!("{error:#}")),
                }
            }
        }
        let summary = |runs: &[Percentiles]| Summary::of(runs).ok_or_else(|| "no samples".to_string());
        results.push(LayoutResult {
            layout: *layout,
            bashu: summary(&bashu),
            raw_core: summary(&core),
            raw_jetstream: match js_refused {
                Some(reason) => Err(reason),
                None => summary(&js),
            },
        });
    }
    shutdown.cancel();
    Ok(results)
}

/// Subscribers laid out round-robin over connections and subjects, each reporting arrivals.
async fn subscribe_fleet(
    url: &str,
    layout: Layout,
    subjects: &[String],
    iteration_of: fn(&[u8]) -> Option<u64>,
    arrivals: mpsc::UnboundedSender<Arrival>,
) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(layout.connections);
    for _ in 0..layout.connections {
        clients.push(async_nats::connect(url).await?);
    }
    for index in 0..layout.subscribers {
        let mut subscription =
            clients[index % layout.connections].subscribe(subjects[index % subjects.len()].clone()).await?;
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                // The clock is read on receipt, before any decoding.
                let at = Instant::now();
                let iteration = if message.payload.as_ref() == PROBE {
                    Some(PROBE_ITERATION)
                } else {
                    iteration_of(&message.payload)
                };
                if let Some(iteration) = iteration
                    && arrivals.send((Some(index), iteration, at)).is_err()
                {
                    return;
                }
            }
        });
    }
    Ok(clients)
}

/// Confirms every subscription is live: a probe on every subject must reach every subscriber
/// (a flush does not prove the server has registered a subscription).
async fn confirm(
    publisher: &Client,
    subjects: &[String],
    subscribers: usize,
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < subscribers {
        for subject in subjects {
            publisher.publish(subject.clone(), PROBE.into()).await?;
        }
        publisher.flush().await?;
        let round = Instant::now() + Duration::from_millis(200);
        while let Ok(Some((Some(index), PROBE_ITERATION, _))) =
            tokio::time::timeout_at(round.into(), arrivals.recv()).await
        {
            seen.insert(index);
        }
        if Instant::now() > deadline {
            bail!("only {} of {subscribers} subscriptions confirmed", seen.len());
        }
    }
    while arrivals.try_recv().is_ok() {}
    Ok(())
}

/// Waits for iteration `iteration` to reach every subscriber; the time from its start to the last.
async fn last_arrival(
    arrivals: &mut mpsc::UnboundedReceiver<Arrival>,
    iteration: u64,
    subscribers: usize,
    mut start: Option<Instant>,
) -> anyhow::Result<Duration> {
    let mut reached = std::collections::HashSet::new();
    let mut last = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reached.len() < subscribers || start.is_none() {
        let (who, seen, at) = tokio::time::timeout_at(deadline, arrivals.recv())
            .await
            .with_context(|| format!("iteration {iteration}: {} of {subscribers} subscribers reached", reached.len()))?
            .context("arrivals closed")?;
        if seen != iteration {
            continue;
        }
        match who {
            Some(index) => {
                reached.insert(index);
                last = Some(last.map_or(at, |l: Instant| l.max(at)));
            }
            None => start = Some(at),
        }
    }
    Ok(last.unwrap_or_else(Instant::now).saturating_duration_since(start.expect("a start")))
}

async fn measure_bashu(
    url: &str,
    systems: &[System],
    subjects: &bashu_bus::Subjects,
    live_subjects: &[String],
    layout: Layout,
    options: &Options,
    run: usize,
) -> anyhow::Result<Percentiles> {
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    let clients = subscribe_fleet(url, layout, live_subjects, alert_iteration, sender.clone()).await?;
    let publisher = async_nats::connect(url).await?;
    confirm(&publisher, live_subjects, layout.subscribers, &mut arrivals).await?;

    // "Accepted" is the moment the stored AlertIssued reaches the bus.
    let mut issued = publisher.subscribe(subjects.all_alert_issued()).await?;
    tokio::spawn(async move {
        while let Some(message) = issued.next().await {
            let at = Instant::now();
            if let Ok(event) = bashu_proto::alert::v1::AlertIssued::decode(message.payload)
                && let Some(iteration) =
                    event.alert.as_ref().and_then(|a| a.identifier.rsplit('-').next()?.parse().ok())
                && sender.send((None, iteration, at)).is_err()
            {
                return;
            }
        }
    });
    publisher.flush().await?;

    let desk = systems[0].demo.desks.iter().find(|d| d.id == "chengdu-chongqing").context("the region desk")?;
    let http = bashu::http_client();
    let mut samples = Vec::new();
    for iteration in 0..options.iterations {
        let identifier = format!("BENCH-{}-{}-{run}-{iteration}", layout.subscribers, layout.connections);
        let xml = region_alert(&format!("{}@bashu.example", desk.id), &identifier);
        // Spread over the replicas, as a load balancer would.
        let system = &systems[iteration as usize % systems.len()];
        let response = desk.post_alert(&http, &format!("http://{}", system.http_addr), xml).await?;
        if !response.status().is_success() {
            bail!("the alert was refused: {}", response.text().await.unwrap_or_default());
        }
        samples.push(last_arrival(&mut arrivals, iteration, layout.subscribers, None).await?);
        tokio::time::sleep(options.pace).await;
    }
    drop(clients);
    Percentiles::of(&samples).context("no samples")
}

fn alert_iteration(payload: &[u8]) -> Option<u64> {
    let delivery = AlertDelivery::decode(payload).ok()?;
    delivery.alert?.identifier.rsplit('-').next()?.parse().ok()
}

pub(crate) fn region_alert(sender: &str, identifier: &str) -> String {
    format!(
        r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier><sender>{sender}</sender><sent>2026-11-28T10:00:00+08:00</sent><status>Exercise</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty><headline>基准测试</headline><description>{}</description><area><areaDesc>川渝</areaDesc><geocode><valueName>bashu:region</valueName><value>all</value></geocode></area></info></alert>"#,
        "x".repeat(512)
    )
}

fn raw_iteration(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(..8)?.try_into().ok()?))
}

/// As many bytes as Bashu's delivery of the bench alert to one county: "the same message".
fn raw_payload(iteration: u64) -> bytes::Bytes {
    let mut payload = iteration.to_be_bytes().to_vec();
    payload.resize(bashu_delivery_size(), b'x');
    payload.into()
}

/// The size of each delivered message, Bashu's and raw alike.
pub(crate) fn message_bytes() -> usize {
    bashu_delivery_size()
}

fn bashu_delivery_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let xml = region_alert("chengdu-chongqing@bashu.example", "BENCH-2000-2000-9-999");
        let alert = bashu_alerts::cap::parse(xml.as_bytes()).expect("the bench alert is valid CAP");
        AlertDelivery {
            alert: Some(alert),
            county: "500153".into(),
            sent_at: Some(bashu_proto::time::now()),
            cap_xml: xml.into_bytes(),
            alert_key: "0".repeat(32),
            chain_key: "0".repeat(32),
            resend: 0,
        }
        .encoded_len()
    })
}

async fn measure_raw_core(
    url: &str,
    subjects: &[String],
    layout: Layout,
    options: &Options,
    run: usize,
) -> anyhow::Result<Percentiles> {
    // Subjects of their own, so the Bashu subscribers of this run never see this traffic.
    let subjects: Vec<String> = subjects.iter().map(|s| format!("rawcore.{run}.{s}")).collect();
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    let clients = subscribe_fleet(url, layout, &subjects, raw_iteration, sender).await?;
    let publisher = async_nats::connect(url).await?;
    confirm(&publisher, &subjects, layout.subscribers, &mut arrivals).await?;
    let mut samples = Vec::new();
    for iteration in 0..options.iterations {
        let start = Instant::now();
        for subject in &subjects {
            publisher.publish(subject.clone(), raw_payload(iteration)).await?;
        }
        publisher.flush().await?;
        samples.push(last_arrival(&mut arrivals, iteration, layout.subscribers, Some(start)).await?);
        tokio::time::sleep(options.pace).await;
    }
    drop(clients);
    Percentiles::of(&samples).context("no samples")
}

async fn measure_raw_jetstream(
    url: &str,
    layout: Layout,
    options: &Options,
    run: usize,
) -> anyhow::Result<Percentiles> {
    let publisher = async_nats::connect(url).await?;
    let js = jetstream::new(publisher);
    let name = format!("RAWJS_{}_{}_{run}", layout.subscribers, layout.connections);
    let subject = format!("rawjs.{run}.{}.{}", layout.subscribers, layout.connections);
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await?;
    let mut clients = Vec::new();
    for _ in 0..layout.connections {
        clients.push(jetstream::new(async_nats::connect(url).await?));
    }
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    for index in 0..layout.subscribers {
        let consumer: jetstream::consumer::PullConsumer = clients[index % layout.connections]
            .get_stream(&name)
            .await?
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(format!("c{index}")),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .with_context(|| format!("durable consumer {} of {}", index + 1, layout.subscribers))?;
        let sender = sender.clone();
        tokio::spawn(async move {
            let Ok(mut messages) = consumer.messages().await else { return };
            while let Some(Ok(message)) = messages.next().await {
                let at = Instant::now();
                if let Some(iteration) = raw_iteration(&message.payload) {
                    let _ = sender.send((Some(index), iteration, at));
                }
                let _ = message.ack().await;
            }
        });
    }
    let mut samples = Vec::new();
    for iteration in 0..options.iterations {
        let start = Instant::now();
        js.publish(subject.clone(), raw_payload(iteration)).await?.await?;
        samples.push(last_arrival(&mut arrivals, iteration, layout.subscribers, Some(start)).await?);
        tokio::time::sleep(options.pace).await;
    }
    js.delete_stream(&name).await?;
    drop(stream);
    Percentiles::of(&samples).context("no samples")
}
