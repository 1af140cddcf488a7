//! Who receives a story: the union of its sharing scopes, never its own county, filtered by each
//! county's subscription.

use std::collections::BTreeSet;

use bashu_proto::{registry::v1::Subscription, story::v1::Story};
use bashu_registry::{Counties, RegistrySnapshot};
use tracing::warn;

/// The GB/T 2260 codes of every county the sharing policy of `story` names, in code order.
pub fn resolve(story: &Story, counties: &Counties, graph: &RegistrySnapshot) -> BTreeSet<String> {
    let mut audience = BTreeSet::new();
    let Some(sharing) = &story.sharing else { return audience };
    let origin = story.origin_county.as_str();
    if sharing.partners {
        audience.extend(graph.partners_of(origin).map(str::to_owned));
    }
    for id in &sharing.alliances {
        match graph.alliance(id) {
            Some(alliance) => audience.extend(alliance.members.iter().cloned()),
            None => warn!(alliance = %id, story_id = %story.id, "story shared with an alliance that no longer exists"),
        }
    }
    if sharing.province {
        let province = counties.get(origin).map(|c| c.province_code.clone()).unwrap_or_default();
        if !province.is_empty() {
            audience.extend(counties.within(&province).map(|c| c.code.clone()));
        }
    }
    if sharing.region {
        audience.extend(counties.all().iter().map(|c| c.code.clone()));
    }
    audience.extend(sharing.counties.iter().filter(|c| counties.get(c).is_some()).cloned());
    audience.remove(origin);
    audience
}

/// Whether a county's subscription takes a new story (no subscription takes everything).
pub fn wants(subscription: Option<&Subscription>, story: &Story, counties: &Counties) -> bool {
    let Some(subscription) = subscription else { return true };
    let category_ok = subscription.categories.is_empty()
        || subscription.categories.iter().any(|c| c == story.category().as_str_name());
    let tag_ok = subscription.tags.is_empty() || story.tags.iter().any(|t| subscription.tags.contains(t));
    let province = counties.get(&story.origin_county).map(|c| c.province_code.as_str()).unwrap_or("");
    let origin_ok =
        subscription.origin_provinces.is_empty() || subscription.origin_provinces.iter().any(|p| p == province);
    category_ok && tag_ok && origin_ok
}

#[cfg(test)]
mod tests {
    use bashu_proto::story::v1::Category;

    use super::*;

    #[test]
    fn a_subscription_filters_by_category_tag_and_origin_province() {
        let counties = Counties::builtin().unwrap();
        let story = Story {
            origin_county: "511083".into(),
            category: Category::Emergency as i32,
            tags: vec!["防汛".into()],
            ..Default::default()
        };
        let subscription = |categories: &[&str], tags: &[&str], provinces: &[&str]| Subscription {
            county: "500153".into(),
            categories: categories.iter().map(|s| s.to_string()).collect(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            origin_provinces: provinces.iter().map(|s| s.to_string()).collect(),
        };
        assert!(wants(None, &story, &counties));
        assert!(wants(Some(&subscription(&[], &[], &[])), &story, &counties));
        assert!(wants(Some(&subscription(&["CATEGORY_EMERGENCY"], &["防汛"], &["51"])), &story, &counties));
        assert!(!wants(Some(&subscription(&["CATEGORY_POLICY"], &[], &[])), &story, &counties));
        assert!(!wants(Some(&subscription(&[], &["旅游"], &[])), &story, &counties));
        assert!(!wants(Some(&subscription(&[], &[], &["50"])), &story, &counties));
    }
}
