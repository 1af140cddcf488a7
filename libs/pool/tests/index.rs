//! The index on its own: what a county finds, and what it never finds.

use std::sync::Arc;

use bashu_pool::{Change, Checkpoint, PoolIndex};
use bashu_proto::{
    pool::v1::{SearchRequest, SortOrder},
    story::v1::{Category, MediaReference, PublicationStatus, Story, StoryDelivery, StoryUse},
    time::from_system_time,
};
use bashu_registry::Counties;

fn counties() -> Arc<Counties> {
    Arc::new(Counties::builtin().unwrap())
}

fn story(origin: &str, id: &str, version: u32, headline: &str, body: &str) -> Story {
    Story {
        id: id.into(),
        version,
        origin_county: origin.into(),
        headline: headline.into(),
        body: body.into(),
        category: Category::MajorProject as i32,
        status: PublicationStatus::Usable as i32,
        ..Default::default()
    }
}

fn delivered(story: &Story, to: &str, seconds: i64) -> Change {
    Change::Delivered(Box::new(StoryDelivery {
        story: Some(story.clone()),
        county: to.into(),
        delivered_at: Some(bashu_proto::Timestamp { seconds, nanos: 0 }),
        approvals: vec![],
    }))
}

fn search(pool: &PoolIndex, county: &str, query: &str) -> Vec<String> {
    let request = SearchRequest { query: query.into(), ..Default::default() };
    pool.search(county, &request).unwrap().hits.into_iter().map(|h| h.story.unwrap().id).collect()
}

const NOW: i64 = 1_790_000_000;

fn railway_pool() -> PoolIndex {
    let pool = PoolIndex::open(None, counties()).unwrap();
    let rail =
        story("511083", "rail-1", 1, "成渝中线高铁全线开通", "今天上午，成渝中线高铁正式开通运营，旅客出行更方便。");
    let secret = story("510703", "local-1", 1, "涪城区高铁站周边规划", "仅与绵阳市内分享的规划稿。");
    let flood = story("500101", "flood-1", 1, "万州区防汛演练", "万州区组织防汛应急演练。");
    pool.apply(
        vec![
            delivered(&rail, "500153", NOW),
            delivered(&rail, "510703", NOW),
            delivered(&secret, "510704", NOW + 10),
            delivered(&flood, "500153", NOW + 20),
        ],
        Checkpoint { feeds: 4, uses: 0 },
    )
    .unwrap();
    pool
}

#[test]
fn a_county_finds_only_its_own_and_what_was_delivered_to_it() {
    let pool = railway_pool();
    assert_eq!(search(&pool, "500153", "高铁"), ["rail-1"]);
    // 510704 got the secret; 500153 never did, whatever it asks.
    assert_eq!(search(&pool, "510704", "高铁"), ["local-1"]);
    for query in ["涪城区", "规划", "\"高铁站周边规划\"", "", "绵阳"] {
        assert!(!search(&pool, "500153", query).contains(&"local-1".to_owned()), "{query:?} reached 500153");
    }
    // The origin finds its own story although it was never delivered to it.
    assert_eq!(search(&pool, "511083", "高铁"), ["rail-1"]);
    assert!(search(&pool, "513437", "").is_empty(), "a county given nothing finds nothing");
    assert_eq!(pool.story("500153", "510703", "local-1").unwrap(), None);
}

#[test]
fn traditional_full_width_and_phrases_find_the_same_story() {
    let pool = railway_pool();
    for query in
        ["成渝中線高鐵", "成渝中线高铁", "\"中线 高铁\"", "高铁 -防汛", "ＲＡＩＬ 高铁".trim_start_matches("ＲＡＩＬ ")]
    {
        assert_eq!(search(&pool, "500153", query), ["rail-1"], "{query}");
    }
    assert!(search(&pool, "500153", "\"高铁 成渝\"").is_empty(), "a phrase keeps its order");
    assert_eq!(search(&pool, "500153", "").len(), 2, "an empty query lists everything visible");
}

