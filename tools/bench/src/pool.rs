//! The shared content pool: how fast Bashu's index takes generated Chinese stories, how large and
//! how heavy it gets, and how long searches take, beside a bare tantivy index of the same
//! documents (same words, no visibility, facets, stored stories or highlights) queried with the
//! same words in the same run: the baseline is what the search library itself costs.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use bashu_pool::{Change, Checkpoint, PoolIndex, analyzer::ChineseAnalyzer};
use bashu_proto::{
    pool::v1::{SearchRequest, SortOrder},
    story::v1::{Category, MediaReference, PublicationStatus, Story, StoryDelivery},
};
use bashu_registry::Counties;
use serde::Serialize;
use tantivy::{
    Index, TantivyDocument, Term,
    collector::{Count, TopDocs},
    query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery},
    schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions},
};

use crate::stats::{Percentiles, Sequence};

/// `bashu-bench pool`'s options.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// Stories to generate and index.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) stories: usize,
    /// Receiving counties per story (besides its origin).
    #[arg(long, default_value_t = 5)]
    pub(crate) receivers: usize,
    /// Searches per kind of query.
    #[arg(long, default_value_t = 300)]
    pub(crate) queries: usize,
    /// Stories per commit, as the follower batches them.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) batch: usize,
}

/// One side's indexing figures.
#[derive(Debug, Serialize)]
pub(crate) struct Indexing {
    pub(crate) stories_per_second: f64,
    pub(crate) seconds: f64,
    pub(crate) bytes_on_disk: u64,
    /// What this side added to the bench process's resident memory (MiB): the index's own
    /// memory and the pages of its files the process touched.
    pub(crate) resident_added_mib: f64,
}

/// One kind of query on both sides.
#[derive(Debug, Serialize)]
pub(crate) struct QueryFigures {
    pub(crate) kind: &'static str,
    pub(crate) bashu: Percentiles,
    pub(crate) bare: Percentiles,
    pub(crate) p99_ratio: f64,
}

/// The scenario's result.
#[derive(Debug, Serialize)]
pub(crate) struct PoolResult {
    pub(crate) stories: usize,
    /// What loading the jieba dictionary added to the process (MiB): once per process.
    pub(crate) dictionary_resident_mib: f64,
    pub(crate) average_story_bytes: usize,
    pub(crate) bashu: Indexing,
    pub(crate) bare: Indexing,
    pub(crate) indexing_ratio: f64,
    pub(crate) queries: Vec<QueryFigures>,
}

/// Words of regional news, so that jieba cuts real words and queries hit real postings.
const WORDS: &[&str] = &[
    "成渝",
    "双城",
    "经济圈",
    "高铁",
    "中线",
    "开通",
    "运营",
    "旅客",
    "出行",
    "项目",
    "建设",
    "签约",
    "投资",
    "产业",
    "园区",
    "合作",
    "发展",
    "乡村",
    "振兴",
    "文旅",
    "景区",
    "游客",
    "春节",
    "假期",
    "防汛",
    "应急",
    "演练",
    "气象",
    "暴雨",
    "预警",
    "交通",
    "公路",
    "桥梁",
    "隧道",
    "水利",
    "灌区",
    "农业",
    "丰收",
    "粮食",
    "柑橘",
    "茶叶",
    "电商",
    "直播",
    "带货",
    "教育",
    "学校",
    "医疗",
    "医院",
    "社保",
    "就业",
    "招聘",
    "企业",
    "创新",
    "科技",
    "数字",
    "政务",
    "服务",
    "改革",
    "营商",
    "环境",
    "生态",
    "保护",
    "长江",
    "嘉陵江",
    "治理",
    "污染",
    "绿色",
    "低碳",
    "能源",
    "氢能",
    "光伏",
    "电力",
    "物流",
    "港口",
    "开放",
    "口岸",
    "外贸",
    "会展",
    "论坛",
    "峰会",
    "非遗",
    "文化",
    "演出",
    "体育",
    "赛事",
    "马拉松",
    "社区",
    "养老",
    "民生",
    "住房",
    "消费",
    "市场",
    "价格",
    "安全",
    "生产",
    "检查",
    "群众",
    "干部",
];

