//! Searching as one county. Every query is wrapped in the county's visibility (its own stories
//! and what was delivered to it) before anything else, so no query, filter, facet or cursor can
//! reach another county's unshared story.

use std::collections::HashSet;

use bashu_proto::{
    pool::v1::{FacetCount, PoolHit, PoolStory, SearchRequest, SearchResponse, SortOrder},
    story::v1::Category,
    time::from_system_time,
};
use tantivy::{
    DateTime, DocAddress, Order, Searcher, TantivyDocument, Term,
    collector::{Count, FacetCollector, TopDocs},
    query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery},
    schema::{Facet, IndexRecordOption},
    snippet::SnippetGenerator,
};

use crate::{
    Error, PoolIndex, Result,
    schema::{Kind, story_key},
};

/// Results per page when none is asked for, and at most.
pub const DEFAULT_PAGE: u32 = 20;
/// The most results a page may hold.
pub const MAX_PAGE: u32 = 50;
/// How deep paging goes: past this, narrow the query instead.
pub const MAX_DEPTH: usize = 500;

fn term(field: tantivy::schema::Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic))
}

fn facet_term(field: tantivy::schema::Field, path: &[&str]) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_facet(field, &Facet::from_path(path)), IndexRecordOption::Basic))
}

/// Any of `values` as facet paths of `field` (no values: no filter).
fn any_of(field: tantivy::schema::Field, values: &[String]) -> Option<Box<dyn Query>> {
    (!values.is_empty()).then(|| {
        let options: Vec<(Occur, Box<dyn Query>)> =
            values.iter().map(|v| (Occur::Should, facet_term(field, &[v.as_str()]))).collect();
        Box::new(BooleanQuery::new(options)) as Box<dyn Query>
    })
}

/// The offset a cursor stands for.
fn offset_of(cursor: &str) -> Result<usize> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor
        .strip_prefix("o")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n <= MAX_DEPTH)
        .ok_or_else(|| Error::Invalid { field: "cursor", reason: "not a cursor this search gave".into() })
}

/// A province, prefecture or county code of `digits` digits.
fn check_codes(field: &'static str, values: &[String], digits: usize) -> Result<()> {
    match values.iter().find(|v| v.len() != digits || !v.bytes().all(|b| b.is_ascii_digit())) {
        Some(bad) => Err(Error::Invalid { field, reason: format!("{bad:?} is not a {digits}-digit code") }),
        None if values.len() > 50 => Err(Error::Invalid { field, reason: "at most 50".into() }),
        None => Ok(()),
    }
}

impl PoolIndex {
    /// What `county` may see of stories: its own and those delivered to it, not killed.
    fn visible_stories(&self, county: &str) -> Vec<(Occur, Box<dyn Query>)> {
        let fields = &self.inner.fields;
        vec![(Occur::Must, term(fields.visible_to, county)), (Occur::Must, term(fields.kind, Kind::Story.name()))]
    }

