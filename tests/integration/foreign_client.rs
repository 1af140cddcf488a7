//! Clients in another language, written from the docs: Python's grpcio calls the admin API with
//! the services and messages learnt from server reflection (no copy of Bashu's .proto files) and
//! the standard gRPC health service; the county reader of docs/county-integration.md (nats-py with
//! nkeys) reads a county's feed under production's names and permissions. `make test` installs
//! the pinned packages into `.tools/python`.

use std::{path::PathBuf, sync::Arc};

use bashu::Target;
use bashu_proto::{registry::v1::NatsUserKind, story::v1::StoryReceipt};
use bashu_registry::{Counties, CountyTokens};
use bashu_tests::{OPERATOR_TOKEN, PATIENCE, SecuredSystem, TestSystem, eventually, story_json};
use serde_json::{Value, json};

fn python_path() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tools = root.join(".tools/python");
    assert!(
        tools.join("grpc_reflection").is_dir(),
        "grpcio is not installed in {}: run `make test` (or scripts/install-python-tools.sh) first",
        tools.display()
    );
    tools
}

#[tokio::test]
async fn a_python_client_calls_the_admin_api_through_reflection() {
    let t = TestSystem::start_with(&[Target::Admin]).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/admin_client.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(t.system.grpc_addr.to_string())
        .arg(OPERATOR_TOKEN)
        .env("PYTHONPATH", python_path())
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python client failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the client prints JSON");
    let services: Vec<&str> = seen["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    for service in bashu_admin::Admin::SERVICE_NAMES {
        assert!(services.contains(&service), "{service} not reflected: {services:?}");
    }
    assert!(services.contains(&"grpc.health.v1.Health"));
    assert_eq!(seen["chongqing_units"], 37);
    assert_eq!(seen["first_chongqing_unit"]["provinceCode"], "50");
    assert_eq!(seen["without_token"], "UNAUTHENTICATED");
    assert_eq!(seen["unknown_county"], "NOT_FOUND");
    assert_eq!(seen["health"], "SERVING");
}

/// A county's NATS identity, issued as an operator does and written where its client reads it;
/// returns the seed file once nats-server lets the identity in.
async fn county_identity(secured: &SecuredSystem, county: &str, dir: &std::path::Path) -> PathBuf {
    let identity = secured.issue(NatsUserKind::County, county, "python example").await;
    let seed = dir.join(format!("{county}.nk"));
    std::fs::write(&seed, &identity.seed).unwrap();
    eventually("the watcher let the identity in", || async {
        let options = async_nats::ConnectOptions::with_nkey(identity.seed.clone())
            .custom_inbox_prefix(bashu_bus::county_inbox(county));
        options.connect(&secured.url).await.is_ok()
    })
    .await;
    seed
}

/// The Python message classes of `protos`, made as the docs say (grpcio-tools' protoc); returns
/// the PYTHONPATH for an example: the pinned packages and the classes.
fn python_classes(protos: &[&str], dir: &std::path::Path) -> std::ffi::OsString {
    let generated = dir.join("gen");
    std::fs::create_dir_all(&generated).unwrap();
    let protoc = std::process::Command::new("python3")
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["-m", "grpc_tools.protoc", "-I", "proto", "--python_out"])
        .arg(&generated)
        .args(protos)
        .env("PYTHONPATH", python_path())
        .output()
        .expect("python3 runs");
    assert!(protoc.status.success(), "protoc: {}", String::from_utf8_lossy(&protoc.stderr));
    std::env::join_paths([python_path(), generated]).unwrap()
}