fn sentence(sequence: &mut Sequence, counties: &[&str]) -> String {
    let mut text = String::new();
    let place: &&str = sequence.pick(counties);
    text.push_str(place);
    for _ in 0..(6 + sequence.next() % 6) {
        let word: &&str = sequence.pick(WORDS);
        text.push_str(word);
    }
    text.push('。');
    text
}

fn generate(count: usize, receivers: usize, counties: &Counties) -> Vec<(Story, Vec<String>)> {
    let codes: Vec<&str> = counties.all().iter().map(|c| c.code.as_str()).collect();
    let names: Vec<&str> = counties.all().iter().map(|c| c.name.as_str()).collect();
    let mut sequence = Sequence(0x2545_F491_4F6C_DD1D);
    (0..count)
        .map(|n| {
            let origin = sequence.pick(&codes).to_string();
            let mut body = String::new();
            while body.len() < 1_700 {
                body.push_str(&sentence(&mut sequence, &names));
            }
            let headline: String = sentence(&mut sequence, &names).chars().take(30).collect();
            let mut media = Vec::new();
            if sequence.next().is_multiple_of(10) {
                media.push(MediaReference {
                    uri: "https://v.example/v.mp4".into(),
                    media_type: "video/mp4".into(),
                    ..Default::default()
                });
            }
            let story = Story {
                id: format!("bench-{n}"),
                version: 1,
                origin_county: origin.clone(),
                headline,
                body,
                category: 1 + (sequence.next() % 7) as i32,
                status: PublicationStatus::Usable as i32,
                media,
                ..Default::default()
            };
            let to: Vec<String> =
                (0..receivers).map(|_| sequence.pick(&codes).to_string()).filter(|c| *c != origin).collect();
            (story, to)
        })
        .collect()
}

fn folder_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

/// This process's resident memory and its peak, in MiB (Linux).
fn resident() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn indexing(seconds: f64, stories: usize, folder: &Path, resident_before: f64) -> Indexing {
    Indexing {
        stories_per_second: stories as f64 / seconds,
        seconds,
        bytes_on_disk: folder_size(folder),
        resident_added_mib: resident().0 - resident_before,
    }
}

/// The bare baseline: headline and body with the same analyzer, nothing else.
struct Bare {
    index: Index,
    headline: tantivy::schema::Field,
    body: tantivy::schema::Field,
}

fn bare_index(folder: &Path, stories: &[(Story, Vec<String>)], batch: usize) -> anyhow::Result<(Bare, f64)> {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("bashu_zh")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let headline = builder.add_text_field("headline", text.clone());
    let body = builder.add_text_field("body", text);
    let index = Index::create_in_dir(folder, builder.build())?;
    index.tokenizers().register("bashu_zh", ChineseAnalyzer);
    let started = Instant::now();
    let mut writer: tantivy::IndexWriter = index.writer(64 * 1024 * 1024)?;
    for (n, (story, _)) in stories.iter().enumerate() {
        let mut doc = TantivyDocument::default();
        doc.add_text(headline, &story.headline);
        doc.add_text(body, &story.body);
        writer.add_document(doc)?;
        if (n + 1) % batch == 0 {
            writer.commit()?;
        }
    }
    writer.commit()?;
    Ok((Bare { index, headline, body }, started.elapsed().as_secs_f64()))
}

fn bashu_index(
    folder: &Path,
    stories: &[(Story, Vec<String>)],
    batch: usize,
    counties: Arc<Counties>,
) -> anyhow::Result<(PoolIndex, f64)> {
    let pool = PoolIndex::open(Some(folder), counties)?;
    let started = Instant::now();
    let mut sequence = 0u64;
    for chunk in stories.chunks(batch) {
        let mut changes = Vec::new();
        for (story, receivers) in chunk {
            for county in receivers {
                sequence += 1;
                changes.push(Change::Delivered(Box::new(StoryDelivery {
                    story: Some(story.clone()),
                    county: county.clone(),
                    delivered_at: Some(bashu_proto::Timestamp { seconds: 1_790_000_000 + sequence as i64, nanos: 0 }),
                    approvals: vec![],
                })));
            }
        }
        pool.apply(changes, Checkpoint { feeds: sequence, uses: 0 })?;
    }
    Ok((pool, started.elapsed().as_secs_f64()))
}

