//! Bound cards: a person's Class I card number is checked (digits, length, Luhn), tokenised and
//! masked on the way in, and never stored, logged or returned in full (PBOC 银发〔2016〕170号).

use crate::{
    secrets::Secrets,
    text::{CARD_DIGITS_MAX, CARD_DIGITS_MIN, luhn_valid},
};

/// What is kept of a bound card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundCard {
    /// HMAC token of the number: equal numbers, equal tokens.
    pub token: String,
    pub first_six: String,
    pub last_four: String,
    /// The quick-pay agreement (协议支付) number issued when the card was bound.
    pub agreement_id: String,
}

impl BoundCard {
    /// `622202******0123` style: first six, last four.
    pub fn masked(&self) -> String {
        format!("{}******{}", self.first_six, self.last_four)
    }
}

/// Why a card number was refused. The number itself is never part of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("a card number has {CARD_DIGITS_MIN} to {CARD_DIGITS_MAX} digits and nothing else")]
    Format,
    #[error("the card number fails its check digit")]
    CheckDigit,
}

/// Validates and tokenises a card number.
pub fn bind(secrets: &Secrets, number: &str, agreement_id: String) -> Result<BoundCard, CardError> {
    let digits = number.trim();
    if !(CARD_DIGITS_MIN..=CARD_DIGITS_MAX).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CardError::Format);
    }
    let values: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    if !luhn_valid(&values) {
        return Err(CardError::CheckDigit);
    }
    Ok(BoundCard {
        token: secrets.card_token(digits),
        first_six: digits[..6].to_owned(),
        last_four: digits[digits.len() - 4..].to_owned(),
        agreement_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_number_is_kept_only_as_token_and_mask() {
        let secrets = Secrets::from_secret(&[1u8; 32]);
        let card = bind(&secrets, "6222021234567890128", "agr-1".into()).expect("valid");
        assert_eq!(card.masked(), "622202******0128");
        assert!(!format!("{card:?}").contains("6222021234567890128"));
    }

    #[test]
    fn malformed_and_mistyped_numbers_are_refused() {
        let secrets = Secrets::from_secret(&[1u8; 32]);
        assert_eq!(
            bind(&secrets, "6222-0212", "a".into()),
            Err(CardError::Format)
        );
        assert_eq!(
            bind(&secrets, "6222021234567890123", "a".into()),
            Err(CardError::CheckDigit)
        );
    }
}
