//! What the index holds. One document per story (its newest version, with every county it was
//! delivered to), a tombstone per killed story, and one document per use a county noted.

use bashu_proto::story::v1::{MediaReference, Story};
use bashu_registry::Counties;
use prost::Message as _;
use tantivy::{
    DateTime, TantivyDocument,
    schema::{
        FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
        TextOptions, Value,
    },
};

use crate::analyzer::ANALYZER;

/// What a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A story's newest version.
    Story,
    /// A killed story: nothing to find, but an older version arriving late must not bring it back.
    Kill,
    /// A county noted it used a story.
    Use,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Story => "story",
            Kind::Kill => "kill",
            Kind::Use => "use",
        }
    }
}

/// The fields, by name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// `<origin>.<id>` for stories and kills, `use.<county>.<origin>.<id>.<version>` for uses.
    pub(crate) key: Field,
    pub(crate) kind: Field,
    pub(crate) origin: Field,
    /// Every county that may find it: its origin and each county it was delivered to.
    pub(crate) visible_to: Field,
    pub(crate) headline: Field,
    pub(crate) summary: Field,
    pub(crate) body: Field,
    pub(crate) tags: Field,
    /// The newest version as protobuf, to answer with.
    pub(crate) story: Field,
    pub(crate) version: Field,
    /// When the newest version was delivered (stories), or the use noted (uses).
    pub(crate) at: Field,
    /// `/<province>/<prefecture>/<county>` of the origin.
    pub(crate) place: Field,
    /// `/<CATEGORY_…>`.
    pub(crate) category: Field,
    /// `/video`, `/image`, `/audio`, `/other`: the kinds of media it carries.
    pub(crate) media: Field,
    /// `/partners`, `/alliance`, `/province`, `/region`, `/counties`: how the origin shared it.
    pub(crate) sharing: Field,
    /// The county that used it (uses).
    pub(crate) user: Field,
    pub(crate) placement: Field,
    pub(crate) story_id: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Indexed with positions (phrases), not stored: the stored story carries the text, once.
    let chinese = || {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        TextOptions::default().set_indexing_options(indexing)
    };
    let fields = Fields {
        key: builder.add_text_field("key", STRING | STORED),
        kind: builder.add_text_field("kind", STRING),
        origin: builder.add_text_field("origin", STRING | STORED),
        visible_to: builder.add_text_field("visible_to", STRING | STORED),
        headline: builder.add_text_field("headline", chinese()),
        summary: builder.add_text_field("summary", chinese()),
        body: builder.add_text_field("body", chinese()),
        tags: builder.add_text_field("tags", chinese()),
        story: builder.add_bytes_field("story", STORED),
        version: builder.add_u64_field("version", STORED | INDEXED | FAST),
        at: builder.add_date_field("at", STORED | INDEXED | FAST),
        place: builder.add_facet_field("place", FacetOptions::default()),
        category: builder.add_facet_field("category", FacetOptions::default()),
        media: builder.add_facet_field("media", FacetOptions::default()),
        sharing: builder.add_facet_field("sharing", FacetOptions::default()),
        user: builder.add_text_field("user", STRING | STORED),
        placement: builder.add_text_field("placement", STORED),
        story_id: builder.add_text_field("story_id", STRING | STORED),
    };
    (builder.build(), fields)
}

/// `<origin>.<id>`: one document per story.
pub(crate) fn story_key(origin: &str, id: &str) -> String {
    format!("{origin}.{id}")
}

/// The kind of media a reference is, by its media type.
pub(crate) fn media_kind(media: &MediaReference) -> &'static str {
    match media.media_type.split('/').next().unwrap_or_default() {
        "video" => "video",
        "image" => "image",
        "audio" => "audio",
        _ => "other",
    }
}

