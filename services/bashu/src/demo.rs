//! `bashu demo`: what a county's CMS and a county's feed reader do, shown on the live system.
//! Submits a few stories over HTTP, then reads the feeds of some counties through their durable
//! consumers, acknowledging each story and sending a receipt.

use std::{collections::HashMap, time::Duration};

use bashu_bus::{
    Arrival, Bus, FeedEvent, Incoming as _, Subjects, Topology, async_nats::jetstream::consumer::PullConsumer,
};
use bashu_proto::story::v1::StoryReceipt;
use bashu_registry::Counties;
use futures::StreamExt;
use prost::Message as _;
use serde_json::json;

use crate::Config;

/// A demo emergency desk and its secret key (dev only: written to the demo credentials file).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DemoDesk {
    /// The desk id.
    pub id: String,
    /// What it may alert.
    pub areas: Vec<String>,
    /// The ed25519 secret key, standard base64.
    pub secret_key: String,
    /// The ed25519 public key, standard base64.
    pub public_key: String,
}

impl DemoDesk {
    /// Signs `cap_xml` as this desk now and POSTs it to `<base_url>/v1/alerts`, as a desk's
    /// client does (docs/alerts.md).
    pub async fn post_alert(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        cap_xml: String,
    ) -> reqwest::Result<reqwest::Response> {
        use base64::Engine as _;
        let now = bashu_proto::time::now().seconds;
        let signature = bashu_alerts_core::signature::sign(&self.secret_key_bytes(), &self.id, now, cap_xml.as_bytes());
        http.post(format!("{base_url}/v1/alerts"))
            .header("content-type", "application/cap+xml")
            .header(bashu_alerts_core::DESK_HEADER, &self.id)
            .header(bashu_alerts_core::TIMESTAMP_HEADER, now.to_string())
            .header(bashu_alerts_core::SIGNATURE_HEADER, base64::engine::general_purpose::STANDARD.encode(signature))
            .body(cap_xml)
            .send()
            .await
    }

    /// The secret key bytes.
    pub fn secret_key_bytes(&self) -> [u8; 32] {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.secret_key).unwrap_or_default();
        bytes.try_into().unwrap_or([0; 32])
    }
}

/// Registers the demo desks with fresh key pairs (every start: old demo keys stop working).
async fn seed_desks(store: &bashu_registry::RegistryStore) -> bashu_registry::Result<Vec<DemoDesk>> {
    use base64::Engine as _;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut desks = Vec::new();
    for (id, name, areas, senders) in [
        ("sc-provincial", "四川省应急值守（示例）", vec!["51"], vec!["sc-provincial@bashu.example"]),
        ("cq-municipal", "重庆市应急值守（示例）", vec!["50"], vec!["cq-provincial@bashu.example"]),
        ("mianyang", "绵阳市应急值守（示例）", vec!["5107"], vec!["mianyang@bashu.example"]),
        ("chengdu-chongqing", "川渝联合应急值守（示例）", vec!["region"], vec!["chengdu-chongqing@bashu.example"]),
    ] {
        let (secret, public) = bashu_alerts_core::signature::new_key_pair();
        let areas: Vec<String> = areas.into_iter().map(String::from).collect();
        store
            .put_desk(bashu_proto::registry::v1::Desk {
                id: id.into(),
                name: name.into(),
                public_key: public.to_vec(),
                areas: areas.clone(),
                contact: "demo".into(),
                senders: senders.into_iter().map(String::from).collect(),
                ..Default::default()
            })
            .await?;
        desks.push(DemoDesk { id: id.into(), areas, secret_key: encode(&secret), public_key: encode(&public) });
    }
    Ok(desks)
}

/// The counties that get a demo token: the demo stories' origins and the counties whose feeds
/// the demo reads.
pub const DEMO_COUNTIES: &[&str] = &["511083", "510703", "500153", "510781", "500117", "500101"];

/// Issues a token for each demo county (every start: old demo tokens stay until revoked).
async fn seed_county_tokens(
    tokens: &bashu_registry::CountyTokens,
) -> bashu_registry::Result<std::collections::BTreeMap<String, String>> {
    let mut issued = std::collections::BTreeMap::new();
    for county in DEMO_COUNTIES {
        issued.insert((*county).to_owned(), tokens.issue(county, "make run demo").await?.token);
    }
    Ok(issued)
}

