//! The duty board (`/board/` on the admin target): who may open it, what its live stream
//! carries, and the whole page in Debian's headless Chromium (tests/browser/board.e2e.mjs).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use bashu::Target;
use bashu_proto::{
    admin::v1::{RevokeStaffTokenRequest, credential_service_client::CredentialServiceClient},
    registry::v1::StaffRole,
};
use bashu_registry::Counties;
use bashu_tests::TestSystem;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::alerts::{cap, gbt};

/// The counties of a prefecture by the built-in registry: what an alert to it must show.
fn counties_of(prefecture: &str) -> BTreeSet<String> {
    Counties::builtin().unwrap().within(prefecture).map(|c| c.code.clone()).collect()
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The value of the board's cookie in a sign-in answer, and the whole `Set-Cookie` line.
fn board_cookie(response: &reqwest::Response) -> (String, String) {
    let line = response.headers().get("set-cookie").expect("a cookie is set").to_str().unwrap().to_owned();
    let pair = line.split(';').next().unwrap().trim();
    (pair.strip_prefix("bashu_board=").expect("the board's cookie").to_owned(), line)
}

/// Signs in to the board at `base` with `token`; the cookie's value.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> String {
    let response = http.post(format!("{base}/session")).body(json!({"token": token}).to_string()).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200, "the board signs a staff token in");
    board_cookie(&response).0
}

/// Opens the board's live stream with its cookie.
async fn open_events(http: &reqwest::Client, base: &str, cookie: &str) -> reqwest::Response {
    let stream = http.get(format!("{base}/events")).header("cookie", format!("bashu_board={cookie}")).send().await;
    let stream = stream.unwrap();
    assert_eq!(stream.status(), 200, "the board opens its stream to a signed-in page");
    stream
}

#[tokio::test]
async fn the_board_refuses_anyone_without_a_live_staff_token() {
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let http = bashu::http_client();
    let base = format!("{}/board", t.http_base());

    // The page itself is public (it is only the login form); nothing behind it is.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"), "{policy}");
    for path in ["session", "counties", "events"] {
        let (status, body) = answer(http.get(format!("{base}/{path}")).send().await.unwrap()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{path} without a token");
        let forged = http.get(format!("{base}/{path}")).header("cookie", "bashu_board=bm90LWEtdG9rZW4").send().await;
        assert_eq!(forged.unwrap().status(), 401, "{path} with a cookie that is no token");
    }

    // Sign-in refusals: a wrong token, a county's token (not staff), malformed and oversized bodies.
    let sign_in = |body: Vec<u8>| http.post(format!("{base}/session")).body(body).send();
    let (status, body) =
        answer(sign_in(json!({"token": "wrong-token-0123456789"}).to_string().into()).await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")));
    let county_token = t.token_for("510781").await;
    let (status, _) = answer(sign_in(json!({"token": county_token}).to_string().into()).await.unwrap()).await;
    assert_eq!(status, 401, "a county's token does not open the board");
    let (status, body) = answer(sign_in(b"token=abc".to_vec()).await.unwrap()).await;
    assert_eq!((status, body["error"]["problems"][0]["field"].as_str()), (400, Some("body")));
    let (status, body) = answer(sign_in(json!({"token": "  "}).to_string().into()).await.unwrap()).await;
    assert_eq!((status, body["error"]["problems"][0]["field"].as_str()), (400, Some("token")));
    let (status, _) = answer(sign_in(vec![b' '; 10_000]).await.unwrap()).await;
    assert_eq!(status, 413);

    // A viewer's token signs in; the cookie is out of the script's reach and sent only to /board.
    let (id, viewer) = t.issue_staff_token("board-viewer", StaffRole::Viewer, vec![], "").await;
    let signed_in = sign_in(json!({"token": viewer}).to_string().into()).await.unwrap();
    assert_eq!(signed_in.status(), 200);
    let (cookie, line) = board_cookie(&signed_in);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/board"] {
        assert!(line.contains(attribute), "{attribute} missing from {line}");
    }
    let who: Value = signed_in.json().await.unwrap();
    assert_eq!((who["name"].as_str(), who["role"].as_str()), (Some("board-viewer"), Some("viewer")));
    let with_cookie =
        |path: &str| http.get(format!("{base}/{path}")).header("cookie", format!("bashu_board={cookie}")).send();
    let counties: Value = with_cookie("counties").await.unwrap().json().await.unwrap();
    let counties = counties.as_array().unwrap();
    assert_eq!(counties.len(), 220);
    let jiangyou = counties.iter().find(|c| c["code"] == "510781").unwrap();
    assert_eq!((jiangyou["name"].as_str(), jiangyou["prefecture_code"].as_str()), (Some("江油市"), Some("5107")));
    assert!(!jiangyou["pinyin"].as_str().unwrap().is_empty());

    // Revoked: refused from the next request on.
    let mut credentials = CredentialServiceClient::new(t.operator_channel().await);
    credentials.revoke_staff_token(RevokeStaffTokenRequest { id }).await.unwrap();
    assert_eq!(with_cookie("session").await.unwrap().status(), 401);
    assert_eq!(with_cookie("events").await.unwrap().status(), 401);
}

/// Reads server-sent events from `response` until `wanted` accepts one (name, data).
async fn read_events_until(response: reqwest::Response, mut wanted: impl FnMut(&str, &Value) -> bool) -> Vec<String> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut seen = Vec::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open")));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned())).unwrap_or_default()
                };
                let (name, data) = (field("event:"), field("data:"));
                seen.push(name.clone());
                if wanted(&name, &serde_json::from_str(&data).unwrap_or(Value::Null)) {
                    return;
                }
            }
        }
        panic!("the stream ended; events seen: {seen:?}");
    };
    // A hang guard, not a speed check.
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the awaited event came");
    seen
}

