//! The amount and currency parser (`paygate::money`).

use paygate::money::{AMOUNT_TEXT_LEN_MAX, Currency, Money, MoneyError, Sign};

use super::bytes::{Bytes, CURRENCY_CODES};

/// Input: a currency pick (or a 3-byte code), a sign pick, then the amount text.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let pick = usize::from(input.u8());
    let code = match CURRENCY_CODES.get(pick % (CURRENCY_CODES.len() + 1)) {
        Some(code) => (*code).to_owned(),
        None => input.text(4),
    };
    let sign = input.pick(&[Sign::Positive, Sign::NonNegative, Sign::Any]);
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let currency = match Currency::from_code(&code) {
        Ok(currency) => currency,
        Err(e) => {
            assert!(
                matches!(e, MoneyError::UnknownCurrency(_)),
                "{code:?}: {e:?}"
            );
            assert!(!CURRENCY_CODES.contains(&code.as_str()));
            return;
        }
    };
    assert_eq!(currency.code(), code);
    match Money::parse(currency, &text, sign) {
        Ok(money) => accepted(currency, &text, sign, money),
        Err(e) => refused(&text, &e),
    }
}

fn accepted(currency: Currency, text: &str, sign: Sign, money: Money) {
    assert_eq!(money.currency, currency);
    assert!(text.len() <= AMOUNT_TEXT_LEN_MAX);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.'),
        "{text:?} accepted"
    );
    match sign {
        Sign::Positive => assert!(money.minor > 0, "{text:?} accepted as positive"),
        Sign::NonNegative => assert!(money.minor >= 0, "{text:?} accepted as non-negative"),
        Sign::Any => {}
    }
    // Printed with exactly the currency's decimals, and read back to the same amount.
    let printed = money.to_decimal_string();
    let decimals = printed.split_once('.').map_or(0, |(_, f)| f.len());
    assert_eq!(decimals, currency.scale() as usize, "{printed:?}");
    assert_eq!(
        Money::parse(currency, &printed, Sign::Any),
        Ok(money),
        "{text:?}"
    );
}

fn refused(text: &str, e: &MoneyError) {
    match e {
        MoneyError::UnknownCurrency(_) => panic!("a known currency refused as unknown: {text:?}"),
        MoneyError::AmountScale { .. }
        | MoneyError::AmountNotPositive
        | MoneyError::Overflow
        | MoneyError::Malformed => {}
    }
}