/// Issues a NATS identity for each demo county (every start: old ones stay until revoked).
async fn seed_nats_identities(
    users: &bashu_registry::NatsUsers,
) -> bashu_registry::Result<std::collections::BTreeMap<String, String>> {
    let mut issued = std::collections::BTreeMap::new();
    for county in DEMO_COUNTIES {
        let identity = users.issue(bashu_proto::registry::v1::NatsUserKind::County, county, "make run demo").await?;
        issued.insert((*county).to_owned(), identity.seed);
    }
    Ok(issued)
}

/// What the demo seed issued: desk keys, county tokens and county NATS seeds. Written to the
/// demo credentials file (dev mode only), which `bashu demo` reads back.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seeded {
    /// The demo desks and their secret keys.
    pub desks: Vec<DemoDesk>,
    /// A token for each demo county (county code → token).
    pub county_tokens: std::collections::BTreeMap<String, String>,
    /// A NATS identity's seed for each demo county (code → seed).
    #[serde(default)]
    pub nats_seeds: std::collections::BTreeMap<String, String>,
}

/// Writes the demo registry (alliances, partnerships, subscriptions, desks with fresh keys) and
/// issues the demo counties' tokens and NATS identities.
pub async fn seed(
    store: &bashu_registry::RegistryStore,
    tokens: &bashu_registry::CountyTokens,
    users: &bashu_registry::NatsUsers,
) -> bashu_registry::Result<Seeded> {
    bashu_registry::demo_seed(store).await?;
    Ok(Seeded {
        desks: seed_desks(store).await?,
        county_tokens: seed_county_tokens(tokens).await?,
        nats_seeds: seed_nats_identities(users).await?,
    })
}

/// Options of `bashu demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Ingest's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// Counties whose feeds to read (their durable consumers are acknowledged as a county would).
    #[arg(long, value_delimiter = ',', default_value = "500153,510781,500117")]
    pub watch: Vec<String>,
    /// Stop after this many seconds instead of reading until interrupted.
    #[arg(long)]
    pub for_seconds: Option<u64>,
}

fn demo_stories(run: u64) -> Vec<serde_json::Value> {
    vec![
        json!({
            "id": format!("demo-{run}-longchang-1"), "version": 1, "originCounty": "511083",
            "headline": "隆昌荣昌联合采访：川南渝西石板河畔的跨省夜市",
            "summary": "两地融媒体中心首次联合采制，同一条新闻两地同步发布。",
            "body": "隆昌市与荣昌区的记者沿着省界同行采访……（演示稿件）",
            "category": "CATEGORY_CULTURE_TOURISM", "tags": ["成渝双城", "联合采访"],
            "countiesConcerned": ["511083", "500153"],
            "attribution": {"source": "隆昌市融媒体中心", "originalAuthor": "示例记者", "responsibleEditor": "示例编辑"},
            "sharing": {"partners": true, "attributionRequired": true}
        }),
        json!({
            "id": format!("demo-{run}-fucheng-1"), "version": 1, "originCounty": "510703",
            "headline": "涪江流域十县区启动春季护渔联合行动",
            "body": "从平武到合川，涪江沿线县区同步开展增殖放流……（演示稿件）",
            "category": "CATEGORY_LIVELIHOOD",
            "sharing": {"alliances": ["fujiang"]}
        }),
        json!({
            "id": format!("demo-{run}-longchang-2"), "version": 1, "originCounty": "511028",
            "headline": "旧编码也能投稿：隆昌县代码 511028 自动解析为隆昌市 511083",
            "body": "档案系统里的旧行政区划代码仍然被接受，回执里会注明解析结果。（演示稿件）",
            "category": "CATEGORY_OTHER",
            "sharing": {"partners": true}
        }),
    ]
}

async fn connect_as_county(config: &Config, credentials: &Seeded, county: &str) -> anyhow::Result<Bus> {
    let subjects = Subjects::new(&config.nats.prefix)?;
    let mut identity = bashu_bus::Credentials { tls_ca_file: config.nats.tls_ca_file.clone(), ..Default::default() };
    if config.nats.nkey_dir.is_some() {
        let seed = credentials
            .nats_seeds
            .get(county)
            .ok_or_else(|| anyhow::anyhow!("no NATS identity for {county} in the demo credentials"))?;
        identity.nkey_seed = Some(seed.clone());
        identity.inbox_prefix = Some(bashu_bus::county_inbox(county));
    }
    let name = format!("bashu-demo-{county}");
    Ok(Bus::connect_as(&config.nats.url, &name, &identity, subjects, Topology::default()).await?)
}

