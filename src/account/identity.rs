//! Identity documents, validated and normalised before they key the per-person rules (at most
//! five Class II and five Class III accounts per person): one person written two ways must be
//! one person.
//!
//! Every document number first loses spaces (any Unicode space, the ideographic U+3000
//! included), hyphens and dashes, and invisible characters (zero-width space, non-joiner and
//! joiner, U+FEFF, the word joiner, the soft hyphen); full-width digits and Latin letters
//! become ASCII, and letters upper case. Anything else is refused. Then, by type:
//!
//! - **Resident ID card** (居民身份证, GB 11643-1999): 17 digits and a check character
//!   (ISO 7064 MOD 11-2, weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, check characters
//!   `10X98765432`), or a 15-digit legacy number, converted to 18 (`19` before its 2-digit
//!   year, then the check character). The 8 digits after the 6-digit region code are the birth
//!   date: a real date, year 1900 or later, not after today.
//! - **Every other type** (passport, permits, foreign permanent residence card): 5 to 20
//!   letters and digits.
//!
//! Compatibility of stored person keys: keys were derived from the number as given, upper-cased
//! ([`crate::secrets::Secrets::person_key`]). A number that was already in its normal form —
//! for a resident ID card, a valid 18-character number with `X` or `x`; for the other types,
//! ASCII letters and digits only — gives the same key as before. Numbers that were stored in
//! another spelling (a 15-digit legacy number, spaces, full-width characters) were counted as
//! another person before and are counted as the person now.

use time::{Date, Month};

use super::IdDocumentType;
use crate::text::{digit_value, is_invisible};

/// Longest document number accepted before normalisation (characters).
const DOCUMENT_INPUT_CHARS_MAX: usize = 64;
/// Fewest and most letters and digits of a document other than a resident ID card.
const OTHER_DOCUMENT_LEN_MIN: usize = 5;
const OTHER_DOCUMENT_LEN_MAX: usize = 20;
/// GB 11643-1999 weights of the first 17 digits.
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// GB 11643-1999 check characters, by the weighted sum modulo 11.
const RESIDENT_ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";
/// Earliest birth year of a resident ID card.
const BIRTH_YEAR_MIN: i32 = 1900;

/// A document number in its normal form: the only text a person key is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentNumber(String);

impl DocumentNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a document number was refused. Never carries the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("required")]
    Required,
    #[error("only letters, digits, spaces and hyphens are allowed")]
    Charset,
    #[error("a resident ID number has 18 characters, or 15 digits in the legacy form")]
    ResidentLength,
    #[error("a resident ID number is 17 digits and a check digit or X")]
    ResidentFormat,
    #[error("the check digit does not match (GB 11643-1999)")]
    CheckDigit,
    #[error("the birth date is not a real date from 1900 to today")]
    BirthDate,
    #[error("{OTHER_DOCUMENT_LEN_MIN} to {OTHER_DOCUMENT_LEN_MAX} letters and digits")]
    OtherLength,
}

/// Validates and normalises a document number of `kind` (see the module doc); `today` bounds a
/// resident's birth date.
pub fn normalise(
    kind: IdDocumentType,
    raw: &str,
    today: Date,
) -> Result<DocumentNumber, DocumentError> {
    if raw.chars().count() > DOCUMENT_INPUT_CHARS_MAX {
        return Err(match kind {
            IdDocumentType::ResidentIdCard => DocumentError::ResidentLength,
            _ => DocumentError::OtherLength,
        });
    }
    let folded = fold(raw)?;
    if folded.is_empty() {
        return Err(DocumentError::Required);
    }
    match kind {
        IdDocumentType::ResidentIdCard => resident_id(&folded, today).map(DocumentNumber),
        IdDocumentType::Passport
        | IdDocumentType::HkMacaoPermit
        | IdDocumentType::TaiwanPermit
        | IdDocumentType::ForeignPermanentResident => {
            if (OTHER_DOCUMENT_LEN_MIN..=OTHER_DOCUMENT_LEN_MAX).contains(&folded.len()) {
                Ok(DocumentNumber(folded))
            } else {
                Err(DocumentError::OtherLength)
            }
        }
    }
}

