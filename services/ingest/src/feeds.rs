//! RSS 2.0 and Atom feeds a county registers: polled on its schedule with conditional GETs,
//! each item ingested once (its story id derives from the feed URL and the item's guid/id, and
//! an accepted id is never submitted again, across polls and restarts), a bad item reported and
//! skipped, a failing feed backed off and its state visible at `GET /v1/feeds`.

use std::time::Duration;

use async_nats::jetstream::kv;
use bashu_proto::story::v1::{Category, SharingPolicy, Story};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Error, FieldError, Ingest, Result};

const SOURCE_KEY: &str = "feed.";
const STATE_KEY: &str = "feedstate.";
const MAX_FEED_BYTES: usize = 5 * 1024 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
const KEPT_PROBLEMS: usize = 20;

/// A feed as a county registers it (`PUT /v1/feeds/<name>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FeedSource {
    /// The feed's URL (http or https).
    pub url: String,
    /// Seconds between polls (at least `ingest.feeds.min_interval_secs`).
    pub interval_secs: u64,
    /// The category every item gets, for example `CATEGORY_LIVELIHOOD`.
    pub category: String,
    /// The items' language (default zh-CN).
    #[serde(default)]
    pub language: String,
    /// Who the items are shared with (proto3 JSON of `SharingPolicy`; default: partners).
    #[serde(default)]
    pub sharing: Option<serde_json::Value>,
}

/// What the poller knows about a feed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedState {
    /// The last ETag the feed sent.
    pub etag: Option<String>,
    /// The last Last-Modified the feed sent.
    pub last_modified: Option<String>,
    /// When it was last polled (Unix seconds).
    pub last_polled: u64,
    /// When it is polled next (Unix seconds).
    pub next_poll: u64,
    /// Polls that failed in a row (0: healthy).
    pub consecutive_failures: u32,
    /// Why the last poll failed.
    pub last_error: Option<String>,
    /// The HTTP status of the last poll.
    pub last_status: u16,
    /// Items accepted over the feed's life.
    pub items_ingested: u64,
    /// The latest items that were refused, with why.
    pub rejected_items: Vec<RejectedItem>,
}

/// A registered feed with where it belongs and how its polling goes.
#[derive(Clone, Debug)]
pub struct RegisteredFeed {
    /// The county that registered it (its items' origin).
    pub county: String,
    /// The county's name for it.
    pub name: String,
    /// What was registered.
    pub source: FeedSource,
    /// The poller's record.
    pub state: FeedState,
}