#[tokio::test]
async fn the_live_stream_starts_with_a_snapshot_and_carries_every_state_change() {
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let http = bashu::http_client();
    let base = format!("{}/board", t.http_base());
    let (_, desk_officer) = t.issue_staff_token("board-desk", StaffRole::Desk, vec![], "mianyang").await;
    let cookie = sign_in(&http, &base, &desk_officer).await;

    let stream = open_events(&http, &base, &cookie).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let issuing = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, answer) =
            t.issue_alert("mianyang", &cap("BOARD-1", "Alert", "Exercise", "Severe", None, &gbt("5107"))).await;
        assert_eq!(status, 202, "{answer}");
        answer["alertKey"].as_str().unwrap().to_owned()
    };
    let expected = counties_of("5107");
    let mut first = None;
    let watching = read_events_until(stream, |name, data| {
        first.get_or_insert(name.to_owned());
        let codes: BTreeSet<String> =
            data["counties"].as_array().into_iter().flatten().map(|c| c["code"].as_str().unwrap().to_owned()).collect();
        name == "chain" && data["identifier"] == "BOARD-1" && codes == expected
    });
    let (key, _) = tokio::join!(issuing, watching);
    assert_eq!(first.as_deref(), Some("snapshot"), "a page first gets the whole board");

    // A page opened now finds the alert in its snapshot, then sees the acknowledgement arrive.
    let stream = open_events(&http, &base, &cookie).await;
    let acknowledging = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(t.acknowledge(&key, "510781", "江油 值班员").await.0, 202);
    };
    let mut in_snapshot = false;
    let watching = read_events_until(stream, |name, data| {
        if name == "snapshot" {
            in_snapshot = data["chains"].as_array().unwrap().iter().any(|c| c["key"] == key.as_str());
        }
        let acknowledged =
            data["counties"].as_array().into_iter().flatten().any(|c| {
                c["code"] == "510781" && c["state"] == "acknowledged" && c["acknowledged_by"] == "江油 值班员"
            });
        name == "chain" && acknowledged
    });
    tokio::join!(acknowledging, watching);
    assert!(in_snapshot, "the snapshot of a page opened later holds the alert");
}

