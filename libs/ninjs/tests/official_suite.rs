//! The official ninjs test suite against the shipped schema, and the Bashu rendering against
//! the official schema and the profile.

use std::path::Path;

use bashu_ninjs::{Delivery, story_from_ninjs, story_to_ninjs, validate_official, validate_profile};
use bashu_proto::story::v1::{
    Attribution, Category, ContributionKind, CoverageRef, MediaReference, PublicationStatus, ReviewApproval,
    SharingPolicy, Story,
};
use serde_json::Value;

/// Every JSON file of a folder below the crate, by name, in name order.
fn json_files(folder: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable file");
            (path.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).expect("JSON"))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn cases(folder: &str) -> Vec<(String, Value)> {
    json_files(&format!("tests/official-suite/{folder}"))
}

#[test]
fn every_should_pass_case_is_accepted() {
    let cases = cases("should_pass");
    assert_eq!(cases.len(), 27, "the suite was copied whole");
    for (name, document) in cases {
        assert_eq!(validate_official(&document), Ok(()), "{name}");
    }
}

#[test]
fn every_should_fail_case_is_rejected_with_a_path() {
    let cases = cases("should_fail");
    assert_eq!(cases.len(), 12, "the suite was copied whole");
    for (name, document) in cases {
        let problems = validate_official(&document).expect_err(&name);
        assert!(!problems.is_empty() && problems.iter().all(|p| !p.reason.is_empty()), "{name}: {problems:?}");
    }
    let problems = validate_official(&serde_json::json!({"uri": "urn:x", "urgency": 11})).unwrap_err();
    assert_eq!(problems[0].path, "/urgency");
}

fn full_story() -> Story {
    let at = |s: &str| serde_json::from_value(Value::String(s.into())).unwrap();
    Story {
        id: "lc-2026-1128-001".into(),
        version: 3,
        origin_county: "511083".into(),
        headline: "隆昌石牌坊群迎来冬季游客高峰".into(),
        summary: "川渝两地游客同游".into(),
        body: "正文。\n第二段。".into(),
        language: "zh-CN".into(),
        category: Category::CultureTourism as i32,
        tags: vec!["文旅".into(), "川渝".into()],
        counties_concerned: vec!["511083".into(), "500152".into()],
        media: vec![MediaReference {
            uri: "bashu-object:media/0f3c".into(),
            media_type: "image/jpeg".into(),
            caption: "石牌坊".into(),
            sha256: "a".repeat(64),
            size_bytes: 2048,
        }],
        byline: "记者 李华".into(),
        attribution: Some(Attribution {
            source: "隆昌市融媒体中心".into(),
            original_author: "李华".into(),
            responsible_editor: "王芳".into(),
        }),
        created_at: Some(at("2026-11-28T00:00:00Z")),
        version_created_at: Some(at("2026-11-28T09:30:00+08:00")),
        embargo_until: Some(at("2026-11-28T02:00:00Z")),
        expires_at: Some(at("2026-12-28T00:00:00Z")),
        sharing: Some(SharingPolicy {
            partners: true,
            alliances: vec!["chengyu-culture".into()],
            attribution_required: true,
            ..Default::default()
        }),
        status: PublicationStatus::Usable as i32,
        coverage: Some(CoverageRef {
            plan_id: "yukun-rail".into(),
            phase: "experience".into(),
            kind: ContributionKind::Video as i32,
        }),
    }
}

#[test]
fn a_rendering_validates_against_the_official_schema_and_the_profile() {
    let approvals = [ReviewApproval { reviewer: "zhang".into(), level: 1, at: full_story().created_at }];
    for delivery in [None, Some(Delivery { receiving_county: "500152", approvals: &approvals })] {
        let document = story_to_ninjs(&full_story(), delivery);
        assert_eq!(validate_official(&document), Ok(()), "{document:#}");
        assert_eq!(validate_profile(&document), Ok(()), "{document:#}");
    }
    let minimal = Story { id: "a".into(), version: 1, origin_county: "500101".into(), ..Default::default() };
    assert_eq!(validate_profile(&story_to_ninjs(&minimal, None)), Ok(()));
}

