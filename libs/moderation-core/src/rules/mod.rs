//! The automatic rules, evaluated in order, each outcome recorded: the sensitive-term lexicon,
//! required fields per category, length limits, embargo and expiry sanity, the categories a
//! county may submit, and near-duplicates of stories other counties shared.

mod lexicon;
mod normalise;
pub mod simhash;
mod window;

use std::{collections::BTreeMap, time::SystemTime};

use bashu_proto::story::v1::{RuleOutcome, Story, Verdict};
use serde::Deserialize;

pub use lexicon::{Action, Hit, Lexicon, Term};
pub use normalise::fold;
pub use window::{Earlier, Window};

/// Near-duplicate settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearDuplicateConfig {
    /// At most this many differing fingerprint bits make a near-duplicate.
    pub max_distance: u32,
    /// How far back earlier stories are compared, in hours.
    pub window_hours: u64,
    /// What a near-duplicate does.
    pub action: Action,
}

impl Default for NearDuplicateConfig {
    fn default() -> Self {
        // Over character 3-shingles of a few hundred characters, one changed word or a new
        // headline moves about 4 bits and unrelated stories sit near 32; two random fingerprints
        // fall within 8 bits with a probability of about 1e-10.
        Self { max_distance: 8, window_hours: 72, action: Action::Hold }
    }
}

/// The rules of a deployment (a JSON file; see docs/moderation.md).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Sensitive terms.
    pub lexicon: Vec<Term>,
    /// Fields a story of a category must have: category name → field names (`summary`,
    /// `byline`, `tags`, `countiesConcerned`, `media`, `attribution.source`,
    /// `attribution.originalAuthor`, `attribution.responsibleEditor`).
    pub required_fields: BTreeMap<String, Vec<String>>,
    /// Longest headline, in characters (0: no limit beyond ingest's).
    pub max_headline_chars: usize,
    /// Longest body, in characters (0: no limit beyond ingest's).
    pub max_body_chars: usize,
    /// The categories a county may submit: county code → category names. Counties not listed
    /// may submit any category.
    pub allowed_categories: BTreeMap<String, Vec<String>>,
    /// Near-duplicates.
    pub near_duplicate: NearDuplicateConfig,
    /// Human approvals a category needs before it is distributed (1 初审, 2 +复审, 3 +终审):
    /// category name → levels. A story held by a rule needs at least one.
    pub review_levels: BTreeMap<String, u32>,
}

const KNOWN_FIELDS: [&str; 8] = [
    "summary",
    "byline",
    "tags",
    "countiesConcerned",
    "media",
    "attribution.source",
    "attribution.originalAuthor",
    "attribution.responsibleEditor",
];

impl RulesConfig {
    /// Reads rules from JSON, checking every name in them.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let config: Self = serde_json::from_slice(json).map_err(|e| format!("rules: {e}"))?;
        let category =
            |name: &str| bashu_proto::story::v1::Category::from_str_name(name).is_some_and(|c| c as i32 != 0);
        for (name, fields) in &config.required_fields {
            if !category(name) {
                return Err(format!("rules.required_fields: {name:?} is not a story category"));
            }
            if let Some(unknown) = fields.iter().find(|f| !KNOWN_FIELDS.contains(&f.as_str())) {
                return Err(format!(
                    "rules.required_fields.{name}: {unknown:?} is not one of {}",
                    KNOWN_FIELDS.join(", ")
                ));
            }
        }
        for (name, levels) in &config.review_levels {
            if !category(name) || !(1..=3).contains(levels) {
                return Err(format!("rules.review_levels: {name:?} must be a story category with 1 to 3 levels"));
            }
        }
        for (county, names) in &config.allowed_categories {
            if let Some(unknown) = names.iter().find(|n| !category(n)) {
                return Err(format!("rules.allowed_categories.{county}: {unknown:?} is not a story category"));
            }
        }
        Ok(config)
    }
}

/// The outcome of the rules for one story version.
#[derive(Debug)]
pub struct Evaluation {
    /// Every rule's outcome, in order.
    pub outcomes: Vec<RuleOutcome>,
    /// Approved when every rule is clean; held or rejected by the strongest action that fired.
    pub verdict: Verdict,
    /// Why it was held or rejected.
    pub reason: String,
    /// The story's fingerprint.
    pub fingerprint: u64,
}

/// The compiled rules.
pub struct Rules {
    config: RulesConfig,
    lexicon: Lexicon,
}

impl Rules {
    /// Compiles a configuration.
    pub fn new(config: RulesConfig) -> Result<Self, String> {
        let lexicon = Lexicon::new(config.lexicon.clone())?;
        Ok(Self { config, lexicon })
    }

    /// How many bits apart two stories may be to count as near-duplicates.
    pub fn near_duplicate_distance(&self) -> u32 {
        self.config.near_duplicate.max_distance
    }

