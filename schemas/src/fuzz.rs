//! Property-based fuzzing of the shared parsers and text functions: timestamps, [`printable`] and the escaped
//! `event.original`. Inputs are near-valid (real timestamp forms with bytes replaced, pieces inserted,
//! numbers made huge, truncated) as well as arbitrary. The case count follows `PROPTEST_CASES` (proptest's
//! default, 256, in a normal test run); `scripts/fuzz.sh` runs a million in a release build.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::text::printable;
use crate::time::{format_rfc3339_us, parse_iso8601_prefix, rfc3339_us};
use crate::{decode_escaped, escape_invalid_utf8};

/// Timestamps as syslog daemons, shippers and ECS producers write them.
const TIMESTAMPS: &[&str] = &[
    "2026-03-14T09:14:01Z",
    "2026-03-14T09:14:01.003Z sshd",
    "2026-03-14T09:14:01.123456+00:00",
    "2026-03-14 09:14:01.123456+0000 web-1",
    "2026-03-13T19:00:00.123456789-05:00",
    "2026-03-14T01:00:00.5+01",
    "2016-12-31T23:59:60Z",
    "0000-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59,999999-23:59",
];

/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z, epoch microseconds.
const YEAR_0: i64 = -62_167_219_200_000_000;
const YEAR_10000: i64 = 253_402_300_800_000_000;

/// One change to a timestamp: (position, replacement text); an empty text cuts it there.
fn edit() -> impl Strategy<Value = (usize, String)> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "",
            "é",
            "🦀",
            "9",
            "99",
            "99999999999999999999",
            "-",
            "+",
            ":",
            ".",
            ",",
            "Z",
            "T",
            " ",
            "+99:99",
            "-23:5",
            "\u{0660}",
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
    ];
    (any::<usize>(), piece)
}

/// `ts` with each edit replacing the byte at its position (or cutting the text there).
fn edited(ts: &str, edits: &[(usize, String)]) -> Vec<u8> {
    let mut b = ts.as_bytes().to_vec();
    for (at, piece) in edits {
        let at = at % (b.len() + 1);
        if piece.is_empty() {
            b.truncate(at);
        } else {
            let end = (at + 1).min(b.len());
            b.splice(at..end, piece.bytes());
        }
    }
    b
}

proptest! {
    #[test]
    fn fuzz_timestamps_never_panic(
        ts in prop::sample::select(TIMESTAMPS),
        edits in vec(edit(), 0..5),
        noise in vec(any::<u8>(), 0..40),
        us in any::<i64>(),
    ) {
        for bytes in [edited(ts, &edits), noise] {
            if let Some((parsed, n)) = parse_iso8601_prefix(&bytes) {
                prop_assert!((19..=bytes.len()).contains(&n));
                // An offset can move a time out of years 0 to 9999, which four digits no longer hold.
                let shown = format_rfc3339_us(parsed);
                if (YEAR_0..YEAR_10000).contains(&parsed) {
                    prop_assert_eq!(parse_iso8601_prefix(shown.as_bytes()), Some((parsed, shown.len())));
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let json = serde_json::to_string(text).expect("serializes");
                let mut de = serde_json::Deserializer::from_str(&json);
                let _ = rfc3339_us::deserialize(&mut de);
            }
        }
        format_rfc3339_us(us);
    }

    #[test]
    fn fuzz_printable_leaves_nothing_that_acts_on_a_display(
        pieces in vec(prop_oneof![
            any::<char>().prop_map(String::from),
            prop::sample::select(vec!["\x1b[2J", "\r", "\0", "\u{9b}31m", "\u{202e}", "\u{2069}", "é"])
                .prop_map(str::to_owned),
        ], 0..16),
    ) {
        let text = pieces.concat();
        let shown = printable(&text);
        prop_assert!(!shown.chars().any(|c| c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)), "{:?}", shown);
    }

    #[test]
    fn fuzz_escaped_original_gives_back_every_byte(
        bytes in vec(prop_oneof![any::<u8>(), Just(b'\\'), Just(b'x'), Just(0xc3), Just(0xa9)], 0..64),
    ) {
        let escaped = escape_invalid_utf8(&bytes);
        prop_assert_eq!(decode_escaped(&escaped), Some(bytes));
    }
}
