//! The crate graph as ARCHITECTURE.md states it, judged by `cargo metadata`: a service depends on
//! no service (the `bashu` launcher excepted), a lib on no service, bashuctl on no service; and
//! only the bus crate and the domains' contract crates (`libs/*-core`) spell subjects. The bench
//! and the tests may run services in their own process.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository")
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(repository())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON")
}

/// Where a workspace crate sits: `libs`, `services`, `tools` or `tests`, and its folder.
fn place(root: &Path, package: &Value) -> (String, String) {
    let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
    let relative = manifest.parent().unwrap().strip_prefix(root).unwrap_or(Path::new("")).to_path_buf();
    let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

/// Every edge that breaks the rules, as `from → to: why`.
fn violations(metadata: &Value, root: &Path) -> Vec<String> {
    let packages = metadata["packages"].as_array().unwrap();
    let place_of = |name: &str| packages.iter().find(|p| p["name"] == name).map(|p| place(root, p));
    let mut found = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap();
        let (area, folder) = place(root, package);
        let may_use_services = name == "bashu" || area == "tests" || (area == "tools" && folder == "bench");
        if may_use_services {
            continue;
        }
        for dependency in package["dependencies"].as_array().unwrap() {
            if dependency["kind"].as_str().is_some_and(|k| k == "dev") {
                continue;
            }
            let target = dependency["name"].as_str().unwrap();
            if let Some((target_area, _)) = place_of(target)
                && target_area == "services"
            {
                found.push(format!("{name} → {target}: only the launcher links services ({area}/{folder} may not)"));
            }
        }
    }
    found
}

/// Source lines outside the bus and the contract crates that spell a subject.
fn subject_spellings(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for area in ["libs", "services", "tools"] {
        for entry in std::fs::read_dir(root.join(area)).unwrap().flatten() {
            let folder = entry.file_name().to_string_lossy().into_owned();
            if folder == "bus" || folder.ends_with("-core") {
                continue;
            }
            walk(&entry.path().join("src"), &mut files);
        }
    }
    // `bashu.<domain>.<token>` right after a quote, a dot or a brace (a subject, or one being
    // formatted behind a prefix), where a token `v1`, `v2`… is a protobuf package (a type name such
    // as `bashu.story.v1.StoryDelivery`), not a subject.
    let spells_subject = |code: &str| {
        ["bashu.story.", "bashu.feed.", "bashu.alert.", "bashu.dlq.", "bashu.audit."].iter().any(|domain| {
            code.match_indices(domain).any(|(at, _)| {
                let rest = &code[at + domain.len()..];
                let package = rest.starts_with('v') && rest[1..].starts_with(|c: char| c.is_ascii_digit());
                let before = code[..at].chars().last();
                matches!(before, Some('"' | '.' | '}')) && !package
            })
        })
    };
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if spells_subject(code) {
                found.push(format!("{}:{}: {}", file.strip_prefix(root).unwrap().display(), number + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn services_import_no_service_and_only_the_bus_and_contract_crates_spell_subjects() {
    let root = repository();
    let metadata = metadata();
    let workspace_root = PathBuf::from(metadata["workspace_root"].as_str().unwrap());
    assert_eq!(violations(&metadata, &workspace_root), Vec::<String>::new());
    assert_eq!(subject_spellings(&root), Vec::<String>::new());
}

#[test]
fn the_subject_check_tells_a_subject_from_a_type_name() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("services/rogue/src");
    std::fs::create_dir_all(&source).unwrap();
    for area in ["libs", "tools"] {
        std::fs::create_dir_all(dir.path().join(area)).unwrap();
    }
    let rogue = r#"const TYPE: &str = "bashu.story.v1.StoryDelivery";
fn subject(county: &str) -> String { format!("{}.bashu.feed.{county}.story", "t") }
"#;
    std::fs::write(source.join("lib.rs"), rogue).unwrap();
    let found = subject_spellings(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("services/rogue/src/lib.rs:2:"), "{found:?}");
}

#[test]
fn the_check_fails_on_a_violating_edge() {
    let mut metadata = metadata();
    let workspace_root = PathBuf::from(metadata["workspace_root"].as_str().unwrap());
    // The admin API importing the alert service again, as it did before the contract crates.
    let admin = metadata["packages"].as_array_mut().unwrap().iter_mut().find(|p| p["name"] == "bashu-admin").unwrap();
    admin["dependencies"].as_array_mut().unwrap().push(serde_json::json!({"name": "bashu-alerts", "kind": null}));
    assert_eq!(
        violations(&metadata, &workspace_root),
        ["bashu-admin → bashu-alerts: only the launcher links services (services/admin may not)"]
    );
}