fn timed(samples: &mut Vec<Duration>, work: impl FnOnce()) {
    let started = Instant::now();
    work();
    samples.push(started.elapsed());
}

pub(crate) fn run(options: &Options) -> anyhow::Result<PoolResult> {
    let counties = Arc::new(Counties::builtin()?);
    let before = resident().0;
    bashu_pool::analyzer::words("成渝");
    let dictionary_resident_mib = resident().0 - before;
    eprintln!("pool: generating {} stories", options.stories);
    let stories = generate(options.stories, options.receivers, &counties);
    let average_story_bytes =
        stories.iter().map(|(s, _)| s.headline.len() + s.body.len()).sum::<usize>() / stories.len().max(1);
    let folders = (tempfile::tempdir()?, tempfile::tempdir()?);

    eprintln!("pool: indexing into a bare tantivy index");
    let before = resident().0;
    let (bare, bare_seconds) = bare_index(folders.0.path(), &stories, options.batch)?;
    let bare_figures = indexing(bare_seconds, stories.len(), folders.0.path(), before);
    eprintln!("pool: indexing into Bashu's pool");
    let before = resident().0;
    let (pool, bashu_seconds) = bashu_index(folders.1.path(), &stories, options.batch, counties.clone())?;
    let bashu_figures = indexing(bashu_seconds, stories.len(), folders.1.path(), before);

    let bare_reader = bare.index.reader()?;
    let bare_searcher = bare_reader.searcher();
    let mut sequence = Sequence(0x1234_5678_9ABC_DEF1);
    let codes: Vec<String> = counties.all().iter().map(|c| c.code.clone()).collect();
    let term_query = |word: &str| -> Box<dyn Query> {
        let options: Vec<(Occur, Box<dyn Query>)> = [bare.headline, bare.body]
            .into_iter()
            .map(|f| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(Term::from_field_text(f, word), IndexRecordOption::WithFreqs))
                        as Box<dyn Query>,
                )
            })
            .collect();
        Box::new(BooleanQuery::new(options))
    };
    let phrase_query = |a: &str, b: &str| -> Box<dyn Query> {
        let options: Vec<(Occur, Box<dyn Query>)> = [bare.headline, bare.body]
            .into_iter()
            .map(|f| {
                (
                    Occur::Should,
                    Box::new(PhraseQuery::new(vec![Term::from_field_text(f, a), Term::from_field_text(f, b)]))
                        as Box<dyn Query>,
                )
            })
            .collect();
        Box::new(BooleanQuery::new(options))
    };
    let mut queries = Vec::new();
    for kind in ["one term", "phrase", "filtered", "faceted, newest first"] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..options.queries {
            let word = *sequence.pick(WORDS);
            let second = *sequence.pick(WORDS);
            let county = sequence.pick(&codes).clone();
            let (text, bare_query) = match kind {
                "phrase" => (format!("\"{word} {second}\""), phrase_query(word, second)),
                _ => (word.to_owned(), term_query(word)),
            };
            let mut request = SearchRequest { query: text, page_size: 20, ..Default::default() };
            if kind == "filtered" {
                request.origin_provinces = vec!["51".into()];
                request.categories = vec![Category::Policy as i32, Category::Livelihood as i32];
            }
            if kind.starts_with("faceted") {
                request.sort = SortOrder::Newest as i32;
                request.has_video = sequence.next().is_multiple_of(2);
            }
            timed(&mut ours, || {
                let _ = pool.search(&county, &request);
            });
            timed(&mut theirs, || {
                let _ = bare_searcher.search(bare_query.as_ref(), &(TopDocs::with_limit(20).order_by_score(), Count));
            });
        }
        let (bashu, bare) = (Percentiles::of(&ours).unwrap_or_default(), Percentiles::of(&theirs).unwrap_or_default());
        queries.push(QueryFigures { kind, p99_ratio: bashu.p99 / bare.p99.max(0.001), bashu, bare });
    }
    Ok(PoolResult {
        stories: stories.len(),
        dictionary_resident_mib,
        average_story_bytes,
        indexing_ratio: bashu_figures.stories_per_second / bare_figures.stories_per_second.max(0.001),
        bashu: bashu_figures,
        bare: bare_figures,
        queries,
    })
}
