//! A story as IPTC ninjs 3 JSON, with the Bashu profile's fields (origin county, GB/T 2260 codes,
//! 来源/原作者/责任编辑, sharing and rights, the receiving county) under `bashu`, for webhooks.
//! The ingest issue validates this rendering against the official ninjs 3.2 schema and the
//! published Bashu profile schema.

use bashu_proto::story::v1::{PublicationStatus, StoryDelivery};
use serde_json::{Value, json};

fn time(t: &Option<bashu_proto::Timestamp>) -> Value {
    t.map(|t| serde_json::to_value(t).unwrap_or(Value::Null)).unwrap_or(Value::Null)
}

/// The ninjs document of one delivery.
pub fn render(delivery: &StoryDelivery) -> Value {
    let story = delivery.story.clone().unwrap_or_default();
    let attribution = story.attribution.clone().unwrap_or_default();
    let sharing = story.sharing.clone().unwrap_or_default();
    let pubstatus = match story.status() {
        PublicationStatus::Withheld => "withheld",
        PublicationStatus::Canceled => "canceled",
        _ => "usable",
    };
    let mut document = json!({
        "uri": format!("urn:bashu:story:{}:{}", story.origin_county, story.id),
        "type": "text",
        "version": story.version.to_string(),
        "firstcreated": time(&story.created_at),
        "versioncreated": time(&story.created_at),
        "pubstatus": pubstatus,
        "language": story.language,
        "headlines": [{"value": story.headline}],
        "bodies": [{"value": story.body, "contenttype": "text/plain"}],
        "subjects": [{"name": story.category().as_str_name(), "uri": format!("urn:bashu:category:{}", story.category().as_str_name())}],
        "keywords": story.tags,
        "bashu": {
            "originCounty": story.origin_county,
            "receivingCounty": delivery.county,
            "countiesConcerned": story.counties_concerned,
            "attribution": {
                "source": attribution.source,
                "originalAuthor": attribution.original_author,
                "responsibleEditor": attribution.responsible_editor,
            },
            "review": delivery.approvals.iter().map(|a| json!({"reviewer": a.reviewer, "level": a.level, "at": time(&a.at)})).collect::<Vec<_>>(),
            "rights": {
                "attributionRequired": sharing.attribution_required,
                "editsAllowed": sharing.edits_allowed,
                "usableUntil": time(&story.expires_at),
            },
        },
    });
    let object = document.as_object_mut().expect("an object");
    if !story.summary.is_empty() {
        object.insert("descriptions".into(), json!([{"value": story.summary}]));
    }
    if !story.byline.is_empty() {
        object.insert("bylines".into(), json!([{"byline": story.byline}]));
    }
    if story.embargo_until.is_some() {
        object.insert("embargoed".into(), time(&story.embargo_until));
    }
    if !attribution.source.is_empty() {
        object.insert("infosources".into(), json!([{"name": attribution.source, "role": "originating"}]));
    }
    document
}
