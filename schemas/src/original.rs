//! `event.original` of a line that is not valid UTF-8.
//!
//! Such a line is still normalized, from its lossy decoding (each invalid byte read as U+FFFD), so an
//! attacker cannot make a line vanish from detection by putting one stray byte in a user name. Its
//! `original` keeps every byte, as valid UTF-8: each invalid byte is written `\xNN` (two lowercase hex
//! digits) and, so that the escapes stay unambiguous, each backslash of the line is written `\\`. A line
//! that is valid UTF-8 keeps its text unchanged. The event id is a hash of the raw bytes, so it tells the
//! two readings apart even for a valid line that happens to spell `\xff`: [`decode_escaped`] gives back
//! the bytes a lossily decoded line had.

/// `bytes`, which are not valid UTF-8, as the escaped text described in the module docs.
pub fn escape_invalid_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        let mut valid = chunk.valid();
        while let Some(at) = valid.find('\\') {
            out.push_str(&valid[..=at]);
            out.push('\\');
            valid = &valid[at + 1..];
        }
        out.push_str(valid);
        for &b in chunk.invalid() {
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The bytes behind a text written by [`escape_invalid_utf8`]; `None` when `escaped` is not such a text (a
/// backslash followed by anything but `\` or `x` and two hex digits).
pub fn decode_escaped(escaped: &str) -> Option<Vec<u8>> {
    let b = escaped.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => match b.get(i + 1)? {
                b'\\' => {
                    out.push(b'\\');
                    i += 2;
                }
                b'x' => {
                    let hex = |at: usize| char::from(*b.get(at)?).to_digit(16);
                    out.push((hex(i + 2)? * 16 + hex(i + 3)?) as u8);
                    i += 4;
                }
                _ => return None,
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_and_backslashes_are_escaped() {
        let raw = b"Failed password for invalid user ad\xffmin\\x from 1.2.3.4 port 22 ssh2";
        let escaped = escape_invalid_utf8(raw);
        assert_eq!(
            escaped,
            "Failed password for invalid user ad\\xffmin\\\\x from 1.2.3.4 port 22 ssh2"
        );
        assert_eq!(decode_escaped(&escaped).as_deref(), Some(&raw[..]));
        // A truncated multi-byte character is escaped byte by byte; valid characters around it stay.
        assert_eq!(escape_invalid_utf8(b"\xc3\xa9\xe2\x82"), "é\\xe2\\x82");
    }

    #[test]
    fn malformed_escapes_do_not_decode() {
        for bad in ["\\", "a\\n", "\\x4", "\\xg0", "\\x"] {
            assert_eq!(decode_escaped(bad), None, "{bad:?}");
        }
    }
}
