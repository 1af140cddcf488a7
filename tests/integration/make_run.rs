//! `make run` as the README tells a newcomer to use it: the script starts nats-server and bashu,
//! sends the demo traffic and stops everything it started.

use std::time::Duration;

use bashu_test_support::free_port;

#[tokio::test]
async fn make_run_without_nats_authorization_starts_and_stops_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bashu = bashu_tests::workspace_binary("bashu");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("bash")
            .arg(root.join("scripts/run-local.sh"))
            .current_dir(&root)
            // As the README says: BASHU_INSECURE_NATS=1 make run.
            .env("BASHU_INSECURE_NATS", "1")
            .env("RUN_BASHU_BIN", &bashu)
            .env("NATS_PORT", free_port().to_string())
            .env("BASHU_HTTP__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("BASHU_GRPC__LISTEN", format!("127.0.0.1:{}", free_port()))
            .env(
                "BASHU_REGISTRY__DEMO_CREDENTIALS_FILE",
                std::env::temp_dir().join(format!("demo-{}.json", free_port())),
            )
            .env("DEMO_SECONDS", "2")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("make run ends after its demo")
    .expect("the script runs");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{said}");
    assert!(said.contains("Bashu is running on loopback"), "{said}");
    assert!(said.contains("off (BASHU_INSECURE_NATS)"), "{said}");
    assert!(said.contains("stopped nats-server and bashu"), "{said}");
    // The demo's editor finds, in traditional characters, the story a partner shared.
    assert!(said.contains("pool of 500153 荣昌区, searching"), "{said}");
    assert!(said.contains("coverage plan yukun-rail-"), "{said}");
    assert!(said.contains("PHASE_STATUS_DELIVERED"), "{said}");
    assert!(said.contains("coverage settlement of yukun-rail-"), "{said}");
    assert!(said.contains("a ninjs package of 6 stories"), "江津 received all six: {said}");
    assert!(said.contains("【跨省】【夜市】") || said.contains("【跨省夜市】"), "{said}");
}