#[tokio::test]
async fn an_open_board_is_signed_out_when_its_token_is_revoked() {
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let http = bashu::http_client();
    let base = format!("{}/board", t.http_base());
    let (id, viewer) = t.issue_staff_token("board-leaver", StaffRole::Viewer, vec![], "").await;
    let stream = open_events(&http, &base, &sign_in(&http, &base, &viewer).await).await;

    let mut credentials = CredentialServiceClient::new(t.operator_channel().await);
    credentials.revoke_staff_token(RevokeStaffTokenRequest { id }).await.unwrap();
    // The stream checks its token every 30 s; the page then shows the login form.
    let seen = read_events_until(stream, |name, data| {
        name == "signed-out" && data["reason"].as_str().is_some_and(|r| r.contains("not a live staff token"))
    })
    .await;
    assert_eq!(seen.first().map(String::as_str), Some("snapshot"));
}

/// A loopback TCP proxy whose connections the test can cut, as a restarted admin pod or a
/// broken network would: while cut, open connections are dropped and new ones closed at once.
struct CuttableProxy {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    async fn start(to: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watching) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = watching.clone();
                if *cut.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// `tests/browser` with playwright-core installed (`make test-tools` does it).
fn browser_test_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run `make test-tools` (scripts/install-browser-tools.sh)",
        dir.display()
    );
    dir
}

