//! The benchmark itself works: a tiny run produces a figure for every path (no timing asserted).

#[test]
fn a_tiny_alert_run_measures_every_path() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bashu-bench"))
        .args(["--json", "alerts", "--layouts", "20x2", "--iterations", "3", "--runs", "1", "--pace-ms", "0"])
        .output()
        .expect("bashu-bench runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let layout = &report["alerts"][0];
    for path in ["bashu", "raw_core", "raw_jetstream"] {
        let p99 = layout[path]["Ok"]["median"]["p99"].as_f64();
        assert!(p99.is_some_and(|ms| ms > 0.0), "{path}: {}", layout[path]);
    }
    assert_eq!(layout["layout"]["subscribers"], 20);
}

#[test]
fn the_lexicon_scan_reports_a_rate() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bashu-bench"))
        .args(["--json", "lexicon", "--terms", "500", "--body-bytes", "2000"])
        .output()
        .expect("bashu-bench runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["lexicon"][0]["terms"], 500);
    assert!(report["lexicon"][0]["mb_per_second"].as_f64().is_some_and(|rate| rate > 0.0));
}

#[test]
fn a_tiny_pipeline_run_measures_every_path_and_every_service() {
    let bashu = bashu_tests::workspace_binary("bashu");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bashu-bench"))
        .env("BENCH_BASHU_BINARY", bashu)
        .args(["--json", "pipeline", "--stories", "40", "--concurrency", "4", "--rate", "20"])
        .args(["--paced-seconds", "1", "--runs", "1", "--replicas", "1,2", "--region-stories", "2"])
        .output()
        .expect("bashu-bench runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let pipeline = &report["pipeline"];
    let bashu = pipeline["bashu"].as_array().unwrap();
    assert_eq!(bashu.iter().map(|b| b["replicas"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    let mut paths: Vec<&serde_json::Value> = bashu.iter().map(|b| &b["figures"]).collect();
    paths.extend([&pipeline["raw"], &pipeline["raw_sequential"]]);
    for figures in paths {
        assert!(figures["end_to_end_per_second"]["median"].as_f64().is_some_and(|r| r > 0.0), "{figures}");
        assert!(figures["accepted_per_second"]["median"].as_f64().is_some_and(|r| r > 0.0), "{figures}");
        assert!(figures["paced"]["median"]["p99"].as_f64().is_some_and(|ms| ms > 0.0), "{figures}");
    }
    for replicated in bashu {
        assert!(replicated["region"]["median"]["p99"].as_f64().is_some_and(|ms| ms > 0.0), "{replicated}");
        let budget = &replicated["figures"]["budget"];
        for stage in ["ingest", "moderation", "distribution"] {
            assert!(budget[stage]["p50"].as_f64().is_some_and(|ms| ms >= 0.0), "{stage}: {budget}");
        }
        let cpu = replicated["cpu_ms_per_story"].as_array().unwrap();
        assert_eq!(
            cpu.iter().map(|c| c[0].as_str().unwrap()).collect::<Vec<_>>(),
            ["ingest", "moderation", "distribution", "nats-server"]
        );
        assert!(cpu.iter().all(|c| c[1].as_f64().is_some_and(|ms| ms > 0.0)), "{cpu:?}");
    }
    assert!(pipeline["raw_region"]["median"]["p99"].as_f64().is_some_and(|ms| ms > 0.0));
    assert_eq!(pipeline["region_copies"], 219);
    let services: Vec<&str> =
        pipeline["memory"].as_array().unwrap().iter().map(|m| m["target"].as_str().unwrap()).collect();
    assert_eq!(services, ["ingest", "moderation", "distribution", "alerts", "admin"]);
    assert!(pipeline["memory"].as_array().unwrap().iter().all(|m| m["idle_mib"].as_f64() > Some(1.0)));
}
