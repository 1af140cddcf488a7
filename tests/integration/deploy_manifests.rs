//! The Kubernetes manifests are checked offline in every `make test` (scripts/check-k8s.py:
//! schemas, rendered overlays, references), and the check is shown to catch a broken copy.

use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository")
}

/// Runs the check on a `k8s` folder: (success, everything it printed).
fn check(k8s: &Path) -> (bool, String) {
    let root = repository();
    let tools = root.join(".tools/k8s-python");
    assert!(
        tools.join("kubernetes_validate").is_dir(),
        "kubernetes-validate is not installed in {}: run `make test` (or scripts/install-k8s-tools.sh) first",
        tools.display()
    );
    let output = std::process::Command::new("python3")
        .arg(root.join("scripts/check-k8s.py"))
        .arg(k8s)
        .env("PYTHONPATH", tools)
        .output()
        .expect("python3 runs (and kubectl is on PATH: scripts/install-k8s-tools.sh)");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of k8s/ with one file changed.
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repository().join("k8s"), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
}

#[test]
fn the_manifests_and_both_overlays_pass_the_offline_check() {
    let (ok, text) = check(&repository().join("k8s"));
    assert!(ok, "{text}");
    assert!(text.contains("dev: ") && text.contains("prod: "), "{text}");
}

#[test]
fn a_field_kubernetes_does_not_know_fails_the_check() {
    let copy = broken_copy(
        "base/ingest/deployment.yaml",
        "      automountServiceAccountToken: false",
        "      automountServiceAccountToken: false\n      restartPolicyy: Always",
    );
    let (ok, text) = check(copy.path());
    assert!(!ok, "{text}");
    assert!(text.contains("restartPolicyy"), "{text}");
}

#[test]
fn a_reference_to_a_missing_config_map_fails_the_check() {
    let copy = broken_copy("base/alerts/deployment.yaml", "name: bashu-config", "name: bashu-config-typo");
    let (ok, text) = check(copy.path());
    assert!(!ok, "{text}");
    assert!(text.contains("ConfigMap 'bashu-config-typo'"), "{text}");
}

#[test]
fn a_grace_period_shorter_than_the_service_s_own_fails_the_check() {
    let copy = broken_copy(
        "base/distribution/deployment.yaml",
        "terminationGracePeriodSeconds: 40",
        "terminationGracePeriodSeconds: 20",
    );
    let (ok, text) = check(copy.path());
    assert!(!ok, "{text}");
    assert!(text.contains("must exceed --grace-seconds 25"), "{text}");
}

#[test]
fn a_service_left_with_one_replica_fails_the_check() {
    let copy = broken_copy("base/alerts/deployment.yaml", "  replicas: 2\n", "  replicas: 1\n");
    let (ok, text) = check(copy.path());
    assert!(!ok, "{text}");
    assert!(text.contains("Deployment/bashu-alerts: 1 replica(s); every service runs at least two"), "{text}");
    let recreated = broken_copy(
        "base/distribution/deployment.yaml",
        "    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}\n",
        "    type: Recreate\n",
    );
    let (ok, text) = check(recreated.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains("Deployment/bashu-distribution: must roll with RollingUpdate and maxUnavailable 0"),
        "{text}"
    );
}