/// Runs the demo.
pub async fn run(args: DemoArgs, config: &Config) -> anyhow::Result<()> {
    let counties = Counties::builtin()?;
    let names: HashMap<String, String> = counties.all().iter().map(|c| (c.code.clone(), c.name.clone())).collect();
    let path = config
        .registry
        .demo_credentials_file
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the demo needs registry.demo_credentials_file (make run sets it)"))?;
    let credentials: Seeded = serde_json::from_slice(&std::fs::read(path)?)?;

    // Each county's feed is read as that county would: its own connection, under its own NATS
    // identity when the server enforces them (nats.nkey_dir set, as make run does).
    let mut readers = Vec::new();
    let mut live = Vec::new();
    for code in &args.watch {
        let county = counties.resolve(code)?.county.code.clone();
        let bus = connect_as_county(config, &credentials, &county).await?;
        let spec = bus.stories().county_feed_consumer(&county)?;
        let consumer: PullConsumer = bus
            .jetstream()
            .get_consumer_from_stream(spec.durable(), spec.stream())
            .await
            .map_err(|e| anyhow::anyhow!("feed consumer {} (is distribution running?): {e}", spec.durable()))?;
        live.push(bus.client().subscribe(bus.subjects().alert_live(&county)?).await?);
        readers.push(tokio::spawn(read_feed(bus, consumer, county, names.clone())));
    }

    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let http = crate::http_client();
    let stories = demo_stories(run);
    // The first story again at the end shows that a resubmission changes nothing.
    for story in stories.iter().chain(stories.first()) {
        let origin = counties.resolve(story["originCounty"].as_str().unwrap_or(""))?.county.code.clone();
        let token = credentials.county_tokens.get(&origin).map(String::as_str).unwrap_or("");
        let response = http.post(format!("{}/v1/stories", args.http)).bearer_auth(token).json(story).send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        println!(
            "submitted {:<28} from {} → HTTP {status} {body}",
            story["id"].as_str().unwrap_or(""),
            story["originCounty"]
        );
    }
    let bad = json!({"id": "demo-bad", "version": 1, "originCounty": "999999", "headline": "", "body": "x", "category": "CATEGORY_OTHER", "sharing": {"partners": true}});
    let token = credentials.county_tokens.get("510703").map(String::as_str).unwrap_or("");
    let response = http.post(format!("{}/v1/stories", args.http)).bearer_auth(token).json(&bad).send().await?;
    println!("submitted a bad story → HTTP {} {}", response.status(), response.text().await.unwrap_or_default());

    let jiangyou = credentials.county_tokens.get("510781").cloned().unwrap_or_default();
    demo_alert(live, &http, &args, credentials.desks, &jiangyou, &names).await?;
    let rongchang = credentials.county_tokens.get("500153").cloned().unwrap_or_default();
    demo_pool(&http, &args, &rongchang, &names).await;

    match args.for_seconds {
        Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
        None => {
            println!("reading feeds of {} — Ctrl-C to stop", args.watch.join(", "));
            tokio::signal::ctrl_c().await?;
        }
    }
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

/// The shared content pool as 荣昌区's editor searches it (docs/pool.md): in traditional
/// characters, for a story 隆昌 shared with its partners.
async fn demo_pool(http: &reqwest::Client, args: &DemoArgs, token: &str, names: &HashMap<String, String>) {
    let query = "跨省夜市 -廣告";
    let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let url = format!("{}/v1/pool/search?q={encoded}&sort=newest&page_size=3", args.http);
    for _ in 0..50 {
        let response = http.get(&url).bearer_auth(token).send().await;
        let Ok(response) = response else { break };
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        if let Some(hits) = answer["hits"].as_array().filter(|hits| !hits.is_empty()) {
            println!("pool of 500153 荣昌区, searching {query:?}: {} found", answer["total"].as_str().unwrap_or("?"));
            for hit in hits {
                let origin = hit["story"]["originCounty"].as_str().unwrap_or_default();
                println!(
                    "  {} ({} {})",
                    hit["headlineHtml"].as_str().unwrap_or_default().replace("<mark>", "【").replace("</mark>", "】"),
                    origin,
                    names.get(origin).cloned().unwrap_or_default()
                );
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("pool of 500153: nothing found for {query:?} yet (is distribution running?)");
}

/// A signed Exercise flood warning from the 绵阳 desk to prefecture 5107, live arrivals printed,
/// one county acknowledging, and the status board's counts.
async fn demo_alert(
    live: Vec<bashu_bus::async_nats::Subscriber>,
    http: &reqwest::Client,
    args: &DemoArgs,
    desks: Vec<DemoDesk>,
    jiangyou_token: &str,
    names: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let desk = desks.into_iter().find(|d| d.id == "mianyang").ok_or_else(|| anyhow::anyhow!("no mianyang desk"))?;

    let mut live = futures::stream::select_all(live);
    let names = names.clone();
    let printer = tokio::spawn(async move {
        while let Some(message) = live.next().await {
            if let Ok(delivery) = bashu_proto::alert::v1::AlertDelivery::decode(message.payload) {
                let alert = delivery.alert.unwrap_or_default();
                let headline = alert.infos.first().map(|i| i.headline.clone()).unwrap_or_default();
                let county = &delivery.county;
                println!(
                    "alert {county} {} ← [{}] {headline}",
                    names.get(county).cloned().unwrap_or_default(),
                    alert.status().as_str_name()
                );
            }
        }
    });

    let now = bashu_proto::time::now().seconds;
    let identifier = format!("MY-FLOOD-{now}");
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>mianyang@bashu.example</sender>
  <sent>2026-11-28T10:00:00+08:00</sent>
  <status>Exercise</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>涪江洪水</event>
    <responseType>Evacuate</responseType>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <senderName>绵阳市应急值守（演练）</senderName>
    <headline>涪江洪水橙色预警（演练）</headline>
    <instruction>沿江低洼地带群众立即转移。（演练）</instruction>
    <area>
      <areaDesc>绵阳市</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>5107</value></geocode>
    </area>
  </info>
</alert>"#
    );
    let response = desk.post_alert(http, &args.http, xml).await?;
    let status = response.status();
    let accepted: serde_json::Value = response.json().await.unwrap_or_default();
    println!("issued alert {identifier} as desk mianyang → HTTP {status}");
    let Some(key) = accepted["alertKey"].as_str() else { return Ok(()) };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let ack = json!({"county": "510781", "acknowledgedBy": "江油市融媒体中心 值班员"});
    // 江油 acknowledges with its own token, and reads the alert's state with it.
    let url = format!("{}/v1/alerts/{key}", args.http);
    http.post(format!("{url}/acknowledgements")).bearer_auth(jiangyou_token).json(&ack).send().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let chain: serde_json::Value = http.get(&url).bearer_auth(jiangyou_token).send().await?.json().await?;
    let mut counts: std::collections::BTreeMap<String, u32> = Default::default();
    for county in chain["counties"].as_array().into_iter().flatten() {
        *counts
            .entry(
                bashu_proto::alert::v1::CountyAlertState::from_str_name(county["state"].as_str().unwrap_or(""))
                    .map_or_else(|| "unknown".to_owned(), |state| state.short_name()),
            )
            .or_default() += 1;
    }
    println!("alert board for {identifier}: {counts:?} (GET {}/v1/alerts/{key})", args.http);
    printer.abort();
    Ok(())
}

async fn read_feed(
    bus: Bus,
    consumer: PullConsumer,
    county: String,
    names: HashMap<String, String>,
) -> anyhow::Result<()> {
    let mut messages = consumer.messages().await?;
    let name = |code: &str| names.get(code).cloned().unwrap_or_default();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        // A feed carries story copies and moderation's decisions on the county's own stories: the
        // subject says which, as docs/county-integration.md tells a county's reader.
        let arrival = Arrival { subjects: bus.subjects(), subject: &message.subject, event_type: None };
        match FeedEvent::decode_incoming(arrival, message.payload.clone()) {
            Ok(FeedEvent::Story(delivery)) => {
                let story = delivery.story.unwrap_or_default();
                println!(
                    "feed {county} {} ← {} {}: {} (v{})",
                    name(&county),
                    story.origin_county,
                    name(&story.origin_county),
                    story.headline,
                    story.version
                );
                bus.publish(&StoryReceipt {
                    story_id: story.id,
                    version: story.version,
                    county: county.clone(),
                    received_at: Some(bashu_proto::time::now()),
                    origin_county: story.origin_county,
                })
                .await?;
            }
            Ok(FeedEvent::Decision(notice)) => {
                let decision = notice.decision.unwrap_or_default();
                let story = decision.story.clone().unwrap_or_default();
                println!(
                    "feed {county} {}: moderation {} \"{}\" (v{}): {}",
                    name(&county),
                    decision.verdict().as_str_name(),
                    story.headline,
                    story.version,
                    decision.reason
                );
            }
            // Something this reader does not know: said, and acknowledged, so the feed goes on.
            Err(error) => println!("feed {county}: skipped a message on {}: {error}", message.subject),
        }
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(())
}
