//! The rules a story must meet, and its normalisation: old county codes become current ones,
//! and absent defaults (status, creation times) are filled in. A story without a language stays
//! without one: nobody may guess it for the origin.

use std::time::{Duration, SystemTime};

use bashu_proto::story::v1::{Category, CodeResolution, ContributionKind, PublicationStatus, Story};
use bashu_registry::{Counties, RegistrySnapshot};

use crate::FieldError;

const MAX_ID: usize = 128;
const MAX_HEADLINE: usize = 200;
const MAX_SUMMARY: usize = 2_000;
const MAX_BODY: usize = 200_000;
const MAX_SHORT_TEXT: usize = 200;
const MAX_TAGS: usize = 32;
const MAX_TAG: usize = 64;
const MAX_CODES: usize = 220;
const MAX_MEDIA: usize = 32;
const MAX_URI: usize = 2_048;
const MAX_FUTURE: Duration = Duration::from_secs(366 * 24 * 3600);

/// A valid story with its current codes, and which old codes were resolved.
pub(crate) struct Normalised {
    pub(crate) story: Story,
    pub(crate) resolved_codes: Vec<CodeResolution>,
}

struct Check<'a> {
    counties: &'a Counties,
    errors: Vec<FieldError>,
    resolved: Vec<CodeResolution>,
}

impl Check<'_> {
    fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    fn text(&mut self, field: &str, value: &str, max: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.fail(field, "required");
        } else if value.chars().count() > max {
            self.fail(field, format!("longer than {max} characters"));
        }
    }

    /// Replaces an old code by the current one and records it; refuses unknown codes.
    fn county(&mut self, field: String, code: &mut String) {
        match self.counties.resolve(code) {
            Ok(resolved) => {
                if let Some(old) = resolved.resolved_from {
                    self.resolved.push(CodeResolution {
                        field: field.clone(),
                        given: old.to_owned(),
                        resolved: resolved.county.code.clone(),
                    });
                }
                *code = resolved.county.code.clone();
            }
            Err(error) => self.fail(field, error.to_string()),
        }
    }

    fn counties_list(&mut self, field: &str, codes: &mut Vec<String>) {
        if codes.len() > MAX_CODES {
            self.fail(field, format!("more than {MAX_CODES} codes"));
            return;
        }
        for (i, code) in codes.iter_mut().enumerate() {
            self.county(format!("{field}[{i}]"), code);
        }
        let mut seen = std::collections::HashSet::new();
        codes.retain(|code| seen.insert(code.clone()));
    }
}

pub(crate) fn normalise(
    mut story: Story,
    counties: &Counties,
    sharing_graph: &RegistrySnapshot,
    now: SystemTime,
) -> Result<Normalised, Vec<FieldError>> {
    let mut check = Check { counties, errors: Vec::new(), resolved: Vec::new() };

    if story.id.is_empty() {
        check.fail("id", "required");
    } else if story.id.len() > MAX_ID || !story.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        check.fail("id", format!("1-{MAX_ID} of A-Z, a-z, 0-9, '.', '_' and '-'"));
    }
    if story.version == 0 {
        check.fail("version", "required: versions start at 1");
    }
    if story.origin_county.is_empty() {
        check.fail("originCounty", "required");
    } else {
        check.county("originCounty".into(), &mut story.origin_county);
    }
    check.text("headline", &story.headline, MAX_HEADLINE, true);
    check.text("summary", &story.summary, MAX_SUMMARY, false);
    check.text("body", &story.body, MAX_BODY, true);
    check.text("byline", &story.byline, MAX_SHORT_TEXT, false);

    if story.language.len() > 35 || !story.language.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        check.fail("language", "a BCP 47 tag such as zh-CN");
    }
    match Category::try_from(story.category) {
        Ok(Category::Unspecified) => check.fail("category", "required"),
        Ok(_) => {}
        Err(_) => check.fail("category", "unknown category"),
    }
    match PublicationStatus::try_from(story.status) {
        Ok(PublicationStatus::Unspecified) => story.status = PublicationStatus::Usable as i32,
        Ok(_) => {}
        Err(_) => check.fail("status", "unknown publication status"),
    }

    if story.tags.len() > MAX_TAGS {
        check.fail("tags", format!("more than {MAX_TAGS} tags"));
    }
    for (i, tag) in story.tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.chars().count() > MAX_TAG {
            check.fail(format!("tags[{i}]"), format!("1-{MAX_TAG} characters"));
        }
    }
    check.counties_list("countiesConcerned", &mut story.counties_concerned);

    if story.media.len() > MAX_MEDIA {
        check.fail("media", format!("more than {MAX_MEDIA} items"));
    }
    for (i, media) in story.media.iter().enumerate() {
        let scheme_ok = media.uri.starts_with("https://")
            || media.uri.starts_with("http://")
            || media.uri.starts_with("bashu-object:");
        if !scheme_ok || media.uri.len() > MAX_URI {
            check.fail(format!("media[{i}].uri"), format!("an http(s) URL of at most {MAX_URI} bytes"));
        }
    }
    if let Some(attribution) = &story.attribution {
        check.text("attribution.source", &attribution.source, MAX_SHORT_TEXT, false);
        check.text("attribution.originalAuthor", &attribution.original_author, MAX_SHORT_TEXT, false);
        check.text("attribution.responsibleEditor", &attribution.responsible_editor, MAX_SHORT_TEXT, false);
    }

    match story.sharing.as_mut() {
        None => check.fail("sharing", "required: say who the story is shared with"),
        Some(sharing) => {
            if !sharing.names_someone() {
                check.fail("sharing", "shared with nobody: set partners, alliances, province, region or counties");
            }
            for (i, alliance) in sharing.alliances.iter().enumerate() {
                if sharing_graph.alliance(alliance).is_none() {
                    check.fail(format!("sharing.alliances[{i}]"), format!("no alliance {alliance:?}"));
                }
            }
            check.counties_list("sharing.counties", &mut sharing.counties);
        }
    }

    if let Some(coverage) = &story.coverage {
        if let Some(reason) = bashu_coverage_core::plan_id_problem(&coverage.plan_id) {
            check.fail("coverage.planId", reason);
        }
        if coverage.phase.is_empty() {
            check.fail("coverage.phase", "required: the plan's phase this story belongs to");
        }
        match ContributionKind::try_from(coverage.kind) {
            Ok(ContributionKind::Unspecified) => {
                check.fail("coverage.kind", "required: text, photo, video, audio, live or h5")
            }
            Ok(_) => {}
            Err(_) => check.fail("coverage.kind", "unknown contribution kind"),
        }
    }

    let time = |t: &Option<bashu_proto::Timestamp>| t.as_ref().map(bashu_proto::time::to_system_time);
    let received = Some(bashu_proto::time::from_system_time(now));
    if story.created_at.is_none() {
        story.created_at = received;
    }
    let version_created_given = story.version_created_at.is_some();
    for (field, value) in [
        ("createdAt", time(&story.created_at)),
        ("versionCreatedAt", time(&story.version_created_at).filter(|_| version_created_given)),
        ("embargoUntil", time(&story.embargo_until)),
        ("expiresAt", time(&story.expires_at)),
    ] {
        match value {
            Some(None) => check.fail(field, "not a valid time"),
            Some(Some(t)) if t > now + MAX_FUTURE => check.fail(field, "more than a year in the future"),
            _ => {}
        }
    }
    if !version_created_given {
        story.version_created_at = if story.version == 1 { story.created_at } else { received };
    }
    if let (Some(Some(embargo)), Some(Some(expiry))) = (time(&story.embargo_until), time(&story.expires_at))
        && embargo >= expiry
    {
        check.fail("embargoUntil", "must be before expiresAt");
    }
    if let Some(Some(expiry)) = time(&story.expires_at)
        && expiry <= now
    {
        check.fail("expiresAt", "already past");
    }

    if check.errors.is_empty() { Ok(Normalised { story, resolved_codes: check.resolved }) } else { Err(check.errors) }
}

