//! docs/operations.md is run as written: every `$` line of its `console` blocks and every
//! `<!-- ci: … -->` line, in order, in one bash session, with the real `bashuctl` against a
//! real system. A command that fails fails the test, so the page cannot rot.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bashu::Target;
use bashu_bus::RetryConfig;
use bashu_tests::{OPERATOR_TOKEN, TestSystem};

const PAGE: &str = include_str!("../../docs/operations.md");

/// The page's commands, in order: `$` lines of `console` blocks (with `\` continuations) and
/// `<!-- ci: … -->` lines.
fn commands(page: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_console = false;
    let mut pending: Option<String> = None;
    for line in page.lines() {
        if line.starts_with("```") {
            in_console = !in_console && line.trim() == "```console";
            continue;
        }
        if in_console {
            let text = match pending.take() {
                Some(mut head) => {
                    head.push('\n');
                    head.push_str(line);
                    head
                }
                None => match line.strip_prefix("$ ") {
                    Some(command) => command.to_owned(),
                    None => continue,
                },
            };
            if text.ends_with('\\') {
                pending = Some(text);
            } else {
                commands.push(text);
            }
        } else if let Some(check) = line.strip_prefix("<!-- ci: ").and_then(|l| l.strip_suffix(" -->")) {
            commands.push(check.to_owned());
        }
    }
    commands
}

/// The bash script: a helper to wait for asynchronous work, then each command, echoed first.
fn script(commands: &[String]) -> String {
    let mut script = String::from(
        "set -euo pipefail\n\
         eventually() { for _ in $(seq 1 600); do if eval \"$1\" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done; \
         echo \"timed out waiting for: $1\" >&2; return 1; }\n",
    );
    for command in commands {
        script.push_str(&format!(
            "printf '[%ss] %s\\n' \"$SECONDS\" {}\n{command}\n",
            shell_quote(&format!("$ {command}"))
        ));
    }
    script
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A county CMS receiving webhooks: 503 while `<dir>/cms-down` exists (maintenance), else 200.
async fn cms(dir: PathBuf) -> (String, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().fallback(move || {
        let down = dir.join("cms-down").exists();
        let counter = counter.clone();
        async move {
            if down {
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            } else {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::OK
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("cms serves") });
    (format!("http://{address}/bashu/webhook"), received)
}

#[test]
fn the_page_has_a_walkthrough_to_run() {
    let commands = commands(PAGE);
    assert!(commands.len() > 30, "{commands:?}");
    assert!(commands.iter().any(|c| c.starts_with("bashuctl dlq requeue")));
    assert!(commands.iter().any(|c| c.starts_with("eventually ")));
    assert!(!commands.iter().any(|c| c.contains("┌")), "sample output is not run");
}

#[tokio::test]
async fn the_operations_walkthrough_runs_as_written() {
    let bashuctl = bashu_tests::workspace_binary("bashuctl").parent().expect("its folder").to_owned();
    let t = TestSystem::start_configured(&Target::ALL, |config| {
        config.distribution.webhooks.retry = RetryConfig { ack_wait_ms: 2_000, max_deliver: 3, backoff_ms: vec![50] };
        config.distribution.webhooks.timeout_ms = 1_000;
    })
    .await;
    let work = tempfile::tempdir().expect("a working directory");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository");
    std::os::unix::fs::symlink(root.join("examples"), work.path().join("examples")).expect("examples");
    let (cms_url, received) = cms(work.path().to_owned()).await;

    let path = format!("{}:{}", bashuctl.display(), std::env::var("PATH").unwrap_or_default());
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(script(&commands(PAGE)))
        .current_dir(work.path())
        .env("PATH", path)
        .env("HOME", work.path())
        .env("BASHUCTL_ENDPOINT", t.grpc_endpoint())
        .env("BASHUCTL_TOKEN", OPERATOR_TOKEN)
        .env("LONGCHANG_CMS_URL", &cms_url)
        .env("BASHU_HTTP", t.http_base())
        .env_remove("BASHUCTL_TOKEN_FILE")
        .env_remove("BASHUCTL_CONFIG")
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let (_, consumers) = t.bus.operations().health().await.expect("consumers");
        let webhooks: Vec<_> = consumers.iter().filter(|c| c.name.starts_with("webhook-")).collect();
        let audit: Vec<bashu_proto::admin::v1::AuditEvent> =
            t.bus.operations().newest(bashu_bus::AUDIT, 40).await.unwrap();
        for e in audit.iter().rev() {
            eprintln!("audit {:?} {} {}", e.at, e.method, e.target);
        }
        let feed = t.bus.subjects().feed_story("511083").unwrap();
        let (stored, _) = t
            .bus
            .operations()
            .read_range::<bashu_proto::story::v1::StoryDelivery>(
                bashu_bus::FEEDS,
                vec![feed.into()],
                std::time::UNIX_EPOCH,
                std::time::SystemTime::now(),
            )
            .await
            .unwrap();
        eprintln!("feed stored at {:?}", stored.iter().map(|s| s.stored_at).collect::<Vec<_>>());
        panic!(
            "the walkthrough failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- feeds {:?}\n--- webhook consumers {webhooks:?}\n--- CMS answered 200 {} times",
            t.feed_counts().await,
            received.load(Ordering::SeqCst)
        );
    }

    // What the page did, seen from the outside.
    assert!(stdout.contains("1 dead letter requeued"), "{stdout}");
    bashu_tests::eventually("the requeued delivery reaches 隆昌's CMS", || async {
        received.load(Ordering::SeqCst) >= 1
    })
    .await;
    let feed = t.feed_counts().await;
    assert_eq!(feed.get("500101"), Some(&3), "one delivery and two replays (one story, one range)");
    assert_eq!(feed.get("511083"), Some(&2), "the delivery and the requeued copy");
}
