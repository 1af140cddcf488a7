//! The sensitive-term lexicon: every term normalised and compiled into one Aho–Corasick
//! automaton, matched over the normalised text of a story.

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Deserialize;

use super::normalise::normalise;

/// What a term does when it is found.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A reviewer must look at the story.
    Hold,
    /// The story is refused.
    Reject,
}

/// One lexicon entry.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// The term as written.
    pub term: String,
    /// What finding it does.
    pub action: Action,
    /// Why it is listed (politics, violence, fraud, …).
    #[serde(default)]
    pub category: String,
}

/// A term found in a story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index of the term in the lexicon.
    pub term: usize,
    /// The character position of the match in the original field text.
    pub position: usize,
}

/// The compiled lexicon.
pub struct Lexicon {
    terms: Vec<Term>,
    automaton: Option<AhoCorasick>,
}

impl Lexicon {
    /// Compiles the terms (empty terms, after normalisation, are dropped).
    pub fn new(terms: Vec<Term>) -> Result<Self, String> {
        let terms: Vec<Term> = terms.into_iter().filter(|t| !normalise(&t.term).text.is_empty()).collect();
        if terms.is_empty() {
            return Ok(Self { terms, automaton: None });
        }
        let patterns: Vec<String> = terms.iter().map(|t| normalise(&t.term).text).collect();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| format!("lexicon does not compile: {e}"))?;
        Ok(Self { terms, automaton: Some(automaton) })
    }

    /// The term at an index.
    pub fn term(&self, index: usize) -> &Term {
        &self.terms[index]
    }

    /// How many terms it holds.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when it holds no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Every term found in `text`, with its position in `text`.
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let Some(automaton) = &self.automaton else { return Vec::new() };
        let normalised = normalise(text);
        automaton
            .find_iter(&normalised.text)
            .map(|m| {
                let char_index = normalised.text[..m.start()].chars().count();
                Hit { term: m.pattern().as_usize(), position: normalised.positions[char_index] }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        Lexicon::new(vec![
            Term { term: "法轮".into(), action: Action::Reject, category: "banned organisation".into() },
            Term { term: "代开发票".into(), action: Action::Hold, category: "fraud".into() },
        ])
        .unwrap()
    }

    #[test]
    fn hidden_terms_are_found_at_their_original_position() {
        let hits = lexicon().scan("今日新闻：法·輪 ，另有 代 开 发 票 广告");
        assert_eq!(hits, [Hit { term: 0, position: 5 }, Hit { term: 1, position: 13 }]);
    }

    #[test]
    fn clean_text_has_no_hits() {
        assert!(lexicon().scan("隆昌荣昌联合采访").is_empty());
        assert!(Lexicon::new(vec![]).unwrap().scan("任何文本").is_empty());
    }
}
