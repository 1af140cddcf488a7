//! The story distribution domain's contract, shared by the distribution service and the admin
//! API so that neither imports the other: how the distribution bucket is keyed (a story's record,
//! its held versions) and the takedowns read model.

mod takedowns;

pub use takedowns::TakedownBoard;

/// `<origin>.<id>`: what identifies a story across its versions, and orders them.
pub fn story_key(origin: &str, id: &str) -> String {
    format!("{origin}.{id}")
}

/// The key of a story's distribution record: `story.<origin>.<id>`.
pub fn record_key(origin: &str, id: &str) -> String {
    format!("{RECORD_PREFIX}{}", story_key(origin, id))
}

/// What every record key starts with.
pub const RECORD_PREFIX: &str = "story.";

/// What every held version's marker key starts with.
pub const HELD_PREFIX: &str = "held.";

/// The marker of one held version: `held.<origin>.<id>.<version>`.
pub fn held_key(origin: &str, id: &str, version: u32) -> String {
    format!("{HELD_PREFIX}{}", bashu_proto::story::v1::version_key(origin, id, version))
}

/// `held.<origin>.<id>.<version>` → (`<origin>.<id>`, version).
pub fn parse_held_key(key: &str) -> Option<(String, u32)> {
    let (story, version) = key.strip_prefix(HELD_PREFIX)?.rsplit_once('.')?;
    Some((story.to_owned(), version.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_held_key_names_its_story_and_version() {
        let key = super::held_key("510703", "a-b_c", 12);
        assert_eq!(key, "held.510703.a-b_c.12");
        assert_eq!(super::parse_held_key(&key), Some(("510703.a-b_c".into(), 12)));
        assert_eq!(super::parse_held_key("held.510703.x"), None);
    }
}
