//! The index itself: opened in a folder (kept across restarts) or in memory, changed in batches
//! that each end with a commit recording how far into the streams it has read, so a replica
//! killed at any moment resumes where its last commit ended and nothing is indexed twice or
//! missed.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{Arc, Mutex},
};

use bashu_proto::{
    story::v1::{PublicationStatus, Story, StoryDelivery, StoryUse},
    time::to_system_time,
};
use bashu_registry::Counties;
use tantivy::{
    DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term, collector::TopDocs,
    directory::MmapDirectory, query::TermQuery, schema::IndexRecordOption,
};

use crate::{
    Error, Result,
    analyzer::{ANALYZER, ChineseAnalyzer},
    schema::{Fields, Kind, schema, story_key},
};

/// How far the index has read each stream it is fed from (stream sequences, 0: nothing yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The last `FEEDS` message applied.
    pub feeds: u64,
    /// The last `STORIES` reuse note applied.
    pub uses: u64,
}

/// One thing the streams said.
#[derive(Clone, Debug)]
pub enum Change {
    /// A story version reached a county's feed (a correction or a kill is a version too).
    Delivered(Box<StoryDelivery>),
    /// A county noted it used a story.
    Used(StoryUse),
}

/// Memory the writer may use before it flushes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// The pool's index. Cheap to clone.
#[derive(Clone)]
pub struct PoolIndex {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    /// None when opened only to read (beside the replica that writes it).
    writer: Option<Mutex<IndexWriter>>,
    pub(crate) fields: Fields,
    pub(crate) counties: Arc<Counties>,
}

/// What a story's document says now.
struct Current {
    version: u32,
    killed: bool,
    visible_to: BTreeSet<String>,
    story: Option<Story>,
    at: Option<DateTime>,
}

impl PoolIndex {
    /// Opens the index kept in `folder` (made when missing), or a new one in memory.
    pub fn open(folder: Option<&Path>, counties: Arc<Counties>) -> Result<Self> {
        let (schema, fields) = schema();
        let index = match folder {
            Some(folder) => {
                std::fs::create_dir_all(folder).map_err(|e| Error::Index(format!("{}: {e}", folder.display())))?;
                let directory = MmapDirectory::open(folder).map_err(|e| Error::Index(e.to_string()))?;
                Index::open_or_create(directory, schema)?
            }
            None => Index::create_in_ram(schema),
        };
        index.tokenizers().register(ANALYZER, ChineseAnalyzer);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        // One indexing thread: the pool shares its process (and its two cores) with distribution.
        let writer = Some(Mutex::new(index.writer_with_num_threads(1, WRITER_MEMORY)?));
        Ok(Self { inner: Arc::new(Inner { index, reader, writer, fields, counties }) })
    }

    /// Opens the index another process keeps in `folder`, to read it (operators' tools, tests):
    /// it follows that process's commits and cannot change anything.
    pub fn open_read_only(folder: &Path, counties: Arc<Counties>) -> Result<Self> {
        let (_, fields) = schema();
        let directory = MmapDirectory::open(folder).map_err(|e| Error::Index(e.to_string()))?;
        let index = Index::open(directory)?;
        index.tokenizers().register(ANALYZER, ChineseAnalyzer);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::OnCommitWithDelay).try_into()?;
        Ok(Self { inner: Arc::new(Inner { index, reader, writer: None, fields, counties }) })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>> {
        let writer = self.inner.writer.as_ref().ok_or_else(|| Error::Index("opened only to read".into()))?;
        writer.lock().map_err(|_| Error::Index("the index writer was poisoned".into()))
    }

