//! Who receives a story: the union of its sharing scopes, never its own county.

use std::collections::BTreeSet;

use bashu_proto::story::v1::Story;
use bashu_registry::{Counties, RegistrySnapshot};
use tracing::warn;

/// The GB/T 2260 codes of every county that receives `story`, in code order.
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