/// Spaces, hyphens and invisible characters removed; full-width digits and letters to ASCII;
/// letters upper case. Anything else is refused.
fn fold(raw: &str) -> Result<String, DocumentError> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if is_invisible(c) || is_hyphen(c) || (c.is_whitespace() && !c.is_control()) {
            continue;
        }
        if let Some(d) = digit_value(c) {
            out.push(char::from(b'0' + d));
        } else if let Some(letter) = latin_letter(c) {
            out.push(letter);
        } else {
            return Err(DocumentError::Charset);
        }
    }
    Ok(out)
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FF0D}')
}

/// An ASCII or full-width Latin letter, upper case.
fn latin_letter(c: char) -> Option<char> {
    let ascii = match c {
        'A'..='Z' | 'a'..='z' => c,
        '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            char::from_u32(u32::from(c) - 0xFF21 + u32::from('A'))?
        }
        _ => return None,
    };
    Some(ascii.to_ascii_uppercase())
}

/// A resident ID number of 18 characters (a 15-digit legacy one converted), checked.
fn resident_id(folded: &str, today: Date) -> Result<String, DocumentError> {
    let bytes = folded.as_bytes();
    let number = match bytes.len() {
        15 => {
            if !bytes.iter().all(u8::is_ascii_digit) {
                return Err(DocumentError::ResidentFormat);
            }
            let body = format!("{}19{}", &folded[..6], &folded[6..]);
            let check = check_char(body.as_bytes());
            format!("{body}{}", char::from(check))
        }
        18 => {
            let (body, check) = bytes.split_at(17);
            if !body.iter().all(u8::is_ascii_digit) || !matches!(check[0], b'0'..=b'9' | b'X') {
                return Err(DocumentError::ResidentFormat);
            }
            if check_char(body) != check[0] {
                return Err(DocumentError::CheckDigit);
            }
            folded.to_owned()
        }
        _ => return Err(DocumentError::ResidentLength),
    };
    check_birth_date(&number[6..14], today)?;
    Ok(number)
}

