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
pub const DEMO_COUNTIES: &[&str] =
    &["511083", "510703", "500153", "510781", "500117", "500101", "500118", "500116", "510521", "511504"];

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

    // The railway plan takes a few seconds (a phase must fall due): it runs beside the rest.
    let coverage = tokio::spawn(demo_coverage(http.clone(), args.http.clone(), credentials.county_tokens.clone(), run));
    let jiangyou = credentials.county_tokens.get("510781").cloned().unwrap_or_default();
    demo_alert(live, &http, &args, credentials.desks, &jiangyou, &names).await?;
    let rongchang = credentials.county_tokens.get("500153").cloned().unwrap_or_default();
    demo_pool(&http, &args, &rongchang, &names).await;

    match args.for_seconds {
        Some(seconds) => {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            // The settlement is printed before the demo ends.
            let _ = tokio::time::timeout(Duration::from_secs(30), coverage).await;
        }
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

/// The counties along the Chongqing–Kunming railway's Sichuan–Chongqing section in the demo plan:
/// 永川区 proposes it; 江津区, 泸县 and 叙州区 join.
const RAILWAY: [&str; 4] = ["500118", "500116", "510521", "511504"];

/// The demo's joint coverage plan "渝昆高铁川渝段开通" (docs/coverage.md): proposed, joined,
/// phases claimed, stories in each phase (the last phase's only story comes after its due time,
/// so it is late), then closed and settled, the settlement printed.
async fn demo_coverage(
    http: reqwest::Client,
    base: String,
    tokens: std::collections::BTreeMap<String, String>,
    run: u64,
) {
    if let Err(error) = railway_plan(&http, &base, &tokens, run).await {
        println!("coverage demo stopped: {error}");
    }
}

async fn railway_plan(
    http: &reqwest::Client,
    base: &str,
    tokens: &std::collections::BTreeMap<String, String>,
    run: u64,
) -> anyhow::Result<()> {
    let [yongchuan, jiangjin, luxian, xuzhou] = RAILWAY;
    let token = |county: &str| tokens.get(county).cloned().unwrap_or_default();
    let call = |county: &str, path: String, body: serde_json::Value| {
        let request = http.post(format!("{base}{path}")).bearer_auth(token(county)).json(&body);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            anyhow::ensure!(status.is_success(), "{status} {answer}");
            Ok::<_, anyhow::Error>(answer)
        }
    };
    let at = |seconds: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
        t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    let plan = format!("yukun-rail-{run}");
    let phase = |name: &str, title: &str, due: i64, kinds: &[&str]| json!({"name": name, "title": title, "dueAt": at(due), "kinds": kinds});
    call(
        yongchuan,
        "/v1/coverage/plans".into(),
        json!({
            "planId": plan,
            "topic": "渝昆高铁川渝段开通",
            "description": "沿线区县联合报道：前方体验采访、中期专家解读、后期影响评估。",
            "category": "CATEGORY_MAJOR_PROJECT",
            "windowStart": at(-3600),
            "windowEnd": at(3 * 86_400),
            "phases": [
                phase("experience", "前方体验采访", 6, &["CONTRIBUTION_KIND_TEXT", "CONTRIBUTION_KIND_VIDEO", "CONTRIBUTION_KIND_LIVE"]),
                phase("expert", "中期专家解读", 6, &["CONTRIBUTION_KIND_TEXT"]),
                phase("impact", "后期影响评估", 7, &["CONTRIBUTION_KIND_TEXT"]),
            ],
            "invitees": {"counties": [jiangjin, luxian, xuzhou]},
            "weights": {
                "proposerSharePercent": 10,
                "phaseSharePercent": {"experience": 40, "expert": 30, "impact": 20},
                "kindPoints": {"text": 10, "video": 20, "live": 30},
                "onTimeBonusPercent": 20,
                "reusePoints": 2
            }
        }),
    )
    .await?;
    for county in [jiangjin, luxian, xuzhou] {
        call(county, format!("/v1/coverage/plans/{plan}/answer"), json!({"answer": "accepted"})).await?;
    }
    for (county, phase) in [(yongchuan, "experience"), (luxian, "expert"), (xuzhou, "impact")] {
        call(county, format!("/v1/coverage/plans/{plan}/phases/{phase}/claim"), json!({})).await?;
    }
    call(yongchuan, format!("/v1/coverage/plans/{plan}/state"), json!({"state": "active"})).await?;
    // 江津's website follows the plan's channel (专题).
    call(jiangjin, format!("/v1/coverage/plans/{plan}/channel"), json!({"subscribe": true})).await?;
    println!("coverage plan {plan} 渝昆高铁川渝段开通: proposed by 500118 永川区, joined by 江津区, 泸县, 叙州区");

    let story = |origin: &str, id: &str, phase: &str, kind: &str, headline: &str| {
        json!({
            "id": format!("{id}-{run}"),
            "version": 1,
            "originCounty": origin,
            "headline": headline,
            "body": format!("{headline}。（演示稿件 {run}）"),
            "category": "CATEGORY_MAJOR_PROJECT",
            "sharing": {"counties": RAILWAY},
            "coverage": {"planId": plan, "phase": phase, "kind": kind}
        })
    };
    let on_time = [
        story(yongchuan, "yc-ride", "experience", "CONTRIBUTION_KIND_VIDEO", "记者乘首班车体验渝昆高铁"),
        story(luxian, "lx-station", "experience", "CONTRIBUTION_KIND_TEXT", "泸县站开通首日客流"),
        story(jiangjin, "jj-live", "experience", "CONTRIBUTION_KIND_LIVE", "江津站直播：首班车进站"),
        story(luxian, "lx-expert", "expert", "CONTRIBUTION_KIND_TEXT", "专家解读高铁对川南的意义"),
        story(jiangjin, "jj-expert", "expert", "CONTRIBUTION_KIND_TEXT", "江津专家谈沿线产业"),
    ];
    for story in &on_time {
        let origin = story["originCounty"].as_str().unwrap_or_default();
        call(origin, "/v1/stories".into(), story.clone()).await?;
    }
    // The impact phase's story comes after its due time: the phase is flagged, the story late.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let late = story(xuzhou, "xz-impact", "impact", "CONTRIBUTION_KIND_TEXT", "渝昆高铁对叙州经济的影响");
    call(xuzhou, "/v1/stories".into(), late).await?;
    // 江津区 reuses 永川区's video, as its editor would mark it in the content pool.
    let used = json!({"originCounty": yongchuan, "storyId": format!("yc-ride-{run}"), "placement": "江津融媒客户端"});
    for _ in 0..50 {
        if call(jiangjin, "/v1/pool/used".into(), used.clone()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..100 {
        let view: serde_json::Value = http
            .get(format!("{base}/v1/coverage/plans/{plan}"))
            .bearer_auth(token(yongchuan))
            .send()
            .await?
            .json()
            .await?;
        let items: Vec<&serde_json::Value> = view["chain"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["items"].as_array().into_iter().flatten())
            .collect();
        if items.len() == 6 && items.iter().all(|i| i["approvedVersion"].as_u64() == Some(1)) {
            for phase in view["chain"].as_array().into_iter().flatten() {
                println!(
                    "  phase {:<10} {} {}",
                    phase["phase"]["name"].as_str().unwrap_or_default(),
                    phase["phase"]["title"].as_str().unwrap_or_default(),
                    phase["status"].as_str().unwrap_or_default()
                );
                for item in phase["items"].as_array().into_iter().flatten() {
                    println!(
                        "    {} {:<22} {:<5} {}",
                        item["originCounty"].as_str().unwrap_or_default(),
                        item["storyId"].as_str().unwrap_or_default(),
                        item["kind"].as_str().unwrap_or_default(),
                        if item["onTime"].as_bool() == Some(true) { "on time" } else { "LATE" }
                    );
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let package: serde_json::Value = http
        .get(format!("{base}/v1/coverage/plans/{plan}/channel.ninjs"))
        .bearer_auth(token(jiangjin))
        .send()
        .await?
        .json()
        .await?;
    let items = package["associations"].as_array().map_or(0, Vec::len);
    println!("coverage channel of {plan} for 500116 江津区: a ninjs package of {items} stories");
    call(yongchuan, format!("/v1/coverage/plans/{plan}/state"), json!({"state": "closed"})).await?;
    let settlement: serde_json::Value = http
        .get(format!("{base}/v1/coverage/plans/{plan}/settlement?pool=100000"))
        .bearer_auth(token(yongchuan))
        .send()
        .await?
        .json()
        .await?;
    println!("coverage settlement of {plan}, pool 100000:");
    for share in settlement["shares"].as_array().into_iter().flatten() {
        let hundredths: u64 = share["amountHundredths"].as_str().unwrap_or("0").parse().unwrap_or(0);
        println!("  {} {:>10}.{:02}", share["county"].as_str().unwrap_or_default(), hundredths / 100, hundredths % 100);
    }
    Ok(())
}
