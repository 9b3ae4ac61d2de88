//! A question as words: look-alike Unicode folded, lower-cased, punctuation and `key=value` pairs split
//! apart, possessives marked. Every reader of the question takes the words it understood, so whatever is
//! left at the end is exactly what was not understood.

/// The words of a question and which of them have been read.
pub(crate) struct Words {
    text: Vec<String>,
    used: Vec<bool>,
}

/// The word that stands for a possessive `'s` ("alice's logins" → `alice`, `'s`, `logins`).
pub(crate) const POSSESSIVE: &str = "'s";

/// Look-alike Unicode (full-width forms, curly apostrophes, odd spaces, control characters) as plain text.
fn fold(question: &str) -> String {
    question
        .chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            '\u{2018}' | '\u{2019}' | '`' => '\'',
            c if c.is_whitespace() || c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | ','
            | ';'
            | '?'
            | '!'
            | '('
            | ')'
            | '"'
            | '['
            | ']'
            | '{'
            | '}'
            | '='
            | '|'
            | '<'
            | '>'
    )
}

/// Strips quotes and sentence punctuation around a word, keeping the dots inside addresses and names.
fn trim(word: &str) -> &str {
    word.trim_matches(|c: char| matches!(c, '\'' | ':' | '*'))
        .trim_end_matches('.')
        .trim_matches('\'')
}

impl Words {
    /// Splits `question` into words.
    pub(crate) fn new(question: &str) -> Self {
        let folded = fold(question).to_lowercase();
        let mut text = Vec::new();
        for piece in folded.split(is_separator) {
            let piece = trim(piece);
            if piece.is_empty() {
                continue;
            }
            match piece.strip_suffix("'s") {
                // "what's", "who's", "it's" are words of their own, not possessives.
                Some(stem) if !trim(stem).is_empty() && !crate::lexicon::is_known_word(piece) => {
                    text.push(trim(stem).to_owned());
                    text.push(POSSESSIVE.to_owned());
                }
                _ => text.push(piece.to_owned()),
            }
        }
        let used = vec![false; text.len()];
        Words { text, used }
    }

    /// How many words.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }

    /// Word `i`, or `""` past the end.
    pub(crate) fn get(&self, i: usize) -> &str {
        self.text.get(i).map(String::as_str).unwrap_or("")
    }

    /// Replaces word `i` (a corrected typo).
    pub(crate) fn set(&mut self, i: usize, word: &str) {
        if let Some(w) = self.text.get_mut(i) {
            *w = word.to_owned();
        }
    }

    /// Whether word `i` has been read.
    pub(crate) fn is_used(&self, i: usize) -> bool {
        self.used.get(i).copied().unwrap_or(true)
    }

    /// Marks word `i` as read.
    pub(crate) fn take(&mut self, i: usize) {
        if let Some(u) = self.used.get_mut(i) {
            *u = true;
        }
    }

    /// Whether word `i` is unread and equals `word`.
    pub(crate) fn free_is(&self, i: usize, word: &str) -> bool {
        !self.is_used(i) && self.get(i) == word
    }

    /// Where the unread words `phrase` (space-separated) start, without reading them.
    pub(crate) fn find(&self, phrase: &str) -> Option<usize> {
        let parts: Vec<&str> = phrase.split(' ').collect();
        (0..self.len()).find(|&i| {
            parts
                .iter()
                .enumerate()
                .all(|(k, p)| self.free_is(i + k, p))
        })
    }

    /// Whether the unread words `phrase` occur.
    pub(crate) fn has(&self, phrase: &str) -> bool {
        self.find(phrase).is_some()
    }

    /// Reads every unread occurrence of `phrase`; whether there was one.
    pub(crate) fn take_phrase(&mut self, phrase: &str) -> bool {
        let n = phrase.split(' ').count();
        let mut found = false;
        while let Some(i) = self.find(phrase) {
            (i..i + n).for_each(|k| self.take(k));
            found = true;
        }
        found
    }

    /// Reads every occurrence of each of `phrases`, in order; whether any occurred.
    pub(crate) fn take_any(&mut self, phrases: &[String]) -> bool {
        let mut found = false;
        for p in phrases {
            found |= self.take_phrase(p);
        }
        found
    }

    /// The unread words with their positions.
    pub(crate) fn unread(&self) -> Vec<(usize, String)> {
        (0..self.len())
            .filter(|&i| !self.is_used(i))
            .map(|i| (i, self.text[i].clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_pairs_and_possessives_are_split_apart() {
        let w = Words::new("How many logins did ci's account have? user=root, src_ip=203.0.113.7.");
        let text: Vec<&str> = (0..w.len()).map(|i| w.get(i)).collect();
        assert_eq!(
            text,
            [
                "how",
                "many",
                "logins",
                "did",
                "ci",
                "'s",
                "account",
                "have",
                "user",
                "root",
                "src_ip",
                "203.0.113.7"
            ]
        );
    }

    #[test]
    fn full_width_letters_and_curly_quotes_read_as_plain_text() {
        let w = Words::new("ｆａｉｌｅｄ logins for ‘alice’");
        assert_eq!(w.get(0), "failed");
        assert_eq!(w.get(3), "alice");
    }
}
