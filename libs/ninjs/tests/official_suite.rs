//! The official ninjs test suite against the shipped schema, and the Bashu rendering against
//! the official schema and the profile.

use std::path::Path;

use bashu_ninjs::{Delivery, story_from_ninjs, story_to_ninjs, validate_official, validate_profile};
use bashu_proto::story::v1::{
    Attribution, Category, MediaReference, PublicationStatus, ReviewApproval, SharingPolicy, Story,
};
use serde_json::Value;

fn cases(folder: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/official-suite").join(folder);
    let mut cases: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a readable case");
            (path.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).expect("JSON"))
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
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
        embargo_until: Some(at("2026-11-28T02:00:00Z")),
        expires_at: Some(at("2026-12-28T00:00:00Z")),
        sharing: Some(SharingPolicy {
            partners: true,
            alliances: vec!["chengyu-culture".into()],
            attribution_required: true,
            ..Default::default()
        }),
        status: PublicationStatus::Usable as i32,
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
    assert_eq!(story.version, 2);
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
