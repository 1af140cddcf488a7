//! A client in another language calls the admin API: Python's grpcio, with the services and
//! messages learnt from server reflection (no copy of Bashu's .proto files), and the standard
//! gRPC health service. `make test` installs the pinned grpcio into `.tools/python`.

use std::path::PathBuf;

use bashu::Target;
use bashu_tests::{OPERATOR_TOKEN, TestSystem};

fn python_path() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tools = root.join(".tools/python");
    assert!(
        tools.join("grpc_reflection").is_dir(),
        "grpcio is not installed in {}: run `make test` (or scripts/install-python-grpc.sh) first",
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