#[cfg(test)]
mod tests {
    use bashu_proto::story::v1::SharingPolicy;

    use super::*;

    fn story() -> Story {
        Story {
            id: "lc-2026-001".into(),
            version: 1,
            origin_county: "511083".into(),
            headline: "隆昌荣昌联合采访".into(),
            body: "正文".into(),
            category: Category::Policy as i32,
            sharing: Some(SharingPolicy { partners: true, ..Default::default() }),
            ..Default::default()
        }
    }

    fn fields(result: Result<Normalised, Vec<FieldError>>) -> Vec<String> {
        result.err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_good_story_gets_defaults() {
        let counties = Counties::builtin().unwrap();
        let normalised = normalise(story(), &counties, &RegistrySnapshot::default(), SystemTime::now()).ok().unwrap();
        assert_eq!(normalised.story.language, "", "nobody guesses the origin's language");
        assert_eq!(normalised.story.status, PublicationStatus::Usable as i32);
        assert!(normalised.story.created_at.is_some());
    }

    #[test]
    fn old_codes_resolve_and_are_reported() {
        let counties = Counties::builtin().unwrap();
        let mut s = story();
        s.origin_county = "511028".into();
        s.counties_concerned = vec!["500112".into(), "500105".into()];
        let n = normalise(s, &counties, &RegistrySnapshot::default(), SystemTime::now()).ok().unwrap();
        assert_eq!(n.story.origin_county, "511083");
        assert_eq!(n.story.counties_concerned, vec!["500157".to_string()]);
        assert_eq!(n.resolved_codes.len(), 3);
        assert_eq!(n.resolved_codes[0].field, "originCounty");
    }

    #[test]
    fn every_problem_is_named() {
        let counties = Counties::builtin().unwrap();
        let mut s = story();
        s.id = "has space".into();
        s.headline.clear();
        s.category = 0;
        s.counties_concerned = vec!["999999".into()];
        s.sharing = Some(SharingPolicy { alliances: vec!["nope".into()], ..Default::default() });
        let got = fields(normalise(s, &counties, &RegistrySnapshot::default(), SystemTime::now()));
        assert_eq!(got, ["id", "headline", "category", "countiesConcerned[0]", "sharing.alliances[0]"]);
    }

    #[test]
    fn times_must_be_sane() {
        let counties = Counties::builtin().unwrap();
        let now = SystemTime::now();
        let at = |offset: i64| {
            Some(bashu_proto::Timestamp {
                seconds: bashu_proto::time::from_system_time(now).seconds + offset,
                nanos: 0,
            })
        };
        let mut s = story();
        s.embargo_until = at(7200);
        s.expires_at = at(3600);
        assert_eq!(fields(normalise(s, &counties, &RegistrySnapshot::default(), now)), ["embargoUntil"]);
        let mut s = story();
        s.expires_at = at(-10);
        assert_eq!(fields(normalise(s, &counties, &RegistrySnapshot::default(), now)), ["expiresAt"]);
        let mut s = story();
        s.created_at = at(400 * 24 * 3600);
        assert_eq!(fields(normalise(s, &counties, &RegistrySnapshot::default(), now)), ["createdAt"]);
    }
}