/// An item that could not be ingested.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedItem {
    /// The item's guid or id.
    pub guid: String,
    /// What was wrong, field by field.
    pub problems: Vec<String>,
    /// When (Unix seconds).
    pub at: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl FeedSource {
    /// Checks a registration; `min_interval` comes from the configuration, `egress` says which
    /// addresses a URL may name.
    pub fn check(&self, min_interval: u64, egress: &bashu_egress::Config) -> Result<()> {
        let mut errors = Vec::new();
        if self.url.len() > 2048 {
            errors.push(FieldError::new("url", "an http(s) URL of at most 2048 bytes"));
        } else if let Err(error) = egress.check_url(&self.url) {
            errors.push(FieldError::new("url", error.to_string()));
        }
        if self.interval_secs < min_interval || self.interval_secs > 86_400 {
            errors.push(FieldError::new("intervalSecs", format!("between {min_interval} and 86400 seconds")));
        }
        if Category::from_str_name(&self.category).is_none_or(|c| c == Category::Unspecified) {
            errors.push(FieldError::new("category", "a category such as CATEGORY_LIVELIHOOD"));
        }
        if let Some(sharing) = &self.sharing
            && let Err(error) = serde_json::from_value::<SharingPolicy>(sharing.clone())
        {
            errors.push(FieldError::new("sharing", error.to_string()));
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
    }
}

/// The story an item becomes. Its id is stable: the same item of the same feed is the same story.
fn item_story(county: &str, source: &FeedSource, entry: &feed_rs::model::Entry) -> Story {
    let digest = Sha256::digest(format!("{}\n{}", source.url, entry.id).as_bytes());
    let text = |t: &Option<feed_rs::model::Text>| t.as_ref().map(|t| t.content.trim().to_owned()).unwrap_or_default();
    let summary = text(&entry.summary);
    let body =
        entry.content.as_ref().and_then(|c| c.body.clone()).filter(|b| !b.trim().is_empty()).unwrap_or(summary.clone());
    let created =
        entry.published.or(entry.updated).map(|t| bashu_proto::Timestamp { seconds: t.timestamp(), nanos: 0 });
    let sharing = source
        .sharing
        .clone()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or(SharingPolicy { partners: true, ..Default::default() });
    Story {
        id: format!("feed-{}", &hex::encode(digest)[..32]),
        version: 1,
        origin_county: county.to_owned(),
        headline: text(&entry.title),
        summary: if summary == body { String::new() } else { summary.chars().take(2000).collect() },
        body,
        language: if source.language.is_empty() { "zh-CN".into() } else { source.language.clone() },
        category: Category::from_str_name(&source.category).unwrap_or(Category::Other) as i32,
        tags: entry.categories.iter().map(|c| c.term.clone()).take(32).collect(),
        byline: entry.authors.first().and_then(|a| a.name.clone()).unwrap_or_default(),
        created_at: created,
        sharing: Some(sharing),
        ..Default::default()
    }
}

impl Ingest {
    fn feed_key(county: &str, name: &str) -> String {
        format!("{SOURCE_KEY}{county}.{name}")
    }

    /// Registers (or replaces) one of the county's feeds; it is polled at once.
    pub async fn put_feed(&self, county: &str, name: &str, source: FeedSource) -> Result<()> {
        let name_ok =
            !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name_ok {
            return Err(Error::Invalid(vec![FieldError::new("name", "1-64 of A-Z, a-z, 0-9 and '-'")]));
        }
        source.check(self.inner.config.feeds.min_interval_secs, &self.inner.egress)?;
        let bytes = serde_json::to_vec(&source).map_err(Error::store)?;
        self.inner.feeds.put(Self::feed_key(county, name), bytes.into()).await.map_err(Error::store)?;
        let state = serde_json::to_vec(&FeedState::default()).map_err(Error::store)?;
        self.inner.feeds.put(format!("{STATE_KEY}{county}.{name}"), state.into()).await.map_err(Error::store)?;
        Ok(())
    }

    /// Removes one of the county's feeds.
    pub async fn delete_feed(&self, county: &str, name: &str) -> Result<()> {
        let key = Self::feed_key(county, name);
        if self.inner.feeds.get(&key).await.map_err(Error::store)?.is_none() {
            return Err(Error::NotFound(format!("county {county} has no feed {name}")));
        }
        self.inner.feeds.purge(&key).await.map_err(Error::store)?;
        self.inner.feeds.purge(format!("{STATE_KEY}{county}.{name}")).await.map_err(Error::store)?;
        Ok(())
    }

    /// Every feed (of one county, or of all), with its state.
    pub async fn feeds(&self, county: Option<&str>) -> Result<Vec<RegisteredFeed>> {
        let prefix = match county {
            Some(county) => format!("{SOURCE_KEY}{county}."),
            None => SOURCE_KEY.to_owned(),
        };
        let keys: Vec<String> =
            self.inner.feeds.keys().await.map_err(Error::store)?.try_collect().await.map_err(Error::store)?;
        let mut feeds = Vec::new();
        for key in keys.into_iter().filter(|k| k.starts_with(&prefix)) {
            let Some((county, name)) = key[SOURCE_KEY.len()..].split_once('.') else { continue };
            let Some(bytes) = self.inner.feeds.get(&key).await.map_err(Error::store)? else { continue };
            let Ok(source) = serde_json::from_slice::<FeedSource>(&bytes) else { continue };
            let state = match self.inner.feeds.get(format!("{STATE_KEY}{county}.{name}")).await.map_err(Error::store)? {
                Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                None => FeedState::default(),
            };
            feeds.push(RegisteredFeed { county: county.to_owned(), name: name.to_owned(), source, state });
        }
        Ok(feeds)
    }

    /// Polls every due feed each `tick`, until `shutdown`.
    pub async fn poll_feeds(self, shutdown: CancellationToken) {
        let tick = Duration::from_millis(self.inner.config.feeds.tick_ms);
        let timeout = Duration::from_secs(self.inner.config.feeds.timeout_secs);
        let client = match self.inner.egress.client(timeout, "bashu-ingest feed poller", bashu_egress::MAX_REDIRECTS) {
            Ok(client) => client,
            Err(error) => {
                warn!(%error, "feed polling disabled: no HTTP client");
                return;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            let feeds = match self.feeds(None).await {
                Ok(feeds) => feeds,
                Err(error) => {
                    warn!(%error, "feed sources unreadable");
                    continue;
                }
            };
            let now = unix_now();
            for RegisteredFeed { county, name, source, .. } in feeds.into_iter().filter(|f| f.state.next_poll <= now) {
                let Some(state) = self.claim_poll(&county, &name, now, timeout).await else { continue };
                let state = self.poll_one(&client, &county, &source, state).await;
                if state.consecutive_failures > 0 {
                    warn!(%county, feed = %name, failures = state.consecutive_failures, error = ?state.last_error, "feed poll failed");
                }
                if let Ok(bytes) = serde_json::to_vec(&state) {
                    let key = format!("{STATE_KEY}{county}.{name}");
                    // Only while the feed is still registered: a deleted feed stays deleted.
                    if matches!(self.inner.feeds.get(Self::feed_key(&county, &name)).await, Ok(Some(_))) {
                        let _ = self.inner.feeds.put(key, bytes.into()).await;
                    }
                }
            }
        }
    }

    /// Claims a due poll for this process: moves the feed's next poll past the fetch's timeout
    /// by compare-and-set, so that of several ingest replicas exactly one fetches it, and another
    /// takes it over if that one dies mid-fetch. The state as it was, if the claim is this
    /// process's.
    async fn claim_poll(&self, county: &str, name: &str, now: u64, timeout: Duration) -> Option<FeedState> {
        let key = format!("{STATE_KEY}{county}.{name}");
        let entry = self.inner.feeds.entry(key.as_str()).await.ok()?;
        let (state, revision) = match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                (serde_json::from_slice::<FeedState>(&entry.value).unwrap_or_default(), entry.revision)
            }
            _ => (FeedState::default(), 0),
        };
        if state.next_poll > now {
            return None;
        }
        let claimed = FeedState { next_poll: now + timeout.as_secs() + 1, ..state.clone() };
        let bytes = serde_json::to_vec(&claimed).ok()?;
        let won = if revision == 0 {
            self.inner.feeds.create(&key, bytes.into()).await.is_ok()
        } else {
            self.inner.feeds.update(&key, bytes.into(), revision).await.is_ok()
        };
        won.then_some(state)
    }

    async fn poll_one(
        &self,
        client: &reqwest::Client,
        county: &str,
        source: &FeedSource,
        mut state: FeedState,
    ) -> FeedState {
        let now = unix_now();
        state.last_polled = now;
        match self.fetch_and_ingest(client, county, source, &mut state).await {
            Ok(()) => {
                state.consecutive_failures = 0;
                state.last_error = None;
                state.next_poll = now + source.interval_secs;
            }
            Err(reason) => {
                state.consecutive_failures += 1;
                state.last_error = Some(reason);
                let backoff = Duration::from_secs(source.interval_secs)
                    .saturating_mul(2u32.saturating_pow(state.consecutive_failures.min(16)))
                    .min(MAX_BACKOFF);
                state.next_poll = now + backoff.as_secs();
            }
        }
        state
    }

    async fn fetch_and_ingest(
        &self,
        client: &reqwest::Client,
        county: &str,
        source: &FeedSource,
        state: &mut FeedState,
    ) -> std::result::Result<(), String> {
        // The URL itself; the resolver and the redirect policy check every address after it.
        self.inner.egress.check_url(&source.url).map_err(|e| e.to_string())?;
        let mut request = client.get(&source.url);
        if let Some(etag) = &state.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &state.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
        }
        let response = request.send().await.map_err(|e| format!("fetch failed: {}", bashu_bus::error_chain(&e)))?;
        state.last_status = response.status().as_u16();
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(());
        }
        if !response.status().is_success() {
            return Err(format!("the feed answered HTTP {}", response.status()));
        }
        let header = |name| {
            response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_owned)
        };
        let (etag, modified) = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            body.extend_from_slice(&chunk.map_err(|e| format!("read failed: {e}"))?);
            if body.len() > MAX_FEED_BYTES {
                return Err(format!("the feed is larger than {MAX_FEED_BYTES} bytes"));
            }
        }
        let feed = feed_rs::parser::parse(body.as_slice()).map_err(|e| format!("not an RSS or Atom feed: {e}"))?;
        for entry in &feed.entries {
            let story = item_story(county, source, entry);
            match self.already_accepted(&story).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => return Err(error.to_string()),
            }
            match self.submit(story, "feed").await {
                Ok(_) => state.items_ingested += 1,
                Err(error @ (Error::Invalid(_) | Error::Conflict { .. })) => {
                    let mut problems: Vec<String> =
                        error.fields().iter().map(|f| format!("{}: {}", f.field, f.reason)).collect();
                    if problems.is_empty() {
                        problems.push(error.to_string());
                    }
                    info!(%county, guid = %entry.id, ?problems, "feed item refused");
                    state.rejected_items.push(RejectedItem { guid: entry.id.clone(), problems, at: unix_now() });
                    let excess = state.rejected_items.len().saturating_sub(KEPT_PROBLEMS);
                    state.rejected_items.drain(..excess);
                }
                // The bus is away: leave the validators alone so the next poll fetches again.
                Err(error) => return Err(error.to_string()),
            }
        }
        state.etag = etag;
        state.last_modified = modified;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_keeps_its_story_id_across_polls() {
        let source = FeedSource {
            url: "https://example.cn/rss".into(),
            interval_secs: 60,
            category: "CATEGORY_LIVELIHOOD".into(),
            language: String::new(),
            sharing: None,
        };
        let feed = feed_rs::parser::parse(
            &br#"<rss version="2.0"><channel><title>t</title><item><guid>g-1</guid><title>A</title><description>B</description></item></channel></rss>"#[..],
        )
        .unwrap();
        let first = item_story("500101", &source, &feed.entries[0]);
        let second = item_story("500101", &source, &feed.entries[0]);
        assert_eq!(first.id, second.id);
        assert_eq!(first.headline, "A");
        assert_eq!(first.body, "B");
        assert!(first.sharing.unwrap().partners);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        #[test]
        fn any_bytes_parse_or_fail_cleanly(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
                                           item in "[<>/a-z\"= ]{0,200}") {
            let source = FeedSource { url: "https://e.cn/f".into(), interval_secs: 60, category: "CATEGORY_OTHER".into(), language: String::new(), sharing: None };
            let mut documents = vec![body];
            documents.push(format!("<rss version=\"2.0\"><channel><item>{item}</item></channel></rss>").into_bytes());
            documents.push(format!("<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>{item}</entry></feed>").into_bytes());
            for document in documents {
                if let Ok(feed) = feed_rs::parser::parse(document.as_slice()) {
                    for entry in &feed.entries {
                        let _ = item_story("500101", &source, entry);
                    }
                }
            }
        }
    }
}
