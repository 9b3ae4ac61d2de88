//! Text safe to show: a field's value as it may reach a terminal, a chat message, an e-mail or a web page.
//!
//! Log fields carry attacker-chosen text (a user name sent to sshd is whatever the client typed). Written to a
//! terminal as they are, control characters act: `ESC [2J` clears the screen, `CR` overwrites what came
//! before on the line, bidi overrides reorder what follows. [`printable`] makes each of them a visible escape.
//! JSON output needs none of this: serde escapes control characters, and its readers show them as escapes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every character that would act on a display instead of showing replaced by a visible escape:
/// C0 controls and DEL as `\0`, `\t`, `\n`, `\r` or `\xNN` (so an escape sequence loses its `ESC` and shows
/// as text: `\x1b[2J`), C1 controls as `\u{9b}`, and the bidi embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069) as `\u{202e}`. Borrows `s` when nothing needs replacing.
pub fn printable(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(acts_on_display) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if acts_on_display(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is a control character or a bidi embedding, override or isolate.
fn acts_on_display(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

fn push_escape(out: &mut String, c: char) {
    match c {
        '\0' => out.push_str("\\0"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\0'..='\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        for s in [
            "",
            "alice",
            "Jürgen Müller",
            "名前",
            "a\\x1b b",
            "emoji 🦀 ok",
        ] {
            assert!(matches!(printable(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn controls_escapes_and_bidi_overrides_become_visible() {
        let cases = [
            ("\x1b[2Jroot", "\\x1b[2Jroot"),
            ("evil\rroot", "evil\\rroot"),
            ("a\0b", "a\\0b"),
            ("a\nb\tc", "a\\nb\\tc"),
            ("del\x7f", "del\\x7f"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("file\u{202e}gpj.exe", "file\\u{202e}gpj.exe"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("é\x1bé", "é\\x1bé"),
        ];
        for (raw, shown) in cases {
            assert_eq!(printable(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn nothing_that_acts_on_a_display_survives() {
        let hostile: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        let shown = printable(&hostile);
        assert!(!shown.chars().any(acts_on_display), "{shown:?}");
        assert!(shown.contains("\\x1b") && shown.contains("\\u{202e}") && shown.contains('é'));
    }
}