#[test]
fn the_profile_refuses_what_plain_ninjs_allows() {
    let mut document = story_to_ninjs(&full_story(), None);
    document["altIds"] = serde_json::json!([{"role": "bashu:origin-county", "value": "51108"}]);
    assert_eq!(validate_official(&document), Ok(()));
    let problems = validate_profile(&document).unwrap_err();
    assert!(problems.iter().any(|p| p.path.starts_with("/altIds")), "{problems:?}");
}

#[test]
fn a_coverage_event_must_name_plan_phase_and_a_known_kind() {
    let mut document = story_to_ninjs(&full_story(), None);
    assert_eq!(document["events"][0]["uri"], "urn:bashu:coverage:yukun-rail:experience:video");
    document["events"][0]["uri"] = "urn:bashu:coverage:yukun-rail:experience:hologram".into();
    assert_eq!(validate_official(&document), Ok(()));
    let problems = validate_profile(&document).unwrap_err();
    assert!(problems.iter().any(|p| p.path.starts_with("/events/0")), "{problems:?}");
    let refused = story_from_ninjs(&document, "511083").unwrap_err();
    assert!(refused.iter().any(|p| p.path == "/events/0/uri"), "{refused:?}");
}

#[test]
fn ninjs_to_story_to_ninjs_keeps_every_mapped_field() {
    let story = full_story();
    let document = story_to_ninjs(&story, None);
    let back = story_from_ninjs(&document, "999999").expect("maps");
    assert_eq!(back, story);
    assert_eq!(story_to_ninjs(&back, None), document);
}

#[test]
fn plain_ninjs_from_a_cms_maps_with_the_caller_as_origin() {
    let document = serde_json::json!({
        "uri": "https://cms.example.cn/articles/8812",
        "version": "2",
        "language": "zh-CN",
        "headlines": [{"value": "标题"}],
        "bodies": [{"value": "正文", "contentType": "text/plain"}],
        "firstCreated": "2026-11-28T08:00:00+08:00",
    });
    let story = story_from_ninjs(&document, "500101").expect("maps");
    assert_eq!(story.origin_county, "500101");
    assert_eq!(story.version, 3, "a publisher's version n is Bashu version n + 1");
    assert_eq!(story.headline, "标题");
    assert!(story.id.starts_with("ninjs-") && story.id.len() == 38);
    assert_eq!(story_from_ninjs(&document, "500101").unwrap().id, story.id, "stable across submissions");

    let bad = serde_json::json!({"uri": "urn:x", "version": "two", "firstCreated": "yesterday"});
    let problems = story_from_ninjs(&bad, "500101").unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/version", "/firstCreated"]);
}

mod fuzz {
    use proptest::prelude::*;
    use serde_json::Value;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-zA-Z0-9:/._ -]{0,12}".prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("uri".to_owned()),
            Just("version".to_owned()),
            Just("headlines".to_owned()),
            Just("subjects".to_owned()),
            Just("rightsInfo".to_owned()),
            Just("associations".to_owned()),
            Just("value".to_owned()),
            Just("rel".to_owned()),
            "[a-z]{1,6}",
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
        #[test]
        fn any_json_maps_or_fails_cleanly(document in json()) {
            let _ = bashu_ninjs::validate_profile(&document);
            if let Ok(story) = bashu_ninjs::story_from_ninjs(&document, "500101") {
                let _ = bashu_ninjs::story_to_ninjs(&story, None);
            }
        }
    }
}

fn examples() -> Vec<(String, Value)> {
    json_files("tests/iptc-examples")
}

/// IPTC's published ninjs 3.x examples (agency documents and the guidelines' examples): every one
/// that is valid ninjs maps to a story a county with ingest defaults can submit.
#[test]
fn every_published_example_becomes_a_story() {
    let examples = examples();
    assert_eq!(examples.len(), 27, "the examples were copied whole");
    let mut mapped = 0;
    for (name, document) in examples {
        if document.is_array() {
            // The event timeline sample is a list of events, not one ninjs document.
            assert!(validate_official(&document).is_err(), "{name}");
            assert!(story_from_ninjs(&document, "511702").is_err(), "{name}");
            continue;
        }
        let story = story_from_ninjs(&document, "511702").unwrap_or_else(|p| panic!("{name}: {p:?}"));
        assert!(!story.headline.trim().is_empty() && story.headline.chars().count() <= 200, "{name}");
        assert!(!story.body.trim().is_empty(), "{name}");
        assert!(!story.body.contains("<p") && !story.body.contains("</"), "{name}: markup left in {:?}", story.body);
        assert!(story.version >= 1, "{name}");
        assert_eq!(story.origin_county, "511702", "{name}");
        // With the county's defaults it renders as the profile says.
        let defaulted = Story {
            category: Category::Other as i32,
            sharing: Some(SharingPolicy { partners: true, ..Default::default() }),
            ..story
        };
        let rendered = story_to_ninjs(&defaulted, None);
        assert_eq!(validate_profile(&rendered), Ok(()), "{name}");
        mapped += 1;
    }
    assert_eq!(mapped, 26);
}