    /// How far back near-duplicates are looked for.
    pub fn near_duplicate_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.near_duplicate.window_hours * 3600)
    }

    /// How many human approvals a story of this category needs (0: none).
    pub fn review_levels(&self, category: &str) -> u32 {
        self.config.review_levels.get(category).copied().unwrap_or(0)
    }

    /// The compiled lexicon (for the benchmark's scan rate).
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// Evaluates every rule against a story version.
    pub fn evaluate(&self, story: &Story, earlier: &Window, now: SystemTime) -> Evaluation {
        let mut outcomes = Vec::new();
        let mut strongest: Option<Action> = None;
        let mut reasons = Vec::new();
        let mut record = |rule: &str, fired: Option<(Action, String)>| {
            let evidence = fired.as_ref().map(|(_, e)| e.clone()).unwrap_or_default();
            if let Some((action, evidence)) = fired {
                strongest = strongest.max(Some(action));
                reasons.push(format!("{rule}: {evidence}"));
            }
            outcomes.push(RuleOutcome { rule: rule.into(), fired: !evidence.is_empty(), evidence });
        };

        // Lexicon, over every text field.
        let mut found = Vec::new();
        let mut action = None;
        for (field, text) in [("headline", &story.headline), ("summary", &story.summary), ("body", &story.body)] {
            for hit in self.lexicon.scan(text) {
                let term = self.lexicon.term(hit.term);
                action = action.max(Some(term.action));
                found.push(format!("{:?} ({}) in {field} at {}", term.term, term.category, hit.position));
            }
        }
        record("lexicon", action.map(|a| (a, found.join("; "))));

        // Required fields.
        let required = self.config.required_fields.get(story.category().as_str_name()).cloned().unwrap_or_default();
        let attribution = story.attribution.clone().unwrap_or_default();
        let missing: Vec<String> = required
            .into_iter()
            .filter(|field| match field.as_str() {
                "summary" => story.summary.trim().is_empty(),
                "byline" => story.byline.trim().is_empty(),
                "tags" => story.tags.is_empty(),
                "countiesConcerned" => story.counties_concerned.is_empty(),
                "media" => story.media.is_empty(),
                "attribution.source" => attribution.source.trim().is_empty(),
                "attribution.originalAuthor" => attribution.original_author.trim().is_empty(),
                "attribution.responsibleEditor" => attribution.responsible_editor.trim().is_empty(),
                _ => false,
            })
            .collect();
        record(
            "required-fields",
            (!missing.is_empty()).then(|| (Action::Reject, format!("missing {}", missing.join(", ")))),
        );

        // Lengths.
        let mut long = Vec::new();
        let (headline, body) = (story.headline.chars().count(), story.body.chars().count());
        if self.config.max_headline_chars > 0 && headline > self.config.max_headline_chars {
            long.push(format!("headline {headline} > {} characters", self.config.max_headline_chars));
        }
        if self.config.max_body_chars > 0 && body > self.config.max_body_chars {
            long.push(format!("body {body} > {} characters", self.config.max_body_chars));
        }
        record("length", (!long.is_empty()).then(|| (Action::Reject, long.join("; "))));

        // Embargo and expiry, as they stand now.
        let at = |t: &Option<bashu_proto::Timestamp>| t.as_ref().and_then(bashu_proto::time::to_system_time);
        let timing = match (at(&story.embargo_until), at(&story.expires_at)) {
            (_, Some(expiry)) if expiry <= now => Some("expired before moderation".to_owned()),
            (Some(embargo), Some(expiry)) if embargo >= expiry => {
                Some("the embargo does not end before the expiry".to_owned())
            }
            _ => None,
        };
        record("embargo-expiry", timing.map(|e| (Action::Reject, e)));

        // Source rules.
        let refused = self
            .config
            .allowed_categories
            .get(&story.origin_county)
            .filter(|allowed| !allowed.iter().any(|c| c == story.category().as_str_name()))
            .map(|allowed| (Action::Reject, format!("{} may submit only {}", story.origin_county, allowed.join(", "))));
        record("source", refused);

        // Near-duplicates of what another county shared.
        let fingerprint = simhash::fingerprint(&format!("{}\n{}", story.headline, story.body));
        let window = std::time::Duration::from_secs(self.config.near_duplicate.window_hours * 3600);
        let duplicate = earlier
            .nearest(fingerprint, &story.origin_county, self.config.near_duplicate.max_distance, window, now)
            .map(|(e, d)| {
                (self.config.near_duplicate.action, format!("near-duplicate of {}/{} (distance {d})", e.origin, e.id))
            });
        record("near-duplicate", duplicate);

        let verdict = match strongest {
            None => Verdict::Approved,
            Some(Action::Hold) => Verdict::Held,
            Some(Action::Reject) => Verdict::Rejected,
        };
        Evaluation { outcomes, verdict, reason: reasons.join("; "), fingerprint }
    }
}