/// docs/county-integration.md's Python reader, run as the page says, as county 500153 under its
/// own NATS identity, with production's stream and subject names: it gets a partner's story and a
/// decision on its own story, confirms the story, and the server refuses it nothing.
#[tokio::test]
async fn the_python_county_reader_handles_every_type_its_feed_carries() {
    const READER: &str = "500153";
    const PARTNER: &str = "511083";
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), json!({"lexicon": [{"term": "禁词", "action": "reject"}]}).to_string()).unwrap();
    let secured = SecuredSystem::start("", |config| config.moderation.rules_file = Some(rules.path().to_owned())).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::tempdir().unwrap();
    let seed = county_identity(&secured, READER, work.path()).await;

    let tokens = CountyTokens::open(&secured.admin, Arc::new(Counties::builtin().unwrap())).await.unwrap();
    let submit = |county: &'static str, story: Value| {
        let tokens = tokens.clone();
        let http = format!("http://{}/v1/stories", secured.system.http_addr);
        async move {
            let token = tokens.issue(county, "test").await.unwrap().token;
            let answer = bashu::http_client().post(http).bearer_auth(token).json(&story).send().await.unwrap();
            assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap_or_default());
        }
    };
    submit(PARTNER, story_json("py-partner", PARTNER, json!({"counties": [READER]}))).await;
    // The reader's own story breaks a rule: its origin hears of it on its feed.
    let mut own = story_json("py-own", READER, json!({"partners": true}));
    own["body"] = json!("这篇稿件含有禁词，会被拒绝。");
    submit(READER, own).await;

    let python_path =
        python_classes(&["proto/bashu/story/v1/story.proto", "proto/bashu/story/v1/events.proto"], work.path());
    let mut reader = tokio::process::Command::new("python3")
        .arg(root.join("examples/county/feed_reader.py"))
        .args(["--server", &secured.url, "--county", READER, "--seed"])
        .arg(&seed)
        .args(["--max-messages", "2"])
        .env("PYTHONPATH", python_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let finished = tokio::time::timeout(PATIENCE, reader.wait()).await;
    if finished.is_err() {
        reader.start_kill().unwrap();
    }
    let output = reader.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(finished.is_ok(), "the reader did not finish: {stderr}\n{stdout}\n{}", secured.nats.log());
    assert!(output.status.success(), "the reader failed: {stderr}\n{stdout}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let of = |kind: &str| lines.iter().find(|l| l["type"] == kind).unwrap_or_else(|| panic!("no {kind}: {stdout}"));
    assert_eq!(
        (of("story")["key"].as_str(), of("story")["withdrawn"].as_bool()),
        (Some("511083.py-partner.1"), Some(false))
    );
    assert_eq!(
        (of("decision")["key"].as_str(), of("decision")["verdict"].as_str()),
        (Some("500153.py-own.1"), Some("VERDICT_REJECTED"))
    );

    let receipts = secured.subjects.story_receipt(READER).unwrap();
    let stored: Vec<StoryReceipt> = secured.admin.operations().read_all(bashu_bus::STORIES, &receipts).await.unwrap();
    assert!(
        stored.iter().any(|r| r.story_id == "py-partner" && r.origin_county == PARTNER),
        "the reader's receipt is stored: {stored:?}"
    );
    let refused: Vec<String> =
        secured.nats.log().lines().filter(|l| l.contains("Violation")).map(str::to_owned).collect();
    assert!(refused.is_empty(), "the server refused something: {refused:#?}");
}

/// docs/alerts.md's Python reader, run as the page says, as county 510781 under its own NATS
/// identity with production's names: it gets the alert from its durable consumer, confirms
/// receipt and acknowledges in the duty officer's name, and the chain says so.
#[tokio::test]
async fn the_python_alert_reader_receives_and_acknowledges_as_its_county() {
    const COUNTY: &str = "510781";
    let secured = SecuredSystem::start("", |_| {}).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::tempdir().unwrap();
    let seed = county_identity(&secured, COUNTY, work.path()).await;
    let desk = secured.system.demo.desks.iter().find(|d| d.id == "mianyang").unwrap();
    let cap = crate::alerts::cap("PY-ALERT-1", "Alert", "Exercise", "Severe", None, &crate::alerts::gbt(COUNTY));
    let base = format!("http://{}", secured.system.http_addr);
    let answer = desk.post_alert(&bashu::http_client(), &base, cap).await.unwrap();
    assert_eq!(answer.status(), 202);
    let accepted: Value = answer.json().await.unwrap();
    let key = accepted["alertKey"].as_str().unwrap().to_owned();

    let python_path = python_classes(&["proto/bashu/alert/v1/alert.proto"], work.path());
    let reader = tokio::process::Command::new("python3")
        .arg(root.join("examples/county/alert_reader.py"))
        .args(["--server", &secured.url, "--county", COUNTY, "--seed"])
        .arg(&seed)
        .args(["--on-duty", "江油值班员 李", "--max-alerts", "1"])
        .env("PYTHONPATH", python_path)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, reader).await.expect("the reader finishes").expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the reader failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let line: Value = serde_json::from_str(stdout.lines().next().expect("a line")).expect("JSON");
    assert_eq!((line["alertKey"].as_str(), line["msgType"].as_str()), (Some(key.as_str()), Some("MSG_TYPE_ALERT")));

    let operator =
        bashu_tests::bearer_channel(&format!("http://{}", secured.system.grpc_addr), OPERATOR_TOKEN).await.unwrap();
    let board = bashu_proto::admin::v1::alert_board_service_client::AlertBoardServiceClient::new(operator);
    eventually("the county is acknowledged in the officer's name, its receipt recorded", || {
        let request = bashu_proto::alert::v1::GetAlertStatusRequest { alert_key: key.clone() };
        let mut board = board.clone();
        async move {
            let chain = board.get_alert_status(request).await.unwrap().into_inner();
            chain.counties.iter().any(|c| {
                c.county == COUNTY
                    && c.state() == bashu_proto::alert::v1::CountyAlertState::Acknowledged
                    && c.received_at.is_some()
                    && c.acknowledged_by == "江油值班员 李"
                    && c.recorded_by.is_empty()
            })
        }
    })
    .await;
    let refused: Vec<String> =
        secured.nats.log().lines().filter(|l| l.contains("Violation")).map(str::to_owned).collect();
    assert!(refused.is_empty(), "the server refused something: {refused:#?}");
}
