//! `Story` ↔ ninjs 3.2 in the Bashu profile. The table of which ninjs property carries which
//! `Story` field is in docs/ingest-ninjs.md; both directions follow it.

use bashu_proto::{
    Timestamp,
    story::v1::{
        Attribution, Category, ContributionKind, CoverageRef, MediaReference, PublicationStatus, ReviewApproval,
        SharingPolicy, Story,
    },
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::schema::{PROFILE_URI, Problem, validate_official};

const STORY_URN: &str = "urn:bashu:story:";
const CATEGORY_URN: &str = "urn:bashu:category:";
const COUNTY_URN: &str = "urn:bashu:gbt2260:";
const SHARING_LANG: &str = "urn:bashu:sharing-policy:1";
const COVERAGE_URN: &str = "urn:bashu:coverage:";

/// What a delivery adds to a story's rendering: the receiving county and the review record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delivery<'a> {
    /// The county this copy is for.
    pub receiving_county: &'a str,
    /// Who approved it at which review level.
    pub approvals: &'a [ReviewApproval],
}

fn time(t: Option<Timestamp>) -> Option<Value> {
    t.and_then(|t| serde_json::to_value(t).ok())
}

fn media_kind(media_type: &str) -> &'static str {
    match media_type.split('/').next().unwrap_or("") {
        "image" => "picture",
        "video" => "video",
        "audio" => "audio",
        _ => "component",
    }
}

/// A package of stories as one ninjs 3.2 item of type `composite`, its `associations` the
/// stories in order (each rendered as [`story_to_ninjs`] for `receiving_county`, named
/// `item-<n>`, relation `bashu:package-item`): a joint coverage plan's channel (专题) for a
/// website. `uri` names the package, `version` grows when it changes.
pub fn package_to_ninjs(
    uri: &str,
    version: u64,
    headline: &str,
    summary: &str,
    stories: &[Story],
    receiving_county: &str,
    created: Timestamp,
) -> Value {
    let associations: Vec<Value> = stories
        .iter()
        .enumerate()
        .map(|(i, story)| {
            let delivery = Delivery { receiving_county, approvals: &[] };
            let mut item = story_to_ninjs(story, Some(delivery));
            if let Value::Object(map) = &mut item {
                map.insert("name".into(), json!(format!("item-{}", i + 1)));
                map.insert("rel".into(), json!("bashu:package-item"));
            }
            item
        })
        .collect();
    let mut document = json!({
        "uri": uri,
        "standard": {"name": "ninjs", "version": "3.2"},
        "type": "composite",
        "version": version.to_string(),
        "versionCreated": time(Some(created)).unwrap_or_else(|| json!("1970-01-01T00:00:00Z")),
        "pubStatus": "usable",
        "headlines": [{"role": "main", "value": headline}],
        "associations": associations,
    });
    if !summary.is_empty() {
        document["descriptions"] = json!([{"role": "summary", "value": summary}]);
    }
    document
}