/// How a story was shared, by scope: what the sharing facet and filter name.
pub(crate) fn sharing_scopes(story: &Story) -> Vec<&'static str> {
    let Some(sharing) = &story.sharing else { return Vec::new() };
    let mut scopes = Vec::new();
    if sharing.partners {
        scopes.push("partners");
    }
    if !sharing.alliances.is_empty() {
        scopes.push("alliance");
    }
    if sharing.province {
        scopes.push("province");
    }
    if sharing.region {
        scopes.push("region");
    }
    if !sharing.counties.is_empty() {
        scopes.push("counties");
    }
    scopes
}

/// The sharing scopes a search may filter by.
pub(crate) const SHARING_SCOPES: [&str; 5] = ["partners", "alliance", "province", "region", "counties"];

/// The origin's place as a facet: province, prefecture, county.
pub(crate) fn place_of(counties: &Counties, origin: &str) -> Facet {
    let province = origin.get(..2).unwrap_or("00");
    let prefecture = origin.get(..4).unwrap_or("0000");
    let county = counties.resolve(origin).map(|r| r.county.code.clone()).unwrap_or_else(|_| origin.to_owned());
    Facet::from_path([province, prefecture, county.as_str()])
}

impl Fields {
    /// A story's document: its newest version, findable by `visible_to`.
    pub(crate) fn story_document(
        &self,
        counties: &Counties,
        story: &Story,
        delivered_at: DateTime,
        visible_to: &[String],
    ) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, story_key(&story.origin_county, &story.id));
        doc.add_text(self.kind, Kind::Story.name());
        doc.add_text(self.origin, &story.origin_county);
        for county in visible_to {
            doc.add_text(self.visible_to, county);
        }
        doc.add_text(self.headline, &story.headline);
        doc.add_text(self.summary, &story.summary);
        doc.add_text(self.body, &story.body);
        for tag in &story.tags {
            doc.add_text(self.tags, tag);
        }
        doc.add_bytes(self.story, &story.encode_to_vec());
        doc.add_u64(self.version, u64::from(story.version));
        doc.add_date(self.at, delivered_at);
        doc.add_facet(self.place, place_of(counties, &story.origin_county));
        doc.add_facet(self.category, Facet::from_path([story.category().as_str_name()]));
        let mut kinds: Vec<&str> = story.media.iter().map(media_kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            doc.add_facet(self.media, Facet::from_path([kind]));
        }
        for scope in sharing_scopes(story) {
            doc.add_facet(self.sharing, Facet::from_path([scope]));
        }
        doc.add_text(self.story_id, &story.id);
        doc
    }

    /// A killed story's tombstone: the version that killed it and who had it.
    pub(crate) fn kill_document(&self, origin: &str, id: &str, version: u32, visible_to: &[String]) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, story_key(origin, id));
        doc.add_text(self.kind, Kind::Kill.name());
        doc.add_text(self.origin, origin);
        for county in visible_to {
            doc.add_text(self.visible_to, county);
        }
        doc.add_u64(self.version, u64::from(version));
        doc.add_text(self.story_id, id);
        doc
    }

    /// A stored value as text.
    pub(crate) fn text<'a>(&self, doc: &'a TantivyDocument, field: Field) -> &'a str {
        doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default()
    }

    /// Every stored value of a text field.
    pub(crate) fn texts(&self, doc: &TantivyDocument, field: Field) -> Vec<String> {
        doc.get_all(field).filter_map(|v| v.as_str().map(str::to_owned)).collect()
    }

    pub(crate) fn u64(&self, doc: &TantivyDocument, field: Field) -> u64 {
        doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or_default()
    }

    pub(crate) fn date(&self, doc: &TantivyDocument, field: Field) -> Option<DateTime> {
        doc.get_first(field).and_then(|v| v.as_datetime())
    }

    /// The stored story of a story document.
    pub(crate) fn stored_story(&self, doc: &TantivyDocument) -> Option<Story> {
        let bytes = doc.get_first(self.story).and_then(|v| v.as_bytes())?;
        Story::decode(bytes).ok()
    }
}