#[test]
fn a_correction_replaces_and_a_kill_removes_even_if_an_older_version_comes_late() {
    let pool = railway_pool();
    let corrected = story("511083", "rail-1", 2, "成渝中线高铁开通（更正）", "更正：开通时间为上午九时。");
    pool.apply(vec![delivered(&corrected, "500153", NOW + 100)], Checkpoint { feeds: 5, uses: 0 }).unwrap();
    let hits = pool.search("500153", &SearchRequest { query: "更正".into(), ..Default::default() }).unwrap().hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].story.as_ref().unwrap().version, 2);
    assert!(search(&pool, "500153", "旅客").is_empty(), "the old text is gone");

    let killed = Story { status: PublicationStatus::Canceled as i32, ..story("511083", "rail-1", 3, "", "") };
    let late = story("511083", "rail-1", 1, "成渝中线高铁全线开通", "旧版本迟到。");
    pool.apply(
        vec![delivered(&killed, "500153", NOW + 200), delivered(&late, "500153", NOW + 5)],
        Checkpoint { feeds: 7, uses: 0 },
    )
    .unwrap();
    assert!(search(&pool, "500153", "高铁").is_empty());
    assert!(search(&pool, "511083", "").iter().all(|id| id != "rail-1"), "killed for its origin too");
    assert_eq!(pool.checkpoint().unwrap(), Checkpoint { feeds: 7, uses: 0 });
}

#[test]
fn filters_facets_highlights_and_a_cursor() {
    let pool = PoolIndex::open(None, counties()).unwrap();
    let mut changes = Vec::new();
    for n in 0..30 {
        let origin = if n % 3 == 0 { "500101" } else { "510703" };
        let mut s = story(origin, &format!("s-{n:02}"), 1, &format!("高铁新闻第{n}条"), "成渝地区双城经济圈建设。");
        if n % 5 == 0 {
            s.media.push(MediaReference {
                uri: "https://v.example/x.mp4".into(),
                media_type: "video/mp4".into(),
                ..Default::default()
            });
        }
        changes.push(delivered(&s, "511083", NOW + n));
    }
    pool.apply(changes, Checkpoint { feeds: 30, uses: 0 }).unwrap();

    let mut request =
        SearchRequest { query: "高铁".into(), page_size: 7, sort: SortOrder::Newest as i32, ..Default::default() };
    let first = pool.search("511083", &request).unwrap();
    assert_eq!(first.total, 30);
    assert_eq!(first.hits.len(), 7);
    assert_eq!(first.hits[0].story.as_ref().unwrap().id, "s-29", "newest first");
    assert!(first.hits[0].headline_html.contains("<mark>高铁</mark>"), "{}", first.hits[0].headline_html);
    let provinces: Vec<(String, u64)> = first.provinces.iter().map(|f| (f.value.clone(), f.count)).collect();
    assert_eq!(provinces, [("50".to_owned(), 10), ("51".to_owned(), 20)]);
    assert!(first.provinces.iter().any(|f| f.label == "四川省"));
    assert!(
        first.prefectures.iter().any(|f| f.value == "5107" && f.label == "绵阳市" && f.count == 20),
        "{:?}",
        first.prefectures
    );
    assert!(first.media.iter().any(|f| f.value == "video" && f.count == 6));

    let mut seen: Vec<String> = first.hits.iter().map(|h| h.story.clone().unwrap().id).collect();
    let mut cursor = first.next_cursor;
    while !cursor.is_empty() {
        request.cursor = cursor;
        let page = pool.search("511083", &request).unwrap();
        seen.extend(page.hits.iter().map(|h| h.story.clone().unwrap().id));
        cursor = page.next_cursor;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 30, "every result once across the pages");

    let chongqing = SearchRequest { origin_provinces: vec!["50".into()], has_video: true, ..Default::default() };
    let found = pool.search("511083", &chongqing).unwrap();
    assert!(found.hits.iter().all(|h| h.story.as_ref().unwrap().origin_county == "500101"));
    assert_eq!(found.total, 2, "s-00 and s-15");

    let window = SearchRequest {
        from: Some(from_system_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs((NOW + 10) as u64))),
        to: Some(from_system_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs((NOW + 20) as u64))),
        ..Default::default()
    };
    assert_eq!(pool.search("511083", &window).unwrap().total, 10);

    for (bad, field) in [
        (SearchRequest { page_size: 51, ..Default::default() }, "page_size"),
        (SearchRequest { cursor: "o9999".into(), ..Default::default() }, "cursor"),
        (SearchRequest { cursor: "abc".into(), ..Default::default() }, "cursor"),
        (SearchRequest { origin_provinces: vec!["5".into()], ..Default::default() }, "origin_provinces"),
        (SearchRequest { categories: vec![1; 51], ..Default::default() }, "categories"),
        (SearchRequest { sharing: vec!["region".into(); 51], ..Default::default() }, "sharing"),
    ] {
        let error = pool.search("511083", &bad).unwrap_err().to_string();
        assert!(error.starts_with(field), "{error}");
    }
    let error = pool.search("511083", &SearchRequest { query: "\"高铁".into(), ..Default::default() }).unwrap_err();
    assert!(error.to_string().contains("character 1"), "{error}");
}