/// Renders a story as ninjs 3.2 in the Bashu profile.
pub fn story_to_ninjs(story: &Story, delivery: Option<Delivery<'_>>) -> Value {
    let attribution = story.attribution.clone().unwrap_or_default();
    let sharing = story.sharing.clone().unwrap_or_default();
    let pub_status = match story.status() {
        PublicationStatus::Withheld => "withheld",
        PublicationStatus::Canceled => "canceled",
        _ => "usable",
    };
    let created = time(story.created_at).unwrap_or_else(|| json!("1970-01-01T00:00:00Z"));
    let mut document = Map::new();
    let mut put = |key: &str, value: Value| {
        document.insert(key.to_owned(), value);
    };
    put("uri", json!(format!("{STORY_URN}{}:{}", story.origin_county, story.id)));
    put("standard", json!({"name": "ninjs", "version": "3.2", "schema": PROFILE_URI}));
    put("type", json!("text"));
    put("version", json!(story.version.to_string()));
    put("versionCreated", time(story.version_created_at).unwrap_or_else(|| created.clone()));
    put("firstCreated", created);
    if let Some(embargo) = time(story.embargo_until) {
        put("embargoedUntil", embargo);
    }
    if let Some(expires) = time(story.expires_at) {
        put("expires", expires);
    }
    put("pubStatus", json!(pub_status));
    // A story that did not say its language is not given one.
    if !story.language.is_empty() {
        put("language", json!(story.language));
    }
    put("headlines", json!([{"role": "main", "value": story.headline}]));
    put("bodies", json!([{"role": "main", "contentType": "text/plain", "value": story.body}]));
    if !story.byline.is_empty() {
        put("by", json!(story.byline));
    }

    let mut descriptions = Vec::new();
    if !story.summary.is_empty() {
        descriptions.push(json!({"role": "summary", "value": story.summary}));
    }
    let mut alt_ids = vec![json!({"role": "bashu:origin-county", "value": story.origin_county})];
    if let Some(delivery) = delivery {
        alt_ids.push(json!({"role": "bashu:receiving-county", "value": delivery.receiving_county}));
        if !delivery.approvals.is_empty() {
            let record: Vec<Value> = delivery
                .approvals
                .iter()
                .map(|a| json!({"reviewer": a.reviewer, "level": a.level, "at": time(a.at)}))
                .collect();
            descriptions.push(json!({
                "role": "bashu:review",
                "contentType": "application/json",
                "value": Value::Array(record).to_string(),
            }));
        }
    }
    if !descriptions.is_empty() {
        put("descriptions", Value::Array(descriptions));
    }
    put("altIds", Value::Array(alt_ids));

    let category = story.category().as_str_name();
    let mut subjects =
        vec![json!({"rel": "bashu:category", "name": category, "uri": format!("{CATEGORY_URN}{category}")})];
    subjects.extend(story.tags.iter().map(|tag| json!({"rel": "bashu:tag", "literal": tag})));
    put("subjects", Value::Array(subjects));

    if !story.counties_concerned.is_empty() {
        let places = story
            .counties_concerned
            .iter()
            .map(|code| json!({"rel": "bashu:concerned", "uri": format!("{COUNTY_URN}{code}"), "literal": code}))
            .collect();
        put("places", Value::Array(places));
    }

    let sources: Vec<Value> = [
        ("bashu:source", &attribution.source),
        ("bashu:original-author", &attribution.original_author),
        ("bashu:responsible-editor", &attribution.responsible_editor),
    ]
    .into_iter()
    .filter(|(_, name)| !name.is_empty())
    .map(|(role, name)| json!({"role": role, "name": name}))
    .collect();
    if !sources.is_empty() {
        put("infoSources", Value::Array(sources));
    }

    if let Some(coverage) = &story.coverage {
        let kind = coverage.kind().short_name();
        put(
            "events",
            json!([{
                "rel": "bashu:coverage",
                "uri": format!("{COVERAGE_URN}{}:{}:{kind}", coverage.plan_id, coverage.phase),
                "name": format!("{} / {}", coverage.plan_id, coverage.phase),
            }]),
        );
    }

    let encoded = serde_json::to_string(&sharing).unwrap_or_else(|_| "{}".into());
    put("rightsInfo", json!({"langId": SHARING_LANG, "encodedRights": encoded}));

    if !story.media.is_empty() {
        let associations = story
            .media
            .iter()
            .enumerate()
            .map(|(i, media)| {
                let mut rendition = json!({"name": "original", "href": media.uri, "contentType": media.media_type});
                if media.size_bytes > 0 {
                    rendition["sizeInBytes"] = json!(media.size_bytes);
                }
                let mut association = json!({
                    "uri": format!("{STORY_URN}{}:{}:media:{i}", story.origin_county, story.id),
                    "name": if media.caption.is_empty() { format!("media {}", i + 1) } else { media.caption.clone() },
                    "rel": "bashu:media",
                    "type": media_kind(&media.media_type),
                    "renditions": [rendition],
                });
                if !media.caption.is_empty() {
                    association["descriptions"] = json!([{"role": "caption", "value": media.caption}]);
                }
                if !media.sha256.is_empty() {
                    association["altIds"] = json!([{"role": "sha256", "value": media.sha256}]);
                }
                association
            })
            .collect();
        put("associations", Value::Array(associations));
    }
    Value::Object(document)
}