/// The ISO 7064 MOD 11-2 check character of 17 ASCII digits.
fn check_char(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip(RESIDENT_ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    RESIDENT_ID_CHECK_CHARS[(sum % 11) as usize]
}

/// `YYYYMMDD` (ASCII digits): a real date from 1900 to `today`.
fn check_birth_date(text: &str, today: Date) -> Result<(), DocumentError> {
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(|t| t.parse::<u16>().ok());
    let (Some(year), Some(month), Some(day)) = (field(0..4), field(4..6), field(6..8)) else {
        return Err(DocumentError::BirthDate);
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok());
    let day = u8::try_from(day).ok();
    let (Some(month), Some(day)) = (month, day) else {
        return Err(DocumentError::BirthDate);
    };
    match Date::from_calendar_date(i32::from(year), month, day) {
        Ok(date) if date.year() >= BIRTH_YEAR_MIN && date <= today => Ok(()),
        _ => Err(DocumentError::BirthDate),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 11 - 30);

    fn resident(raw: &str) -> Result<String, DocumentError> {
        normalise(IdDocumentType::ResidentIdCard, raw, TODAY).map(|n| n.0)
    }

    fn other(kind: IdDocumentType, raw: &str) -> Result<String, DocumentError> {
        normalise(kind, raw, TODAY).map(|n| n.0)
    }

    #[test]
    fn valid_resident_numbers_stay_as_they_are() {
        for ok in [
            "11010519491231002X",
            "440304198503151231",
            "310115200002294567",
            "510108199912317893",
            "320583197001010046",
            "110101200012310019",
        ] {
            assert_eq!(resident(ok).as_deref(), Ok(ok));
        }
    }

    #[test]
    fn every_spelling_of_one_number_normalises_to_the_same_eighteen_characters() {
        let canonical = Ok("11010519491231002X".to_owned());
        for spelling in [
            "11010519491231002x",
            "１１０１０５１９４９１２３１００２Ｘ",
            "１１０１０５１９４９１２３１００２ｘ",
            " 110105 19491231 002X ",
            "110105-19491231-002X",
            "110105\u{3000}19491231\u{3000}002X",
            "110105\u{200B}1949\u{200C}1231\u{200D}002\u{FEFF}X\u{2060}\u{AD}",
            "110105491231002",
        ] {
            assert_eq!(resident(spelling), canonical, "{spelling:?}");
        }
    }

    #[test]
    fn a_number_already_in_normal_form_keeps_the_person_key_it_was_stored_under() {
        let secrets = crate::secrets::Secrets::from_secret(&[7u8; 32]);
        let code = IdDocumentType::ResidentIdCard.person_key_code();
        for as_given in [
            "11010519491231002X",
            "11010519491231002x",
            "440304198503151231",
        ] {
            let normal = resident(as_given).unwrap();
            assert_eq!(
                secrets.person_key(code, &normal),
                secrets.person_key(code, as_given),
                "{as_given}"
            );
        }
        let code = IdDocumentType::Passport.person_key_code();
        let normal = other(IdDocumentType::Passport, "e12345678").unwrap();
        assert_eq!(
            secrets.person_key(code, &normal),
            secrets.person_key(code, "e12345678")
        );
    }

    #[test]
    fn a_legacy_number_gains_the_century_and_a_computed_check_digit() {
        assert_eq!(
            resident("440304850315123").as_deref(),
            Ok("440304198503151231")
        );
    }

    #[test]
    fn wrong_lengths_characters_and_check_digits_are_refused() {
        assert_eq!(resident(""), Err(DocumentError::Required));
        assert_eq!(resident(" \u{200B} "), Err(DocumentError::Required));
        assert_eq!(
            resident("11010519491231002"),
            Err(DocumentError::ResidentLength)
        );
        assert_eq!(
            resident("11010519491231002X1"),
            Err(DocumentError::ResidentLength)
        );
        assert_eq!(
            resident(&"1".repeat(DOCUMENT_INPUT_CHARS_MAX + 1)),
            Err(DocumentError::ResidentLength)
        );
        assert_eq!(
            resident("110105194912310021"),
            Err(DocumentError::CheckDigit)
        );
        assert_eq!(
            resident("11010519491231X02X"),
            Err(DocumentError::ResidentFormat)
        );
        assert_eq!(
            resident("11010549123100X"),
            Err(DocumentError::ResidentFormat)
        );
        for bad in [
            "110105194912310.2X",
            "11010519491231002X\n",
            "11010519491231002X\t",
            "11010519491231002\u{202E}X",
            "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",
            "11010519491231002X号",
        ] {
            assert_eq!(resident(bad), Err(DocumentError::Charset), "{bad:?}");
        }
    }

    #[test]
    fn impossible_or_future_birth_dates_are_refused() {
        // Each with a correct check digit, so only the date is wrong.
        for body in [
            "11010518991231002", // before 1900
            "11010519490230002", // 30 February
            "11010519491301002", // month 13
            "11010519490000002", // day 0
            "11010520261201002", // tomorrow's month
            "11010520990101002", // the future
        ] {
            let number = format!("{body}{}", char::from(check_char(body.as_bytes())));
            assert_eq!(resident(&number), Err(DocumentError::BirthDate), "{number}");
        }
        let leap = "11010520000229002";
        let number = format!("{leap}{}", char::from(check_char(leap.as_bytes())));
        assert_eq!(resident(&number), Ok(number.clone()));
        let today = "11010520261130002";
        let number = format!("{today}{}", char::from(check_char(today.as_bytes())));
        assert_eq!(resident(&number), Ok(number.clone()));
    }

    #[test]
    fn other_documents_are_folded_upper_cased_and_bounded() {
        use IdDocumentType::*;
        assert_eq!(other(Passport, "e1234 5678").as_deref(), Ok("E12345678"));
        assert_eq!(
            other(Passport, "Ｅ１２３４５６７８").as_deref(),
            Ok("E12345678")
        );
        assert_eq!(
            other(HkMacaoPermit, "h-1234\u{200B}5678").as_deref(),
            Ok("H12345678")
        );
        assert_eq!(other(TaiwanPermit, "12345678").as_deref(), Ok("12345678"));
        assert_eq!(
            other(ForeignPermanentResident, "usa123456789012").as_deref(),
            Ok("USA123456789012")
        );
        assert_eq!(other(Passport, "E123"), Err(DocumentError::OtherLength));
        assert_eq!(
            other(Passport, &"E".repeat(21)),
            Err(DocumentError::OtherLength)
        );
        assert_eq!(other(Passport, "E1234/5678"), Err(DocumentError::Charset));
        assert_eq!(other(Passport, "É12345678"), Err(DocumentError::Charset));
    }
}
