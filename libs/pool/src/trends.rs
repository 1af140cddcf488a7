//! What an editor asks of the pool as a whole: who reused my stories, which topics are rising this
//! week in each province, which stories were reused most, and what each county gave and took.

use std::collections::{BTreeMap, HashMap, HashSet};

use bashu_proto::{
    pool::v1::{GetTrendsResponse, GiveTake, ProvinceTrend, Reuse, ReusedStory, RisingTerm},
    time::from_system_time,
};
use tantivy::{
    DateTime, Term,
    query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery},
    schema::IndexRecordOption,
};

use crate::{PoolIndex, Result, analyzer::words, schema::Kind, search::system_time};

/// The most reuse notes one answer lists.
pub const MAX_REUSES: u32 = 500;
/// Stories read per week for rising topics: a week of the whole region, bounded.
const STORIES_PER_WEEK: usize = 5_000;
/// Uses read for the most reused and give and take.
const USES_READ: usize = 20_000;
/// A rising term needs this many stories this week.
const MIN_STORIES: u64 = 3;
/// Terms listed per province, stories listed as most reused.
const TOP: usize = 10;
const WEEK: i64 = 7 * 24 * 3600;

fn term(field: tantivy::schema::Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic))
}

impl PoolIndex {
    /// Who reused `origin`'s stories, newest first.
    pub fn reuses(&self, origin: &str, limit: u32) -> Result<Vec<Reuse>> {
        let fields = &self.inner.fields;
        let limit = match limit {
            0 => 100,
            n => n.min(MAX_REUSES),
        } as usize;
        let query = BooleanQuery::new(vec![
            (Occur::Must, term(fields.kind, Kind::Use.name())),
            (Occur::Must, term(fields.origin, origin)),
        ]);
        let mut headlines: HashMap<String, String> = HashMap::new();
        let mut audiences: HashMap<String, HashSet<String>> = HashMap::new();
        let searcher = self.searcher();
        let mut reuses = Vec::new();
        for doc in self.newest(&query, limit)? {
            let id = fields.text(&doc, fields.story_id).to_owned();
            let user = fields.text(&doc, fields.user);
            if !audiences.contains_key(&id) {
                audiences.insert(id.clone(), self.audience(&searcher, origin, &id)?);
            }
            if !audiences[&id].contains(user) {
                continue;
            }
            let headline = match headlines.get(&id) {
                Some(headline) => headline.clone(),
                None => {
                    let headline =
                        self.story(origin, origin, &id)?.and_then(|s| s.story).map(|s| s.headline).unwrap_or_default();
                    headlines.insert(id.clone(), headline.clone());
                    headline
                }
            };
            reuses.push(Reuse {
                story_id: id,
                version: fields.u64(&doc, fields.version) as u32,
                headline,
                county: fields.text(&doc, fields.user).to_owned(),
                used_at: fields.date(&doc, fields.at).map(|d| from_system_time(system_time(d))),
                placement: fields.text(&doc, fields.placement).to_owned(),
            });
        }
        Ok(reuses)
    }