struct Reader<'a> {
    document: &'a Value,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), reason: reason.into() });
    }

    fn str(&self, key: &str) -> &'a str {
        self.document.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn array(&self, key: &str) -> impl Iterator<Item = (usize, &'a Value)> + use<'a> {
        self.document.get(key).and_then(Value::as_array).into_iter().flatten().enumerate()
    }

    /// The `value` of the first item of `key` whose `role` is `wanted`, else of the first item
    /// without a role (plain ninjs from a county's CMS rarely sets roles).
    fn by_role(&self, key: &str, wanted: &str) -> Option<&'a str> {
        let role = |item: &Value| item.get("role").and_then(Value::as_str).map(str::to_owned);
        let value = |item: &'a Value| item.get("value").and_then(Value::as_str);
        let items: Vec<&'a Value> = self.array(key).map(|(_, item)| item).collect();
        items
            .iter()
            .find(|item| role(item).as_deref() == Some(wanted))
            .or_else(|| items.iter().find(|item| role(item).is_none()))
            .and_then(|item| value(item))
    }

    /// The headline: role `main`, else the first headline, else the document's `title` (events
    /// and planning items have a title and no headline), else its `slugline`.
    fn headline(&self) -> Option<String> {
        let first = self.array("headlines").find_map(|(_, h)| h.get("value").and_then(Value::as_str));
        self.by_role("headlines", "main")
            .or(first)
            .or_else(|| self.document.get("title")?.as_str())
            .or_else(|| self.document.get("slugline")?.as_str())
            .filter(|headline| !headline.trim().is_empty())
            .map(str::to_owned)
    }

    /// The plain-text body: role `main` or `text` in plain text, else the text of the first HTML,
    /// XHTML or NITF body, else (a picture, a video, an event) the first text description.
    fn body(&self) -> String {
        let bodies: Vec<&'a Value> = self.array("bodies").map(|(_, b)| b).collect();
        let field = |item: &'a Value, key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
        let plain = |item: &&'a Value| {
            let kind = field(item, "contentType").to_ascii_lowercase();
            (kind.is_empty() || kind.starts_with("text/plain")) && !is_markup_role(field(item, "role"))
        };
        let main = bodies.iter().find(|b| field(b, "role") == "main" && plain(b));
        let text = bodies.iter().find(|b| field(b, "role") == "text" && plain(b));
        if let Some(body) = main.or(text).or_else(|| bodies.iter().find(|b| plain(b))) {
            return field(body, "value").to_owned();
        }
        if let Some(body) = bodies.first() {
            return text_of_markup(field(body, "value"));
        }
        let descriptions: Vec<&'a Value> =
            self.array("descriptions").map(|(_, d)| d).filter(|d| field(d, "role") != "bashu:review").collect();
        descriptions
            .iter()
            .find(|d| field(d, "role") != "summary")
            .or(descriptions.first())
            .map(|d| field(d, "value").to_owned())
            .unwrap_or_default()
    }

    /// The story version. A Bashu document (its `uri` names a Bashu story) carries Bashu's own
    /// version. A plain document's version is its publisher's count, which starts at 0 or 1 as the
    /// publisher chose: its version `n` is Bashu version `n + 1`, so no version is refused and the
    /// publisher's order is kept. No version at all is the first.
    fn version(&mut self, bashu_document: bool) -> u32 {
        let Some(text) = self.document.get("version").and_then(Value::as_str) else { return 1 };
        let parsed = text.trim().parse::<u32>().ok();
        match parsed {
            Some(version) if bashu_document && version >= 1 => version,
            Some(version) if !bashu_document && version < u32::MAX => version + 1,
            _ => {
                let expected = if bashu_document {
                    "a positive whole number, such as \"2\""
                } else {
                    "a whole number, such as \"0\" or \"2\""
                };
                self.fail("/version", expected);
                0
            }
        }
    }

    fn time(&mut self, key: &str) -> Option<Timestamp> {
        let text = self.document.get(key)?.as_str()?;
        match serde_json::from_value::<Timestamp>(Value::String(text.to_owned())) {
            Ok(t) => Some(t),
            Err(_) => {
                self.fail(format!("/{key}"), "not an RFC 3339 date-time such as 2026-11-28T08:00:00+08:00");
                None
            }
        }
    }
}