/// Where the test keeps its screenshot: `artifacts/` at the top of the repository.
fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test]
async fn the_duty_board_in_headless_chromium() {
    let dir = browser_test_dir();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: run `make test-tools` (installs Debian's chromium)"
    );
    let t = TestSystem::start_with(&[Target::Alerts, Target::Admin]).await;
    let (_, viewer) = t.issue_staff_token("duty-viewer", StaffRole::Viewer, vec![], "").await;
    let proxy = CuttableProxy::start(t.system.http_addr).await;
    let screenshot = artifact("duty-board.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut script = tokio::process::Command::new("node")
        .arg(dir.join("board.e2e.mjs"))
        .current_dir(&dir)
        .env("BOARD_URL", format!("http://127.0.0.1:{}/board/", proxy.port))
        .env("BOARD_TOKEN", &viewer)
        .env("BOARD_SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Debian's nodejs)");
    let mut to_script = script.stdin.take().unwrap();
    let mut from_script = BufReader::new(script.stdout.take().unwrap()).lines();
    let mut next = async || -> Vec<String> {
        // A hang guard, not a speed check: a step that never comes fails with the script's output.
        let line = tokio::time::timeout(Duration::from_secs(120), from_script.next_line())
            .await
            .expect("the browser script answered within two minutes")
            .unwrap()
            .expect("the browser script went on (its error is above)");
        line.split(' ').map(str::to_owned).collect()
    };

    assert_eq!(next().await, ["signed-in"]);
    let (status, issued) =
        t.issue_alert("mianyang", &cap("BOARD-E2E", "Alert", "Exercise", "Severe", None, &gbt("5107"))).await;
    assert_eq!(status, 202, "{issued}");
    let key = issued["alertKey"].as_str().unwrap();
    let expected: Vec<String> = counties_of("5107").into_iter().collect();
    to_script.write_all(format!("alert {key} {}\n", expected.join(",")).as_bytes()).await.unwrap();

    let tiles = next().await;
    assert_eq!(tiles[0], "tiles");
    assert_eq!(tiles[1].split(',').collect::<Vec<_>>(), expected, "the page shows exactly the prefecture's counties");

    // A desk officer records 江油's confirmation taken by telephone: the tile names both.
    let (_, officer) =
        t.issue_staff_token("绵阳 王值班", bashu_proto::registry::v1::StaffRole::Desk, vec![], "mianyang").await;
    let answer = bashu::http_client()
        .post(format!("{}/v1/alerts/{key}/acknowledgements", t.http_base()))
        .bearer_auth(&officer)
        .json(&serde_json::json!({"county": "510781", "acknowledgedBy": "江油值班员"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    to_script.write_all("acknowledged 510781 江油值班员 绵阳 王值班 (desk)\n".as_bytes()).await.unwrap();
    assert_eq!(next().await, ["cut-now"]);
    proxy.set_cut(true);
    to_script.write_all(b"cut\n").await.unwrap();
    assert_eq!(next().await, ["restore-now"]);
    proxy.set_cut(false);
    to_script.write_all(b"restored\n").await.unwrap();
    assert_eq!(next().await, ["recovered"]);
    assert_eq!(t.acknowledge(key, "510703", "涪城值班员").await.0, 202);
    to_script.write_all("acknowledged 510703 涪城值班员\n".as_bytes()).await.unwrap();

    assert_eq!(next().await[0], "done");
    drop(to_script);
    let status = tokio::time::timeout(Duration::from_secs(60), script.wait()).await.unwrap().unwrap();
    assert!(status.success(), "the browser script failed: {status}");
    let png = std::fs::read(&screenshot).expect("the screenshot was kept");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "the screenshot is a real picture");
}

/// Runs one of `tests/browser/`'s scripts in headless Chromium against `t`'s board, with `env`
/// besides the board's URL and where to keep the screenshot; the lines it printed.
async fn run_browser_script(t: &TestSystem, script: &str, screenshot: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let dir = browser_test_dir();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "no Chromium at {chromium}: run `make test-tools`");
    let _ = std::fs::remove_file(screenshot);
    let output = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("BOARD_URL", format!("{}/board/", t.http_base()))
        .env("BOARD_SCREENSHOT", screenshot)
        .env("CHROMIUM", &chromium)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output();
    // A hang guard, not a speed check.
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the browser script finished within three minutes")
        .expect("node runs (Debian's nodejs)");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    assert!(output.status.success(), "{script} failed after {lines:?}: {}", String::from_utf8_lossy(&output.stderr));
    lines
}

#[tokio::test]
async fn the_pool_tab_in_headless_chromium() {
    let t = TestSystem::start_with(&[Target::Admin, Target::Ingest, Target::Moderation, Target::Distribution]).await;
    let (_, viewer) = t.issue_staff_token("pool-viewer", StaffRole::Viewer, vec![], "").await;
    let story = |id: &str, origin: &str, headline: &str, to: &str| {
        let mut story = bashu_tests::story_json(id, origin, json!({ "counties": [to] }));
        story["headline"] = json!(headline);
        story["body"] = json!(format!("{headline}。今天上午正式开通运营。"));
        story
    };
    for (id, origin, headline, to) in [
        ("rail-1", "511083", "成渝中线高铁全线开通", "500153"),
        ("flood-1", "500101", "万州区防汛演练", "500153"),
        ("secret-1", "510703", "涪城区高铁站规划", "510704"),
    ] {
        assert_eq!(t.post_story(&story(id, origin, headline, to)).await.0, 202);
    }
    // Another county's reuse of 万州's story, for the give-and-take panel.
    let use_note = bashu_proto::story::v1::StoryUse {
        story_id: "flood-1".into(),
        version: 1,
        county: "500153".into(),
        origin_county: "500101".into(),
        used_at: Some(bashu_proto::time::now()),
        placement: String::new(),
    };
    bashu_tests::eventually("the stories are in the pool", || async { t.published_count().await == 3 }).await;
    t.bus.publish(&use_note).await.unwrap();
    let county_token = t.token_for("500153").await;
    let reused = || async {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/pool/trends", t.http_base()))
            .bearer_auth(&county_token)
            .send()
            .await
            .unwrap();
        let trends: Value = response.json().await.unwrap();
        trends["giveTake"].as_array().is_some_and(|g| !g.is_empty())
    };
    bashu_tests::eventually("the pool counted the reuse", reused).await;

    let screenshot = artifact("duty-board-pool.png");
    let env = [("BOARD_TOKEN", viewer.as_str()), ("COUNTY_TOKEN", county_token.as_str())];
    let lines = run_browser_script(&t, "pool.e2e.mjs", &screenshot, &env).await;
    assert_eq!(lines[0], "found rail-1");
    assert_eq!(lines[1], "filtered 1", "only 隆昌's story is from Sichuan among what 500153 was given");
    assert_eq!(lines[2], "used rail-1");
    assert!(lines[3].starts_with("done "), "{lines:?}");
    assert!(screenshot.exists());
    let notes: Vec<bashu_proto::story::v1::StoryUse> =
        t.bus.operations().read_all(bashu_bus::STORIES, &t.bus.subjects().all_story_uses()).await.unwrap();
    assert!(
        notes.iter().any(|n| n.county == "500153" && n.story_id == "rail-1" && n.placement == "值班看板 duty board"),
        "the page's mark as used reached the bus: {notes:?}"
    );
}

#[tokio::test]
async fn the_coverage_tab_in_headless_chromium() {
    use crate::coverage::{contribution, fast_coverage, post_as, railway_plan, submit};
    let targets = [Target::Admin, Target::Ingest, Target::Moderation, Target::Coverage];
    let t = TestSystem::start_configured(&targets, fast_coverage).await;
    let (_, viewer) = t.issue_staff_token("coverage-viewer", StaffRole::Viewer, vec![], "").await;

    // The railway plan, every phase due in two seconds: experience and expert delivered in time,
    // impact with nothing in it.
    let plan = "yukun-board";
    let proposal = railway_plan(plan, time::OffsetDateTime::now_utc() + time::Duration::seconds(2));
    assert_eq!(post_as(&t, "500118", "/v1/coverage/plans", proposal).await.0, 200);
    for county in ["500116", "510521", "511504"] {
        let path = format!("/v1/coverage/plans/{plan}/answer");
        assert_eq!(post_as(&t, county, &path, json!({"answer": "accepted"})).await.0, 200);
    }
    let claim = format!("/v1/coverage/plans/{plan}/phases/impact/claim");
    assert_eq!(post_as(&t, "511504", &claim, json!({})).await.0, 200);
    assert_eq!(
        post_as(&t, "500118", &format!("/v1/coverage/plans/{plan}/state"), json!({"state": "active"})).await.0,
        200
    );
    submit(
        &t,
        &contribution("500118", "yc-ride", plan, "experience", "CONTRIBUTION_KIND_VIDEO", "记者乘首班车体验渝昆高铁"),
    )
    .await;
    submit(
        &t,
        &contribution("510521", "lx-expert", plan, "expert", "CONTRIBUTION_KIND_TEXT", "专家解读高铁对川南的意义"),
    )
    .await;
    let store = bashu_coverage_core::PlanStore::open(&t.bus).await.unwrap();
    bashu_tests::eventually("the experience phase is delivered and the impact phase flagged late", || async {
        let plan = store.plan(plan).await.unwrap().unwrap().value;
        let delivered = plan.phases[0].first_delivered_at.is_some() && plan.phases[1].first_delivered_at.is_some();
        delivered && plan.phases[2].late_flagged_at.is_some()
    })
    .await;

    let screenshot = artifact("duty-board-coverage.png");
    let lines =
        run_browser_script(&t, "coverage.e2e.mjs", &screenshot, &[("BOARD_TOKEN", &viewer), ("PLAN_ID", plan)]).await;
    assert_eq!(lines[..3], [format!("plan {plan}"), "delivered experience".into(), "late impact".into()]);
    assert!(lines[3].starts_with("done "), "{lines:?}");
    let png = std::fs::read(&screenshot).expect("the screenshot was kept");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "the screenshot is a real picture");
}