    /// How far the last commit read (on disk: the newest commit, whoever made it).
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let metas = self.inner.index.load_metas()?;
        Ok(metas.payload.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default())
    }

    /// Applies `changes` and commits them with `checkpoint`, in one step: after a crash either
    /// all of them are in and the checkpoint says so, or none is. Blocking: call it off the
    /// async runtime.
    pub fn apply(&self, changes: Vec<Change>, checkpoint: Checkpoint) -> Result<()> {
        let inner = &self.inner;
        let fields = &inner.fields;
        let searcher = inner.reader.searcher();
        let mut writer = self.writer()?;

        let mut stories: BTreeMap<String, Vec<StoryDelivery>> = BTreeMap::new();
        let mut uses = Vec::new();
        for change in changes {
            match change {
                Change::Delivered(delivery) => {
                    let Some(story) = &delivery.story else { continue };
                    stories.entry(story_key(&story.origin_county, &story.id)).or_default().push(*delivery);
                }
                Change::Used(used) => uses.push(used),
            }
        }
        for (key, deliveries) in stories {
            let mut current = self.current(&searcher, &key)?;
            for delivery in deliveries {
                merge(&mut current, delivery);
            }
            writer.delete_term(Term::from_field_text(fields.key, &key));
            let visible: Vec<String> = current.visible_to.iter().cloned().collect();
            let doc = match (&current.story, current.killed) {
                (Some(story), false) => fields.story_document(
                    &inner.counties,
                    story,
                    current.at.unwrap_or_else(|| DateTime::from_timestamp_secs(0)),
                    &visible,
                ),
                _ => {
                    let (origin, id) = key.split_once('.').unwrap_or((key.as_str(), ""));
                    fields.kill_document(origin, id, current.version, &visible)
                }
            };
            writer.add_document(doc)?;
        }
        for used in uses {
            let key = format!("use.{}.{}.{}.{}", used.county, used.origin_county, used.story_id, used.version);
            writer.delete_term(Term::from_field_text(fields.key, &key));
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.key, &key);
            doc.add_text(fields.kind, Kind::Use.name());
            doc.add_text(fields.origin, &used.origin_county);
            doc.add_text(fields.user, &used.county);
            doc.add_text(fields.story_id, &used.story_id);
            doc.add_text(fields.placement, &used.placement);
            doc.add_u64(fields.version, u64::from(used.version));
            doc.add_date(fields.at, date_of(used.used_at.as_ref()));
            writer.add_document(doc)?;
        }
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&serde_json::to_string(&checkpoint).unwrap_or_default());
        commit.commit()?;
        drop(writer);
        inner.reader.reload()?;
        Ok(())
    }

    /// A story's document as it is, or an empty one.
    fn current(&self, searcher: &Searcher, key: &str) -> Result<Current> {
        let fields = &self.inner.fields;
        let mut current = Current { version: 0, killed: false, visible_to: BTreeSet::new(), story: None, at: None };
        let query = TermQuery::new(Term::from_field_text(fields.key, key), IndexRecordOption::Basic);
        if let Some((_, address)) =
            searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?.into_iter().next()
        {
            let doc: TantivyDocument = searcher.doc(address)?;
            current.version = fields.u64(&doc, fields.version) as u32;
            current.visible_to = fields.texts(&doc, fields.visible_to).into_iter().collect();
            current.story = fields.stored_story(&doc);
            current.killed = current.story.is_none();
            current.at = fields.date(&doc, fields.at);
        }
        Ok(current)
    }

    /// The searcher over the last commit.
    pub(crate) fn searcher(&self) -> Searcher {
        self.inner.reader.searcher()
    }

    /// How many documents of each kind the index holds (stories, kills, uses).
    pub fn counts(&self) -> Result<(u64, u64, u64)> {
        if self.inner.writer.is_none() {
            self.inner.reader.reload()?;
        }
        let searcher = self.searcher();
        let count = |kind: Kind| -> Result<u64> {
            let query =
                TermQuery::new(Term::from_field_text(self.inner.fields.kind, kind.name()), IndexRecordOption::Basic);
            Ok(searcher.search(&query, &tantivy::collector::Count)? as u64)
        };
        Ok((count(Kind::Story)?, count(Kind::Kill)?, count(Kind::Use)?))
    }

    /// Removes everything, checkpoint included, so the index is built again from the streams.
    pub fn clear(&self) -> Result<()> {
        let mut writer = self.writer()?;
        writer.delete_all_documents()?;
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&serde_json::to_string(&Checkpoint::default()).unwrap_or_default());
        commit.commit()?;
        drop(writer);
        self.inner.reader.reload()?;
        Ok(())
    }
}

/// Folds one delivery into what the story's document says: the newest version wins, a kill
/// stays a kill (a later correction cannot follow one), and every receiver may find it.
fn merge(current: &mut Current, delivery: StoryDelivery) {
    let Some(story) = delivery.story else { return };
    current.visible_to.insert(story.origin_county.clone());
    current.visible_to.insert(delivery.county.clone());
    if story.version < current.version || (current.killed && story.version <= current.version) {
        return;
    }
    if story.version == current.version && current.story.is_some() {
        return;
    }
    current.version = story.version;
    current.at = Some(date_of(delivery.delivered_at.as_ref()));
    if story.status() == PublicationStatus::Canceled {
        current.killed = true;
        current.story = None;
    } else {
        current.killed = false;
        current.story = Some(story);
    }
}

pub(crate) fn date_of(at: Option<&bashu_proto::Timestamp>) -> DateTime {
    let seconds = at
        .and_then(to_system_time)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    DateTime::from_timestamp_secs(seconds)
}
