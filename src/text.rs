//! Caller-supplied free text (memos, subjects, names, reasons): the rules every service applies
//! before such text is stored, logged or returned. A leaf module: it names nothing else of the
//! crate, so every service (and the identity normaliser) can use it.
//!
//! Refused, each naming the field and never echoing the text:
//! - **control characters**: every Unicode `Cc` character, with no exception (tab, CR and LF
//!   included: a memo is one line);
//! - **bidirectional controls** U+202A..U+202E (embeddings, overrides) and U+2066..U+2069
//!   (isolates), which make a text display otherwise than it reads;
//! - **a card number** (PAN): 13 to 19 digits, in groups separated by single spaces or
//!   hyphens, that pass the Luhn check. Refused rather than masked: text that carried a card
//!   number is never stored, and a refusal is simpler to audit than a rewrite. Full-width
//!   digits count as digits, full-width and ideographic spaces and full-width hyphens as
//!   separators, and invisible characters ([`is_invisible`]) are skipped, so none of them
//!   hides a number. Any contiguous run of whole groups is checked (`card 6222 0212 3456 7890
//!   128 2026-11-30` holds one); one unbroken run of more than 19 digits (a long reference
//!   number) is not a card number.

/// Fewest digits of a card number (ISO/IEC 7812).
pub const CARD_DIGITS_MIN: usize = 13;
/// Most digits of a card number (ISO/IEC 7812).
pub const CARD_DIGITS_MAX: usize = 19;

/// Why a free text was refused. Never carries the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextRefusal {
    #[error("required")]
    Required,
    #[error("at most {max_chars} characters")]
    TooLong { max_chars: usize },
    #[error("control characters (tab and line breaks included) are not allowed")]
    ControlCharacter,
    #[error("bidirectional embedding, override and isolate characters are not allowed")]
    BidiControl,
    /// The stable reason `CARD_NUMBER_IN_TEXT`.
    #[error("a card number may not appear in free text")]
    CardNumber,
}

/// Checks one free-text field: present when `required` (white space and invisible characters
/// alone count as absent), at most `max_chars` characters, and free of control characters,
/// bidirectional controls and card numbers.
pub fn check_free_text(text: &str, required: bool, max_chars: usize) -> Result<(), TextRefusal> {
    if required && text.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err(TextRefusal::Required);
    }
    if text.chars().count() > max_chars {
        return Err(TextRefusal::TooLong { max_chars });
    }
    if text.chars().any(char::is_control) {
        return Err(TextRefusal::ControlCharacter);
    }
    if text.chars().any(is_bidi_control) {
        return Err(TextRefusal::BidiControl);
    }
    if contains_card_number(text) {
        return Err(TextRefusal::CardNumber);
    }
    Ok(())
}

/// Characters that show nothing: zero-width space, non-joiner and joiner (U+200B..U+200D),
/// the byte-order mark / zero-width no-break space (U+FEFF), the word joiner (U+2060) and the
/// soft hyphen (U+00AD).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{FEFF}' | '\u{2060}' | '\u{00AD}'
    )
}

/// The value of an ASCII or full-width (U+FF10..U+FF19) decimal digit.
pub fn digit_value(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '\u{FF10}'..='\u{FF19}' => u8::try_from(u32::from(c) - 0xFF10).ok(),
        _ => None,
    }
}

/// Whether `digits` (values 0..=9, most significant first) pass the Luhn check.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A separator between digit groups of a written card number.
fn is_group_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '\u{3000}' | '\u{FF0D}')
}

/// Whether `text` holds a card number (see the module doc).
pub fn contains_card_number(text: &str) -> bool {
    // The digit groups of the current run; a run ends at anything but a digit or one separator.
    let mut groups: Vec<Vec<u8>> = Vec::new();
    let mut after_separator = false;
    for c in text.chars() {
        if is_invisible(c) {
            continue;
        }
        if let Some(d) = digit_value(c) {
            match groups.last_mut() {
                Some(group) if !after_separator => group.push(d),
                _ => groups.push(vec![d]),
            }
            after_separator = false;
        } else if is_group_separator(c) && !groups.is_empty() && !after_separator {
            after_separator = true;
        } else {
            if run_holds_card(&groups) {
                return true;
            }
            groups.clear();
            after_separator = false;
        }
    }
    run_holds_card(&groups)
}

/// Whether some contiguous span of whole groups has a card number's length and check digit.
fn run_holds_card(groups: &[Vec<u8>]) -> bool {
    (0..groups.len()).any(|first| {
        let mut digits: Vec<u8> = Vec::with_capacity(CARD_DIGITS_MAX);
        groups[first..].iter().any(|group| {
            digits.extend_from_slice(group);
            (CARD_DIGITS_MIN..=CARD_DIGITS_MAX).contains(&digits.len()) && luhn_valid(&digits)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "6222021234567890128";

    fn check(text: &str) -> Result<(), TextRefusal> {
        check_free_text(text, false, 256)
    }

    #[test]
    fn ordinary_text_in_any_script_passes() {
        for ok in [
            "",
            "rent for November",
            "房租 11月",
            "order 2026113000012345678901 paid",
            "call 13800000000",
            "amount 1234.56, ref 20261130",
            "1234567890123",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn a_card_number_however_written_is_refused() {
        let spaced = "6222 0212 3456 7890 128";
        let hyphened = "6222-0212-3456-7890-128";
        let full_width = "６２２２０２１２３４５６７８９０１２８";
        let zero_width = "62220212\u{200B}34567890128";
        let glued = format!("card:{CARD}.");
        let with_date = format!("{spaced} 2026-11-30");
        let after_digits = format!("12 {CARD}");
        for text in [
            CARD,
            spaced,
            hyphened,
            full_width,
            zero_width,
            glued.as_str(),
            with_date.as_str(),
            after_digits.as_str(),
            "4111 1111 1111 1111",
        ] {
            assert_eq!(check(text), Err(TextRefusal::CardNumber), "{text:?}");
        }
    }

    #[test]
    fn digits_that_fail_luhn_or_the_length_are_not_a_card_number() {
        assert_eq!(check("6222021234567890123"), Ok(()));
        assert_eq!(
            check("6222  0212 3456 7890 128"),
            Ok(()),
            "two spaces part groups"
        );
        assert_eq!(
            check("622202123456789012800000"),
            Ok(()),
            "one run of 24 digits"
        );
        assert_eq!(check("411111111111"), Ok(()), "12 digits");
    }

    #[test]
    fn control_and_bidi_characters_are_refused() {
        for c in ['\n', '\r', '\t', '\0', '\u{7F}', '\u{85}'] {
            assert_eq!(
                check(&format!("a{c}b")),
                Err(TextRefusal::ControlCharacter),
                "{c:?}"
            );
        }
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            assert_eq!(
                check(&format!("a{c}b")),
                Err(TextRefusal::BidiControl),
                "{c:?}"
            );
        }
    }

    #[test]
    fn required_text_is_more_than_blanks_and_length_counts_characters() {
        assert_eq!(
            check_free_text(" \u{200B}\u{3000}", true, 10),
            Err(TextRefusal::Required)
        );
        assert_eq!(check_free_text("张三", true, 2), Ok(()));
        assert_eq!(
            check_free_text("张三丰", true, 2),
            Err(TextRefusal::TooLong { max_chars: 2 })
        );
    }
}
