//! How the pool reads Chinese: the text is folded (full-width to half-width, lower case,
//! traditional to simplified, the moderation lexicon's folding), cut into words by jieba, and
//! each word keeps the place it had in the original text, so highlights mark what the editor
//! wrote, not the folded copy. Positions count words, so phrases match words next to each other.

use std::sync::{Arc, OnceLock};

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The name the analyzer is registered under in the index.
pub const ANALYZER: &str = "bashu_zh";

/// One segmenter for the process: its dictionary is large and read once.
fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

/// The pool's tokenizer: fold, cut, map back.
#[derive(Clone, Default)]
pub struct ChineseAnalyzer;

/// The words of one text, made at once (jieba cuts whole sentences).
pub struct Words {
    tokens: Arc<[Token]>,
    next: usize,
    current: Token,
}

/// The words of `text` as the index sees them: folded text, and byte offsets into `text`.
pub fn words(text: &str) -> Vec<Token> {
    let folded = bashu_moderation_core::rules::fold(text);
    // Folding keeps characters in place: the n-th folded character is the n-th original one.
    let mut starts: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
    starts.push(text.len());
    let mut tokens = Vec::new();
    for word in jieba().cut(&folded, true) {
        if !word.word.chars().any(char::is_alphanumeric) {
            continue;
        }
        let (Some(&from), Some(&to)) = (starts.get(word.start), starts.get(word.end)) else { continue };
        tokens.push(Token {
            offset_from: from,
            offset_to: to,
            position: tokens.len(),
            text: word.word.to_owned(),
            position_length: 1,
        });
    }
    tokens
}

impl Tokenizer for ChineseAnalyzer {
    type TokenStream<'a> = Words;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Words {
        Words { tokens: words(text).into(), next: 0, current: Token::default() }
    }
}

impl TokenStream for Words {
    fn advance(&mut self) -> bool {
        match self.tokens.get(self.next) {
            Some(token) => {
                self.current = token.clone();
                self.next += 1;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        words(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn chinese_is_cut_into_words_and_punctuation_dropped() {
        assert_eq!(
            texts("成渝中线高铁开通，旅客出行更方便。"),
            ["成渝", "中线", "高铁", "开通", "旅客", "出行", "更", "方便"]
        );
    }

    #[test]
    fn traditional_and_full_width_fold_to_the_same_words() {
        assert_eq!(texts("成渝中線高鐵"), texts("成渝中线高铁"));
        assert_eq!(texts("ＡＢＣ新聞"), texts("abc新闻"));
    }

    #[test]
    fn offsets_point_into_the_original_text() {
        let text = "「高鐵」ＡＢＣ";
        for token in words(text) {
            let original = &text[token.offset_from..token.offset_to];
            assert_eq!(bashu_moderation_core::rules::fold(original), token.text, "{original}");
        }
    }
}
