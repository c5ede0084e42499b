//! Exact money: ISO 4217 currencies with their minor-unit scale, amounts as integer minor units
//! (`i64`), parsed from and printed to decimal strings with `rust_decimal`. Never a float.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest decimal string accepted by [`Money::parse`], in bytes (an `i64` has 19 digits).
pub const AMOUNT_TEXT_LEN_MAX: usize = 32;

/// The currencies this gateway knows, with their ISO 4217 minor-unit scale.
const CURRENCIES: &[(&str, u32)] = &[
    ("AUD", 2),
    ("BHD", 3),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MOP", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("SGD", 2),
    ("TWD", 2),
    ("USD", 2),
];

/// Why an amount or currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error("{currency} allows {scale} decimal places")]
    AmountScale { currency: Currency, scale: u32 },
    #[error("amount must be positive")]
    AmountNotPositive,
    #[error("amount overflows")]
    Overflow,
    #[error("amount is not a decimal number")]
    Malformed,
}

/// An ISO 4217 currency known to the gateway. Only [`Currency::from_code`] makes one, so its
/// scale is always known.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency {
    code: [u8; 3],
    scale: u8,
}

impl Currency {
    pub const CNY: Currency = Currency {
        code: *b"CNY",
        scale: 2,
    };
    pub const USD: Currency = Currency {
        code: *b"USD",
        scale: 2,
    };
    pub const JPY: Currency = Currency {
        code: *b"JPY",
        scale: 0,
    };

    /// The currency with this upper-case ISO 4217 code; an unknown code is an error.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, scale)| {
                let bytes = c.as_bytes();
                Currency {
                    code: [bytes[0], bytes[1], bytes[2]],
                    scale: *scale as u8,
                }
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(8).collect()))
    }

    pub fn code(&self) -> &str {
        // The code was copied from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Digits after the decimal point (CNY 2, JPY 0).
    pub fn scale(&self) -> u32 {
        u32::from(self.scale)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// Which signs [`Money::parse`] accepts: the caller says where zero or negative is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// Greater than zero (every posting amount).
    Positive,
    /// Zero or more.
    NonNegative,
    /// Any sign (balances, adjustments).
    Any,
}

/// An exact amount: integer minor units (fen, cents) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub currency: Currency,
    pub minor: i64,
}

impl Money {
    pub fn new(currency: Currency, minor: i64) -> Money {
        Money { currency, minor }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { currency, minor: 0 }
    }

    /// Parses a plain decimal string (`"12.34"`, `"-5"`, `"0.10"`). More significant fractional
    /// digits than the currency's scale is [`MoneyError::AmountScale`]: nothing is ever rounded.
    /// Trailing zeros are not significant (`"12.340"` CNY is 1234 fen), so they are accepted.
    pub fn parse(currency: Currency, text: &str, sign: Sign) -> Result<Money, MoneyError> {
        if text.is_empty() || text.len() > AMOUNT_TEXT_LEN_MAX {
            return Err(MoneyError::Malformed);
        }
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
            return Err(MoneyError::Malformed);
        }
        let value = Decimal::from_str_exact(text).map_err(|_| MoneyError::Overflow)?;
        let value = value.normalize();
        if value.scale() > currency.scale() {
            return Err(MoneyError::AmountScale {
                currency,
                scale: currency.scale(),
            });
        }
        let factor = Decimal::from(10_i64.pow(currency.scale()));
        let minor_dec = value.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        let minor = i64::try_from(minor_dec).map_err(|_| MoneyError::Overflow)?;
        let money = Money { currency, minor };
        money.check_sign(sign)?;
        Ok(money)
    }

    /// Refuses a sign the caller does not allow.
    pub fn check_sign(&self, sign: Sign) -> Result<(), MoneyError> {
        let ok = match sign {
            Sign::Positive => self.minor > 0,
            Sign::NonNegative => self.minor >= 0,
            Sign::Any => true,
        };
        if ok {
            Ok(())
        } else {
            Err(MoneyError::AmountNotPositive)
        }
    }

    /// The amount with exactly the currency's number of decimals (`"12.30"`, JPY `"5"`).
    pub fn to_decimal_string(&self) -> String {
        Decimal::new(self.minor, self.currency.scale()).to_string()
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        debug_assert_eq!(self.currency, other.currency);
        if self.currency != other.currency {
            return Err(MoneyError::Malformed);
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        debug_assert_eq!(self.currency, other.currency);
        if self.currency != other.currency {
            return Err(MoneyError::Malformed);
        }
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// A `Decimal` stored as its exact decimal text (documents are JSON; no float on the way):
/// `#[serde(with = "crate::money::decimal_text")]`.
pub mod decimal_text {
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        Decimal::from_str(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(s: &str) -> Result<Money, MoneyError> {
        Money::parse(Currency::CNY, s, Sign::Any)
    }

    #[test]
    fn parses_and_formats_with_the_currency_scale() {
        assert_eq!(cny("12.34").unwrap().minor, 1234);
        assert_eq!(cny("12.3").unwrap().minor, 1230);
        assert_eq!(cny("12").unwrap().minor, 1200);
        assert_eq!(cny("12.340").unwrap().minor, 1234);
        assert_eq!(cny("-0.01").unwrap().minor, -1);
        assert_eq!(Money::new(Currency::CNY, 1230).to_decimal_string(), "12.30");
        assert_eq!(Money::new(Currency::CNY, -5).to_decimal_string(), "-0.05");
        assert_eq!(Money::new(Currency::JPY, 500).to_decimal_string(), "500");
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(Money::new(kwd, 1).to_decimal_string(), "0.001");
    }

    #[test]
    fn too_many_decimals_is_refused_never_rounded() {
        assert!(matches!(cny("1.234"), Err(MoneyError::AmountScale { .. })));
        assert!(matches!(
            Money::parse(Currency::JPY, "1.5", Sign::Any),
            Err(MoneyError::AmountScale { .. })
        ));
        assert_eq!(
            Money::parse(Currency::JPY, "7", Sign::Any).unwrap().minor,
            7
        );
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in [
            "", "abc", "1.", ".5", "1e5", "+1", "1_000", " 1", "1,00", "--1",
        ] {
            assert_eq!(cny(bad), Err(MoneyError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(cny("92233720368547758.08"), Err(MoneyError::Overflow));
        assert_eq!(cny("92233720368547758.07").unwrap().minor, i64::MAX);
        let max = Money::new(Currency::CNY, i64::MAX);
        assert_eq!(
            max.checked_add(Money::new(Currency::CNY, 1)),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn sign_is_the_callers_choice() {
        assert_eq!(
            Money::parse(Currency::CNY, "0", Sign::Positive),
            Err(MoneyError::AmountNotPositive)
        );
        assert_eq!(
            Money::parse(Currency::CNY, "-1", Sign::NonNegative),
            Err(MoneyError::AmountNotPositive)
        );
        assert!(Money::parse(Currency::CNY, "0", Sign::NonNegative).is_ok());
    }

    #[test]
    fn unknown_currency_is_an_error() {
        assert!(matches!(
            Currency::from_code("XXX"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(Currency::from_code("cny").is_err());
        assert_eq!(Currency::from_code("KRW").unwrap().scale(), 0);
    }
}
