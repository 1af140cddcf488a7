//! The query language editors type: words (every one must occur), `"quoted phrases"` (their
//! words next to each other), and `-excluded` words or phrases. Each word is folded and cut like
//! the text it is matched against, so `成渝中線` finds `成渝中线` and a run of Chinese characters
//! is its words next to each other. A query that does not parse is refused with the character
//! position (counted from 1) where it went wrong.

use tantivy::{
    Term,
    query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery},
    schema::{Field, IndexRecordOption},
};

use crate::analyzer::words;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most parts (words, phrases, exclusions) one query may have.
const MAX_PARTS: usize = 20;

/// Why a query was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("query, character {position}: {reason}")]
pub struct QueryError {
    /// The character (from 1) where it went wrong.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

/// One part of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Part {
    text: String,
    excluded: bool,
}

/// The parts of `query`, or where it goes wrong.
fn parts(query: &str) -> Result<Vec<Part>, QueryError> {
    let count = query.chars().count();
    if count > MAX_QUERY_CHARS {
        return Err(QueryError {
            position: MAX_QUERY_CHARS + 1,
            reason: format!("at most {MAX_QUERY_CHARS} characters ({count} given)"),
        });
    }
    let chars: Vec<char> = query.chars().collect();
    let mut parts = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        let excluded = c == '-' || c == '－';
        if excluded {
            at += 1;
            if at == chars.len() || chars[at].is_whitespace() {
                return Err(QueryError {
                    position: start + 1,
                    reason: "`-` must be followed by what to exclude".into(),
                });
            }
        }
        let text: String = if matches!(chars[at], '"' | '“' | '”' | '＂') {
            let open = at;
            at += 1;
            let end = chars[at..]
                .iter()
                .position(|c| matches!(c, '"' | '“' | '”' | '＂'))
                .map(|p| at + p)
                .ok_or_else(|| QueryError { position: open + 1, reason: "this quote is never closed".into() })?;
            let phrase: String = chars[at..end].iter().collect();
            at = end + 1;
            phrase
        } else {
            let end = chars[at..].iter().position(|c| c.is_whitespace()).map_or(chars.len(), |p| at + p);
            let word: String = chars[at..end].iter().collect();
            if let Some(quote) = word.find(['"', '“', '”', '＂']) {
                let position = at + word[..quote].chars().count() + 1;
                return Err(QueryError { position, reason: "a quote may only open or close a phrase".into() });
            }
            at = end;
            word
        };
        if words(&text).is_empty() {
            return Err(QueryError { position: start + 1, reason: "nothing to search for here".into() });
        }
        parts.push(Part { text, excluded });
        if parts.len() > MAX_PARTS {
            return Err(QueryError { position: start + 1, reason: format!("at most {MAX_PARTS} words or phrases") });
        }
    }
    if !parts.is_empty() && parts.iter().all(|p| p.excluded) {
        return Err(QueryError { position: 1, reason: "say what to find, not only what to exclude".into() });
    }
    Ok(parts)
}

/// The part as a query on one field: its words next to each other.
fn on_field(field: Field, text: &str) -> Box<dyn Query> {
    let terms: Vec<Term> = words(text).into_iter().map(|w| Term::from_field_text(field, &w.text)).collect();
    match terms.len() {
        1 => Box::new(TermQuery::new(terms.into_iter().next().expect("one"), IndexRecordOption::WithFreqs)),
        _ => Box::new(PhraseQuery::new(terms)),
    }
}

/// `query` as a tantivy query over `fields` (a part matches when it matches any of them); `None`
/// when the query is empty.
pub fn parse(query: &str, fields: &[Field]) -> Result<Option<Box<dyn Query>>, QueryError> {
    let parts = parts(query)?;
    if parts.is_empty() {
        return Ok(None);
    }
    let clauses = parts
        .into_iter()
        .map(|part| {
            let any: Vec<(Occur, Box<dyn Query>)> =
                fields.iter().map(|field| (Occur::Should, on_field(*field, &part.text))).collect();
            (
                if part.excluded { Occur::MustNot } else { Occur::Must },
                Box::new(BooleanQuery::new(any)) as Box<dyn Query>,
            )
        })
        .collect();
    Ok(Some(Box::new(BooleanQuery::new(clauses))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(query: &str) -> Vec<(String, bool)> {
        parts(query).unwrap().into_iter().map(|p| (p.text, p.excluded)).collect()
    }

    #[test]
    fn words_phrases_and_exclusions() {
        assert_eq!(
            texts(r#"高铁 "成渝中线" -广告 -"招商 引资""#),
            [("高铁".into(), false), ("成渝中线".into(), false), ("广告".into(), true), ("招商 引资".into(), true)]
        );
        assert_eq!(texts("  "), []);
    }

    #[test]
    fn a_broken_query_names_the_character_where_it_breaks() {
        assert_eq!(parts(r#"高铁 "成渝"#).unwrap_err().position, 4);
        assert_eq!(parts("高铁 - 广告").unwrap_err().position, 4);
        assert_eq!(parts(r#"高"铁"#).unwrap_err().position, 2);
        assert_eq!(parts("，。").unwrap_err().position, 1);
        assert_eq!(parts("-广告").unwrap_err().position, 1);
        let long = "高".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(parts(&long).unwrap_err().position, MAX_QUERY_CHARS + 1);
    }
}