    /// Searches as `county`.
    pub fn search(&self, county: &str, request: &SearchRequest) -> Result<SearchResponse> {
        let fields = &self.inner.fields;
        let page = match request.page_size {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            n => return Err(Error::Invalid { field: "page_size", reason: format!("1 to {MAX_PAGE}, not {n}") }),
        } as usize;
        let offset = offset_of(&request.cursor)?;
        if offset + page > MAX_DEPTH {
            return Err(Error::Invalid {
                field: "cursor",
                reason: format!("results are paged to the {MAX_DEPTH}th; narrow the query"),
            });
        }
        check_codes("origin_provinces", &request.origin_provinces, 2)?;
        check_codes("origin_prefectures", &request.origin_prefectures, 4)?;
        check_codes("origin_counties", &request.origin_counties, 6)?;
        let text_fields = [fields.headline, fields.summary, fields.body, fields.tags];
        let text = crate::query::parse(&request.query, &text_fields)?;

        let mut clauses = self.visible_stories(county);
        if let Some(text) = &text {
            clauses.push((Occur::Must, text.box_clone()));
        }
        let places: Vec<String> = request
            .origin_provinces
            .iter()
            .cloned()
            .chain(request.origin_prefectures.iter().map(|p| format!("{}/{p}", &p[..2])))
            .chain(request.origin_counties.iter().map(|c| format!("{}/{}/{c}", &c[..2], &c[..4])))
            .collect();
        if !places.is_empty() {
            let options: Vec<(Occur, Box<dyn Query>)> = places
                .iter()
                .map(|p| (Occur::Should, facet_term(fields.place, &p.split('/').collect::<Vec<_>>())))
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(options))));
        }
        for (field, count) in [("categories", request.categories.len()), ("sharing", request.sharing.len())] {
            if count > 50 {
                return Err(Error::Invalid { field, reason: "at most 50".into() });
            }
        }
        let categories: Vec<String> = request
            .categories
            .iter()
            .map(|c| Category::try_from(*c).unwrap_or_default().as_str_name().to_owned())
            .collect();
        if let Some(filter) = any_of(fields.category, &categories) {
            clauses.push((Occur::Must, filter));
        }
        if let Some(bad) = request.sharing.iter().find(|s| !crate::schema::SHARING_SCOPES.contains(&s.as_str())) {
            return Err(Error::Invalid {
                field: "sharing",
                reason: format!("{bad:?} is not one of {}", crate::schema::SHARING_SCOPES.join(", ")),
            });
        }
        if let Some(filter) = any_of(fields.sharing, &request.sharing) {
            clauses.push((Occur::Must, filter));
        }
        if request.has_video {
            clauses.push((Occur::Must, facet_term(fields.media, &["video"])));
        }
        if request.has_image {
            clauses.push((Occur::Must, facet_term(fields.media, &["image"])));
        }
        let from = request.from.as_ref().map(|t| crate::index::date_of(Some(t)));
        let to = request.to.as_ref().map(|t| crate::index::date_of(Some(t)));
        if from.is_some() || to.is_some() {
            let lower = from
                .map_or(std::ops::Bound::Unbounded, |d| std::ops::Bound::Included(Term::from_field_date(fields.at, d)));
            let upper = to
                .map_or(std::ops::Bound::Unbounded, |d| std::ops::Bound::Excluded(Term::from_field_date(fields.at, d)));
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        let query = BooleanQuery::new(clauses);

        let searcher = self.searcher();
        // One collector for the provinces, one for the prefectures inside them: a collector
        // takes no facet below another it already counts.
        let mut places = FacetCollector::for_field("place");
        places.add_facet(Facet::root());
        let mut prefectures = FacetCollector::for_field("place");
        for province in ["51", "50"] {
            prefectures.add_facet(Facet::from_path([province]));
        }
        let mut categories = FacetCollector::for_field("category");
        categories.add_facet(Facet::root());
        let mut media = FacetCollector::for_field("media");
        media.add_facet(Facet::root());
        let mut sharing = FacetCollector::for_field("sharing");
        sharing.add_facet(Facet::root());
        let by_time = request.sort() == SortOrder::Newest || text.is_none();
        let window = TopDocs::with_limit(page + 1).and_offset(offset);
        let facets = (places, prefectures, categories, (media, sharing));
        let (addresses, total, (places, prefectures, categories, (media, sharing))) = if by_time {
            let ((top, total), facets) = searcher
                .search(&query, &((window.order_by_fast_field::<DateTime>("at", Order::Desc), Count), facets))?;
            (top.into_iter().map(|(_, a)| (0.0, a)).collect::<Vec<_>>(), total, facets)
        } else {
            let ((top, total), facets) = searcher.search(&query, &((window.order_by_score(), Count), facets))?;
            (top, total, facets)
        };

        let more = addresses.len() > page;
        let highlighters = match &text {
            Some(text) => Some((
                SnippetGenerator::create(&searcher, text.as_ref(), fields.headline)?,
                SnippetGenerator::create(&searcher, text.as_ref(), fields.body)?,
            )),
            None => None,
        };
        let mut hits = Vec::with_capacity(page);
        for (score, address) in addresses.into_iter().take(page) {
            hits.push(self.hit(&searcher, address, score, highlighters.as_ref())?);
        }

        let counties = &self.inner.counties;
        let label_of = |code: &str| -> String {
            let unit = counties.all().iter().find(|c| c.province_code == code || c.prefecture_code == code);
            match unit {
                Some(c) if c.province_code == code => c.province_name.clone(),
                Some(c) => c.prefecture_name.clone(),
                None => code.to_owned(),
            }
        };
        let counts = |fruit: &tantivy::collector::FacetCounts, root: &Facet, label: &dyn Fn(&str) -> String| {
            fruit
                .get(root.clone())
                .map(|(facet, count)| {
                    let value = facet.to_path().last().map(|s| s.to_string()).unwrap_or_default();
                    FacetCount { label: label(&value), value, count }
                })
                .collect::<Vec<_>>()
        };
        let provinces = counts(&places, &Facet::root(), &label_of);
        let prefectures: Vec<FacetCount> =
            ["51", "50"].iter().flat_map(|p| counts(&prefectures, &Facet::from_path([*p]), &label_of)).collect();
        let categories = counts(&categories, &Facet::root(), &|v| v.to_owned());
        let media = counts(&media, &Facet::root(), &|v| v.to_owned());
        let sharing = counts(&sharing, &Facet::root(), &|v| v.to_owned());
        Ok(SearchResponse {
            hits,
            total: total as u64,
            next_cursor: if more && offset + page < MAX_DEPTH { format!("o{}", offset + page) } else { String::new() },
            provinces,
            prefectures,
            categories,
            media,
            sharing,
        })
    }

    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        score: f32,
        highlighters: Option<&(SnippetGenerator, SnippetGenerator)>,
    ) -> Result<PoolHit> {
        let fields = &self.inner.fields;
        let doc: TantivyDocument = searcher.doc(address)?;
        let story = fields.stored_story(&doc);
        let headline = story.as_ref().map(|s| s.headline.clone()).unwrap_or_default();
        let body = story.as_ref().map(|s| s.body.clone()).unwrap_or_default();
        let (headline_html, snippet_html) = match highlighters {
            Some((for_headline, for_body)) => {
                let mut headline_snippet = for_headline.snippet(&headline);
                headline_snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
                let headline_html = if headline_snippet.is_empty() {
                    escape(&headline)
                } else {
                    highlight_whole(&headline, &headline_snippet)
                };
                let mut body_snippet = for_body.snippet(&body);
                body_snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
                let snippet = if body_snippet.is_empty() { escape(&opening(&body)) } else { body_snippet.to_html() };
                (headline_html, snippet)
            }
            None => (escape(&headline), escape(&opening(&body))),
        };
        Ok(PoolHit {
            story,
            headline_html,
            snippet_html,
            score,
            delivered_at: fields.date(&doc, fields.at).map(|d| from_system_time(system_time(d))),
        })
    }

    /// One story as `county` may see it; `None` when it may not (or there is none: the same
    /// answer, so a county cannot probe for stories it was not given).
    pub fn story(&self, county: &str, origin: &str, id: &str) -> Result<Option<PoolStory>> {
        let fields = &self.inner.fields;
        let searcher = self.searcher();
        let mut clauses = self.visible_stories(county);
        clauses.push((Occur::Must, term(fields.key, &story_key(origin, id))));
        let found = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, address)) = found.into_iter().next() else { return Ok(None) };
        let doc: TantivyDocument = searcher.doc(address)?;
        let used_by = if county == origin { self.users_of(&searcher, origin, id)? } else { Vec::new() };
        Ok(Some(PoolStory {
            story: fields.stored_story(&doc),
            delivered_at: fields.date(&doc, fields.at).map(|d| from_system_time(system_time(d))),
            used_by,
        }))
    }

    /// Who may see a story: its origin and every county it reached (from its document or its
    /// tombstone); empty when the pool never had it. A reuse note counts only from one of them.
    pub(crate) fn audience(&self, searcher: &Searcher, origin: &str, id: &str) -> Result<HashSet<String>> {
        let fields = &self.inner.fields;
        let query = TermQuery::new(Term::from_field_text(fields.key, &story_key(origin, id)), IndexRecordOption::Basic);
        let Some((_, address)) = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?.into_iter().next()
        else {
            return Ok(HashSet::new());
        };
        let doc: TantivyDocument = searcher.doc(address)?;
        Ok(fields.texts(&doc, fields.visible_to).into_iter().collect())
    }

    /// The counties that noted they used a story, each once (only those it reached).
    fn users_of(&self, searcher: &Searcher, origin: &str, id: &str) -> Result<Vec<String>> {
        let fields = &self.inner.fields;
        let query = BooleanQuery::new(vec![
            (Occur::Must, term(fields.kind, Kind::Use.name())),
            (Occur::Must, term(fields.origin, origin)),
            (Occur::Must, term(fields.story_id, id)),
        ]);
        let mut users: Vec<String> = searcher
            .search(&query, &TopDocs::with_limit(MAX_DEPTH).order_by_score())?
            .into_iter()
            .filter_map(|(_, address)| searcher.doc::<TantivyDocument>(address).ok())
            .map(|doc| fields.text(&doc, fields.user).to_owned())
            .collect();
        let audience = self.audience(searcher, origin, id)?;
        users.retain(|user| audience.contains(user));
        users.sort();
        users.dedup();
        Ok(users)
    }

    /// Every document matching `query`, at most `limit`, newest first.
    pub(crate) fn newest(&self, query: &dyn Query, limit: usize) -> Result<Vec<TantivyDocument>> {
        let searcher = self.searcher();
        let top =
            searcher.search(query, &TopDocs::with_limit(limit).order_by_fast_field::<DateTime>("at", Order::Desc))?;
        top.into_iter().map(|(_, address)| Ok(searcher.doc(address)?)).collect()
    }
}

/// The headline with every match marked (a headline is short: all of it, not a fragment).
fn highlight_whole(headline: &str, snippet: &tantivy::snippet::Snippet) -> String {
    let offset = snippet.fragment_range().start;
    let mut html = String::new();
    let mut at = 0;
    for range in snippet.highlighted() {
        let (from, to) = (range.start + offset, range.end + offset);
        if from < at || to > headline.len() {
            continue;
        }
        html.push_str(&escape(&headline[at..from]));
        html.push_str("<mark>");
        html.push_str(&escape(&headline[from..to]));
        html.push_str("</mark>");
        at = to;
    }
    html.push_str(&escape(&headline[at..]));
    html
}

/// The body's first 120 characters.
fn opening(body: &str) -> String {
    body.chars().take(120).collect()
}

/// Text as HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut html = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
    html
}

pub(crate) fn system_time(date: DateTime) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(date.into_timestamp_secs().max(0) as u64)
}