#[cfg(test)]
mod tests {
    use bashu_proto::story::v1::{Attribution, Category};

    use super::*;

    fn rules() -> Rules {
        let json = r#"{
            "lexicon": [{"term": "法轮", "action": "reject", "category": "banned"}, {"term": "代开发票", "action": "hold", "category": "fraud"}],
            "required_fields": {"CATEGORY_EMERGENCY": ["summary", "attribution.source"]},
            "max_headline_chars": 40,
            "allowed_categories": {"500101": ["CATEGORY_CULTURE_TOURISM"]}
        }"#;
        Rules::new(RulesConfig::from_json(json.as_bytes()).unwrap()).unwrap()
    }

    fn story() -> Story {
        Story {
            id: "s1".into(),
            origin_county: "511083".into(),
            headline: "隆昌荣昌联合采访".into(),
            body: "两地融媒体中心首次联合采制，同一条新闻两地同步发布。".into(),
            category: Category::Policy as i32,
            ..Default::default()
        }
    }

    fn fired(evaluation: &Evaluation) -> Vec<&str> {
        evaluation.outcomes.iter().filter(|o| o.fired).map(|o| o.rule.as_str()).collect()
    }

    #[test]
    fn a_clean_story_is_approved_with_every_rule_recorded() {
        let evaluation = rules().evaluate(&story(), &Window::new(8), SystemTime::now());
        assert_eq!(evaluation.verdict, Verdict::Approved);
        assert_eq!(evaluation.outcomes.len(), 6);
        assert!(fired(&evaluation).is_empty());
    }

    #[test]
    fn a_hidden_term_is_caught_and_its_position_named() {
        let evaluation = rules().evaluate(
            &Story { body: "正文提到 法 · 輪 二字".into(), ..story() },
            &Window::new(8),
            SystemTime::now(),
        );
        assert_eq!(evaluation.verdict, Verdict::Rejected);
        assert_eq!(evaluation.outcomes[0].evidence, "\"法轮\" (banned) in body at 5");
        let held = rules().evaluate(
            &Story { headline: "ＸＸ代 开 发 票".into(), ..story() },
            &Window::new(8),
            SystemTime::now(),
        );
        assert_eq!(held.verdict, Verdict::Held);
    }

    #[test]
    fn required_fields_lengths_and_source_rules_fire() {
        let emergency =
            Story { category: Category::Emergency as i32, attribution: Some(Attribution::default()), ..story() };
        let evaluation = rules().evaluate(&emergency, &Window::new(8), SystemTime::now());
        assert_eq!(fired(&evaluation), ["required-fields"]);
        assert_eq!(evaluation.outcomes[1].evidence, "missing summary, attribution.source");
        let long =
            rules().evaluate(&Story { headline: "长".repeat(41), ..story() }, &Window::new(8), SystemTime::now());
        assert_eq!(fired(&long), ["length"]);
        let yuzhong =
            rules().evaluate(&Story { origin_county: "500101".into(), ..story() }, &Window::new(8), SystemTime::now());
        assert_eq!(fired(&yuzhong), ["source"]);
    }

    #[test]
    fn a_near_duplicate_of_another_countys_story_is_held_and_linked() {
        let original = story();
        let earlier = Earlier {
            origin: "500153".into(),
            id: "rc-7".into(),
            fingerprint: simhash::fingerprint(&format!("{}\n{}", original.headline, original.body)),
            at: SystemTime::now(),
        };
        let mut window = Window::new(8);
        window.remember(earlier.clone(), std::time::Duration::from_secs(3600));
        let evaluation = rules().evaluate(&original, &window, SystemTime::now());
        assert_eq!(evaluation.verdict, Verdict::Held);
        assert!(evaluation.reason.contains("near-duplicate of 500153/rc-7"), "{}", evaluation.reason);
        let mut own = Window::new(8);
        own.remember(Earlier { origin: "511083".into(), ..earlier }, std::time::Duration::from_secs(3600));
        assert_eq!(
            rules().evaluate(&original, &own, SystemTime::now()).verdict,
            Verdict::Approved,
            "a county's own story is no duplicate"
        );
    }

    #[test]
    fn bad_rules_are_refused_by_name() {
        assert!(
            RulesConfig::from_json(br#"{"required_fields": {"CATEGORY_GOSSIP": []}}"#)
                .unwrap_err()
                .contains("CATEGORY_GOSSIP")
        );
        assert!(
            RulesConfig::from_json(br#"{"required_fields": {"CATEGORY_POLICY": ["colour"]}}"#)
                .unwrap_err()
                .contains("colour")
        );
        assert!(RulesConfig::from_json(br#"{"lexicon": [{"term": "x", "action": "ban"}]}"#).is_err());
    }
}
