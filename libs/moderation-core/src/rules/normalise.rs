//! Text normalisation for matching: full-width to half-width, case folded, traditional to
//! simplified (fast2s), and white space and punctuation dropped, so that a term hidden as
//! `Ｆａｌｕｎ`, `法 轮`, `法·轮` or `法輪` still matches `法轮`. Every kept character remembers its
//! position in the original text, for the evidence.

/// Normalised text and, for each of its characters, the character position in the original.
#[derive(Debug, Default)]
pub(crate) struct Normalised {
    pub(crate) text: String,
    pub(crate) positions: Vec<usize>,
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || matches!(c as u32,
            0x2000..=0x206F   // general punctuation
            | 0x3000..=0x303F // CJK symbols and punctuation
            | 0xFE30..=0xFE4F // CJK compatibility forms
            | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65)
        || matches!(c, '·' | '•' | '・' | '×' | '÷' | '¦' | '¨' | '´' | '¸' | '«' | '»' | '¿' | '¡' | '|')
}

fn half_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    }
}

/// Folds `text` for search, character for character: full-width to half-width, lower case,
/// traditional to simplified. Nothing is dropped, so the n-th character of the result is the
/// n-th of `text` (search highlights map back through that).
pub fn fold(text: &str) -> String {
    let plain: String = text.chars().map(|c| half_width(c).to_lowercase().next().unwrap_or(c)).collect();
    let simplified = fast2s::convert(&plain);
    if simplified.chars().count() == plain.chars().count() { simplified } else { plain }
}

/// Normalises `text` for matching.
pub(crate) fn normalise(text: &str) -> Normalised {
    let folded: Vec<(usize, char)> = text
        .chars()
        .enumerate()
        .map(|(i, c)| (i, half_width(c)))
        .filter(|(_, c)| !is_separator(*c))
        .map(|(i, c)| (i, c.to_lowercase().next().unwrap_or(c)))
        .collect();
    let plain: String = folded.iter().map(|(_, c)| *c).collect();
    let simplified = fast2s::convert(&plain);
    // The table maps one character to one; if it ever did not, keep the unsimplified text so that
    // positions stay right.
    let text = if simplified.chars().count() == folded.len() { simplified } else { plain };
    Normalised { text, positions: folded.into_iter().map(|(i, _)| i).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_spellings_normalise_to_the_same_text() {
        for hidden in ["法轮", "法 轮", "法·轮", "法、轮", "法輪", "法　轮"] {
            assert_eq!(normalise(hidden).text, "法轮", "{hidden}");
        }
        assert_eq!(normalise("ＴＥＳＴ word").text, "testword");
    }

    #[test]
    fn folding_keeps_every_character_in_place() {
        let text = "成渝鐵路　ＡＢＣ 中線";
        let folded = fold(text);
        assert_eq!(folded, "成渝铁路 abc 中线");
        assert_eq!(folded.chars().count(), text.chars().count());
    }

    #[test]
    fn positions_point_into_the_original() {
        let n = normalise("前言 法·轮");
        assert_eq!(n.text, "前言法轮");
        assert_eq!(n.positions, [0, 1, 3, 5]);
    }
}