fn example(name: &str) -> Value {
    examples().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no example {name}")).1
}

#[test]
fn publisher_versions_are_kept_in_order_from_zero() {
    let mut document = example("3.0_ap_image.json");
    assert_eq!(document["version"], "0");
    assert_eq!(story_from_ninjs(&document, "511702").unwrap().version, 1);
    document["version"] = "1".into();
    assert_eq!(story_from_ninjs(&document, "511702").unwrap().version, 2);
    document["version"] = "v2".into();
    let problems = story_from_ninjs(&document, "511702").unwrap_err();
    assert_eq!(problems[0].path, "/version");
    // A Bashu document carries Bashu's own version, which starts at 1.
    let mut bashu = story_to_ninjs(&full_story(), None);
    assert_eq!(story_from_ninjs(&bashu, "511083").unwrap().version, 3);
    bashu["version"] = "0".into();
    assert!(story_from_ninjs(&bashu, "511083").is_err());
}

#[test]
fn html_xhtml_and_nitf_bodies_become_plain_text() {
    let dpa = story_from_ninjs(&example("3.0_dpa_text.json"), "511702").unwrap();
    assert!(dpa.body.starts_with("Für Lucien Favre war es «der größte Skandal"), "{:?}", dpa.body);
    let businesswire = story_from_ninjs(&example("3.0_businesswire-newsml-20130605006126.json"), "511702").unwrap();
    assert!(businesswire.body.starts_with("(美國商業資訊)"), "{:?}", businesswire.body);
    // NITF and plain text side by side: the plain text is taken as it is.
    let addb = example(
        "3.0_20231008-anti-doping-measures-at-the-tour-down-under-will-be-the-toughest-ever-addb-ninjs-nitf.json",
    );
    let plain = addb["bodies"].as_array().unwrap().iter().find(|b| b["role"] == "text").unwrap()["value"].clone();
    assert_eq!(story_from_ninjs(&addb, "511702").unwrap().body, plain.as_str().unwrap());
    let mut nitf_only = addb.clone();
    nitf_only["bodies"].as_array_mut().unwrap().retain(|b| b["role"] == "nitf");
    let story = story_from_ninjs(&nitf_only, "511702").unwrap();
    assert!(
        story.body.contains("The initiatives are being implemented") && !story.body.contains('<'),
        "{:?}",
        story.body
    );
}

#[test]
fn times_and_language_are_not_made_up_on_the_way_out() {
    let ntb = example("3.0_ntb_text.json");
    let story = story_from_ninjs(&ntb, "511702").unwrap();
    let rendered = story_to_ninjs(&story, None);
    let instant = |v: &Value| serde_json::from_value::<bashu_proto::Timestamp>(v.clone()).unwrap();
    assert_eq!(instant(&rendered["versionCreated"]), instant(&ntb["versionCreated"]), "versionCreated is kept");
    assert_eq!(instant(&rendered["firstCreated"]), instant(&ntb["firstCreated"]));
    assert_ne!(rendered["versionCreated"], rendered["firstCreated"]);
    let mut without_language = full_story();
    without_language.language.clear();
    let rendered = story_to_ninjs(&without_language, None);
    assert!(rendered.get("language").is_none(), "no language is guessed: {rendered}");
    assert_eq!(validate_profile(&rendered), Ok(()));
}

#[test]
fn every_should_fail_case_is_refused_as_a_story() {
    for (name, document) in cases("should_fail") {
        assert!(story_from_ninjs(&document, "511702").is_err(), "{name}");
    }
}