/// How much of a body's first line names a story that has no headline.
const HEADLINE_FROM_BODY: usize = 80;

fn first_line(text: &str, at_most: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= at_most {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(at_most - 1).collect();
    cut.push('…');
    cut
}

/// Roles IPTC's examples give bodies written in markup, whatever their content type says.
fn is_markup_role(role: &str) -> bool {
    matches!(role, "html" | "html5" | "richhtml5" | "xhtml" | "richtext" | "nitf" | "ttnitf")
}

/// The text of an HTML, XHTML or NITF body: paragraphs on lines of their own, no markup, links
/// and images without footnotes. Never wrapped: the receiving system lays the text out.
fn text_of_markup(markup: &str) -> String {
    let text = html2text::config::plain_no_decorate()
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(markup.as_bytes(), 1 << 20)
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

/// Maps a ninjs 3.x document to a `Story`: validated against the official schema first, then
/// read by the profile's conventions, with plain ninjs accepted where a convention is absent.
/// `origin` is the submitting county, used when the document does not name its origin.
pub fn story_from_ninjs(document: &Value, origin: &str) -> Result<Story, Vec<Problem>> {
    validate_official(document)?;
    let mut reader = Reader { document, problems: Vec::new() };
    let mut story = Story::default();

    let uri = reader.str("uri");
    let named = uri.strip_prefix(STORY_URN).and_then(|rest| rest.split_once(':'));
    match named {
        Some((county, id)) => {
            story.origin_county = county.to_owned();
            story.id = id.to_owned();
        }
        // A stable id for any other URI: the same document always maps to the same story.
        None => story.id = format!("ninjs-{}", &hex::encode(Sha256::digest(uri.as_bytes()))[..32]),
    }
    for (i, alt) in reader.array("altIds") {
        let role = alt.get("role").and_then(Value::as_str);
        let value = alt.get("value").and_then(Value::as_str).unwrap_or("");
        if role == Some("bashu:origin-county") {
            if !story.origin_county.is_empty() && story.origin_county != value {
                reader.fail(format!("/altIds/{i}/value"), "differs from the county in the uri");
            }
            story.origin_county = value.to_owned();
        }
    }
    if story.origin_county.is_empty() {
        story.origin_county = origin.to_owned();
    }

    story.version = reader.version(named.is_some());
    // A document with no text beside its headline (an event, a picture) carries its headline as
    // its body, and one with no headline is named by the start of its text.
    let body = reader.body();
    story.headline = reader.headline().unwrap_or_else(|| first_line(&body, HEADLINE_FROM_BODY));
    story.body = if body.trim().is_empty() { story.headline.clone() } else { body };
    story.summary = reader.by_role("descriptions", "summary").unwrap_or("").to_owned();
    story.language = reader.str("language").to_owned();
    story.byline = reader.str("by").to_owned();
    story.version_created_at = reader.time("versionCreated");
    story.created_at = reader.time("firstCreated").or(story.version_created_at);
    story.embargo_until = reader.time("embargoedUntil");
    story.expires_at = reader.time("expires");
    story.status = match reader.str("pubStatus") {
        "withheld" => PublicationStatus::Withheld,
        "canceled" => PublicationStatus::Canceled,
        _ => PublicationStatus::Usable,
    } as i32;

    for (i, subject) in reader.array("subjects") {
        let rel = subject.get("rel").and_then(Value::as_str);
        if rel == Some("bashu:category") {
            let uri = subject.get("uri").and_then(Value::as_str).unwrap_or("");
            match uri.strip_prefix(CATEGORY_URN).and_then(Category::from_str_name) {
                Some(category) => story.category = category as i32,
                None => {
                    reader.fail(format!("/subjects/{i}/uri"), "not a Bashu category (urn:bashu:category:CATEGORY_…)")
                }
            }
        } else if rel == Some("bashu:tag") {
            let tag = subject.get("literal").or_else(|| subject.get("name")).and_then(Value::as_str);
            story.tags.extend(tag.map(str::to_owned));
        }
    }
    for (_, place) in reader.array("places") {
        if place.get("rel").and_then(Value::as_str) == Some("bashu:concerned") {
            let code = place.get("literal").and_then(Value::as_str).map(str::to_owned).or_else(|| {
                place.get("uri").and_then(Value::as_str).and_then(|u| u.strip_prefix(COUNTY_URN)).map(str::to_owned)
            });
            story.counties_concerned.extend(code);
        }
    }
    let mut attribution = Attribution::default();
    for (_, source) in reader.array("infoSources") {
        let name = source.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
        match source.get("role").and_then(Value::as_str) {
            Some("bashu:source") => attribution.source = name,
            Some("bashu:original-author") => attribution.original_author = name,
            Some("bashu:responsible-editor") => attribution.responsible_editor = name,
            _ => {}
        }
    }
    if attribution != Attribution::default() {
        story.attribution = Some(attribution);
    }
    if let Some(rights) = reader.document.get("rightsInfo")
        && rights.get("langId").and_then(Value::as_str) == Some(SHARING_LANG)
    {
        let encoded = rights.get("encodedRights").and_then(Value::as_str).unwrap_or("");
        match serde_json::from_str::<SharingPolicy>(encoded) {
            Ok(policy) => story.sharing = Some(policy),
            Err(error) => reader.fail("/rightsInfo/encodedRights", format!("not a Bashu sharing policy: {error}")),
        }
    }
    for (i, event) in reader.array("events") {
        if event.get("rel").and_then(Value::as_str) != Some("bashu:coverage") {
            continue;
        }
        let uri = event.get("uri").and_then(Value::as_str).unwrap_or("");
        let parts: Vec<&str> = uri.strip_prefix(COVERAGE_URN).map(|rest| rest.split(':').collect()).unwrap_or_default();
        let kind = parts.get(2).and_then(|k| ContributionKind::from_short_name(k));
        match (parts.as_slice(), kind) {
            ([plan, phase, _], Some(kind)) if story.coverage.is_none() => {
                story.coverage =
                    Some(CoverageRef { plan_id: (*plan).into(), phase: (*phase).into(), kind: kind as i32 });
            }
            ([_, _, _], Some(_)) => reader.fail(format!("/events/{i}"), "a story belongs to one coverage plan at most"),
            _ => reader.fail(
                format!("/events/{i}/uri"),
                "urn:bashu:coverage:<plan>:<phase>:<kind>, kind one of text, photo, video, audio, live, h5",
            ),
        }
    }
    for (i, association) in reader.array("associations") {
        if association.get("rel").and_then(Value::as_str) != Some("bashu:media") {
            continue;
        }
        let Some(rendition) = association.pointer("/renditions/0") else {
            reader.fail(format!("/associations/{i}/renditions"), "a media association needs one rendition");
            continue;
        };
        let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_owned();
        let caption = association
            .get("descriptions")
            .and_then(Value::as_array)
            .and_then(|all| all.iter().find(|d| d.get("role").and_then(Value::as_str) == Some("caption")))
            .map(|d| text(d.get("value")))
            .unwrap_or_default();
        let sha256 = association
            .get("altIds")
            .and_then(Value::as_array)
            .and_then(|all| all.iter().find(|a| a.get("role").and_then(Value::as_str) == Some("sha256")))
            .map(|a| text(a.get("value")))
            .unwrap_or_default();
        story.media.push(MediaReference {
            uri: text(rendition.get("href")),
            media_type: text(rendition.get("contentType")),
            caption,
            sha256,
            size_bytes: rendition.get("sizeInBytes").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    if reader.problems.is_empty() { Ok(story) } else { Err(reader.problems) }
}