    /// The pool's trends as `county` can see them, for the week ending at `end`.
    pub fn trends(&self, county: &str, end: std::time::SystemTime) -> Result<GetTrendsResponse> {
        let fields = &self.inner.fields;
        let end = end.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let week = |from: i64, to: i64| -> Result<Vec<tantivy::TantivyDocument>> {
            let range = RangeQuery::new(
                std::ops::Bound::Included(Term::from_field_date(fields.at, DateTime::from_timestamp_secs(from))),
                std::ops::Bound::Excluded(Term::from_field_date(fields.at, DateTime::from_timestamp_secs(to))),
            );
            let query = BooleanQuery::new(vec![
                (Occur::Must, term(fields.visible_to, county)),
                (Occur::Must, term(fields.kind, Kind::Story.name())),
                (Occur::Must, Box::new(range)),
            ]);
            self.newest(&query, STORIES_PER_WEEK)
        };
        // Per province: in how many stories each term occurs, this week and the week before.
        let mut this_week: BTreeMap<String, HashMap<String, u64>> = BTreeMap::new();
        let mut last_week: BTreeMap<String, HashMap<String, u64>> = BTreeMap::new();
        for (counts, docs) in
            [(&mut this_week, week(end - WEEK, end)?), (&mut last_week, week(end - 2 * WEEK, end - WEEK)?)]
        {
            for doc in docs {
                let province = fields.text(&doc, fields.origin).get(..2).unwrap_or_default().to_owned();
                let Some(story) = fields.stored_story(&doc) else { continue };
                let text = format!("{} {} {}", story.headline, story.summary, story.tags.join(" "));
                let terms: HashSet<String> = words(&text)
                    .into_iter()
                    .map(|t| t.text)
                    .filter(|t| t.chars().count() > 1 && !t.chars().all(|c| c.is_ascii_digit()))
                    .collect();
                let province_counts = counts.entry(province).or_default();
                for term in terms {
                    *province_counts.entry(term).or_default() += 1;
                }
            }
        }
        let counties = &self.inner.counties;
        let rising = this_week
            .into_iter()
            .map(|(province, counts)| {
                let before = last_week.get(&province);
                let mut terms: Vec<RisingTerm> = counts
                    .into_iter()
                    .filter(|(_, now)| *now >= MIN_STORIES)
                    .map(|(term, now)| {
                        let then = before.and_then(|b| b.get(&term)).copied().unwrap_or(0);
                        RisingTerm { term, this_week: now, last_week: then }
                    })
                    .filter(|t| t.this_week >= 2 * t.last_week.max(1))
                    .collect();
                // The steepest rise first; then the most used; then by name, so answers are stable.
                terms.sort_by(|a, b| {
                    let rise = |t: &RisingTerm| t.this_week as f64 / (t.last_week as f64 + 1.0);
                    rise(b).total_cmp(&rise(a)).then(b.this_week.cmp(&a.this_week)).then(a.term.cmp(&b.term))
                });
                terms.truncate(TOP);
                let label = counties
                    .all()
                    .iter()
                    .find(|c| c.province_code == province)
                    .map(|c| c.province_name.clone())
                    .unwrap_or_else(|| province.clone());
                ProvinceTrend { province, label, terms }
            })
            .collect();

        // Reuse: every note from a county the story reached, counted per story and per county.
        let uses = self.newest(&term(fields.kind, Kind::Use.name()), USES_READ)?;
        let searcher = self.searcher();
        let mut audiences: HashMap<(String, String), HashSet<String>> = HashMap::new();
        let mut per_story: HashMap<(String, String), HashSet<String>> = HashMap::new();
        let mut given: HashMap<String, u64> = HashMap::new();
        let mut taken: HashMap<String, u64> = HashMap::new();
        for doc in &uses {
            let origin = fields.text(doc, fields.origin).to_owned();
            let user = fields.text(doc, fields.user).to_owned();
            let story = (origin.clone(), fields.text(doc, fields.story_id).to_owned());
            if !audiences.contains_key(&story) {
                let audience = self.audience(&searcher, &story.0, &story.1)?;
                audiences.insert(story.clone(), audience);
            }
            if !audiences[&story].contains(&user) {
                continue;
            }
            per_story
                .entry((origin.clone(), fields.text(doc, fields.story_id).to_owned()))
                .or_default()
                .insert(user.clone());
            *given.entry(origin).or_default() += 1;
            *taken.entry(user).or_default() += 1;
        }
        let mut most_reused = Vec::new();
        let mut ranked: Vec<_> = per_story.into_iter().collect();
        ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        for ((origin, id), users) in ranked {
            if most_reused.len() == TOP {
                break;
            }
            // Only stories the asking county can see are named.
            if let Some(story) = self.story(county, &origin, &id)?.and_then(|s| s.story) {
                most_reused.push(ReusedStory {
                    origin_county: origin,
                    story_id: id,
                    headline: story.headline,
                    uses: users.len() as u64,
                });
            }
        }
        let mut give_take: Vec<GiveTake> = given
            .keys()
            .chain(taken.keys())
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|code| GiveTake {
                county: code.clone(),
                name: counties.get(code).map(|c| c.name.clone()).unwrap_or_default(),
                given: given.get(code).copied().unwrap_or(0),
                taken: taken.get(code).copied().unwrap_or(0),
            })
            .collect();
        give_take.sort_by(|a, b| (b.given + b.taken).cmp(&(a.given + a.taken)).then(a.county.cmp(&b.county)));
        Ok(GetTrendsResponse { rising, most_reused, give_take })
    }
}