#[test]
fn uses_are_listed_for_the_origin_and_counted_in_the_trends() {
    let pool = railway_pool();
    let used = |county: &str, at: i64| {
        Change::Used(StoryUse {
            story_id: "rail-1".into(),
            version: 1,
            county: county.into(),
            origin_county: "511083".into(),
            used_at: Some(bashu_proto::Timestamp { seconds: at, nanos: 0 }),
            placement: "客户端头条".into(),
        })
    };
    pool.apply(
        vec![used("500153", NOW + 30), used("510703", NOW + 40), used("500153", NOW + 30)],
        Checkpoint { feeds: 4, uses: 3 },
    )
    .unwrap();
    let reuses = pool.reuses("511083", 0).unwrap();
    assert_eq!(
        reuses.iter().map(|r| r.county.as_str()).collect::<Vec<_>>(),
        ["510703", "500153"],
        "newest first, once each"
    );
    assert_eq!(reuses[0].headline, "成渝中线高铁全线开通");
    assert!(pool.reuses("500153", 0).unwrap().is_empty());
    let story = pool.story("511083", "511083", "rail-1").unwrap().unwrap();
    assert_eq!(story.used_by, ["500153", "510703"]);
    assert!(pool.story("500153", "511083", "rail-1").unwrap().unwrap().used_by.is_empty(), "only the origin sees who");

    let end = std::time::UNIX_EPOCH + std::time::Duration::from_secs((NOW + 3600) as u64);
    let trends = pool.trends("500153", end).unwrap();
    assert_eq!(trends.most_reused.len(), 1);
    assert_eq!(trends.most_reused[0].uses, 2);
    let longchang = trends.give_take.iter().find(|g| g.county == "511083").unwrap();
    assert_eq!((longchang.given, longchang.taken, longchang.name.as_str()), (2, 0, "隆昌市"));
    assert!(trends.give_take.iter().all(|g| g.county != "513437"), "a note from a county never given the story");
}

#[test]
fn topics_rising_this_week_are_found_per_province() {
    let pool = PoolIndex::open(None, counties()).unwrap();
    let week = 7 * 24 * 3600;
    let mut changes = Vec::new();
    for n in 0..4 {
        changes.push(delivered(
            &story("511083", &format!("new-{n}"), 1, &format!("川渝氢能产业合作第{n}场"), ""),
            "510703",
            NOW - 100 - n,
        ));
    }
    for n in 0..3 {
        changes.push(delivered(
            &story("510703", &format!("old-{n}"), 1, "川渝文旅合作推介", ""),
            "510703",
            NOW - week - 100 - n,
        ));
        changes.push(delivered(
            &story("510703", &format!("now-{n}"), 1, "川渝文旅合作推介", ""),
            "510703",
            NOW - 100 - n,
        ));
    }
    pool.apply(changes, Checkpoint::default()).unwrap();
    let end = std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW as u64);
    let trends = pool.trends("510703", end).unwrap();
    let sichuan = trends.rising.iter().find(|p| p.province == "51").unwrap();
    let terms: Vec<&str> = sichuan.terms.iter().map(|t| t.term.as_str()).collect();
    assert!(terms.contains(&"氢能"), "{terms:?}");
    assert!(!terms.contains(&"文旅"), "as many last week as this week: not rising ({terms:?})");
}

#[test]
fn an_index_in_a_folder_keeps_its_stories_and_checkpoint_across_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    {
        let pool = PoolIndex::open(Some(folder.path()), counties()).unwrap();
        let s = story("511083", "kept-1", 1, "川南高铁", "留存");
        pool.apply(vec![delivered(&s, "500153", NOW)], Checkpoint { feeds: 41, uses: 2 }).unwrap();
    }
    let pool = PoolIndex::open(Some(folder.path()), counties()).unwrap();
    assert_eq!(pool.checkpoint().unwrap(), Checkpoint { feeds: 41, uses: 2 });
    assert_eq!(search(&pool, "500153", "高铁"), ["kept-1"]);
    pool.clear().unwrap();
    assert_eq!(pool.checkpoint().unwrap(), Checkpoint::default());
    assert!(search(&pool, "500153", "").is_empty());
}
