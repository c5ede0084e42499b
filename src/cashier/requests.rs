//! The cashier's requests, in domain types: the gRPC edge parses the wire into these once
//! (request ids, account ids, amounts, enums), so no operation parses text again.
//!
//! Each request is also the input of its idempotency fingerprint. Amounts and account ids
//! serialize as the text the wire carried before these types existed (`{"currency","amount"}`
//! strings and a decimal account id), so a fingerprint stored before keeps matching a retry of
//! the same request written in canonical form.

use serde::{Serialize, Serializer, ser::SerializeStruct};

use crate::{
    ledger::{AccountId, RequestId},
    money::Money,
};

use super::model::{AuthFactor, MerchantType, Product, Scenario};

/// A merchant registration.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterMerchant {
    pub request_id: RequestId,
    pub name: String,
    pub merchant_type: MerchantType,
    /// Empty when the merchant has no service provider.
    pub service_provider_id: String,
    #[serde(serialize_with = "account_text")]
    pub settlement_account_id: AccountId,
    pub products: Vec<Product>,
    pub allowed_callers: Vec<String>,
}

/// An order to create.
#[derive(Debug, Clone, Serialize)]
pub struct CreateOrder {
    pub request_id: RequestId,
    pub merchant_id: String,
    pub merchant_order_no: String,
    #[serde(serialize_with = "money_text")]
    pub amount: Money,
    pub subject: String,
    pub scenario: Scenario,
    pub expires_at_ms: Option<i64>,
}

/// How a payer pays.
#[derive(Debug, Clone, Serialize)]
pub enum PayWith {
    Balance,
    YieldBalance {
        product_id: String,
    },
    BoundCard {
        agreement_id: String,
    },
    Credit {
        line_id: String,
        /// Split at payment (left out of the fingerprint when absent, so a request stored
        /// before this existed replays).
        #[serde(skip_serializing_if = "Option::is_none")]
        instalments: Option<crate::credit::InstalmentTerms>,
    },
    MerchantQr {
        qr_payload: String,
        #[serde(serialize_with = "optional_money_text")]
        amount: Option<Money>,
        factors: Vec<AuthFactor>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct PayOrder {
    pub request_id: RequestId,
    pub order_id: String,
    #[serde(serialize_with = "account_text")]
    pub payer_account_id: AccountId,
    pub with: PayWith,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanPay {
    pub request_id: RequestId,
    pub merchant_id: String,
    pub merchant_order_no: String,
    pub payment_code: String,
    #[serde(serialize_with = "money_text")]
    pub amount: Money,
    pub subject: String,
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefundOrder {
    pub request_id: RequestId,
    pub order_id: String,
    pub merchant_refund_no: String,
    #[serde(serialize_with = "money_text")]
    pub amount: Money,
    pub reason: String,
}

/// An order to close.
#[derive(Debug, Clone)]
pub struct CloseOrder {
    pub request_id: RequestId,
    pub order_id: String,
    pub reason: String,
}

/// A consumer payment code to issue.
#[derive(Debug, Clone)]
pub struct IssuePaymentCode {
    pub request_id: RequestId,
    pub payer_account_id: AccountId,
    pub factors: Vec<AuthFactor>,
}

/// An order key.
#[derive(Debug, Clone)]
pub enum OrderKey {
    Id(String),
    MerchantNo { merchant_id: String, no: String },
}

/// A refund key.
#[derive(Debug, Clone)]
pub enum RefundKey {
    Id(String),
    MerchantNo { merchant_id: String, no: String },
}

/// An amount as the wire wrote it: `{"currency": "CNY", "amount": "12.50"}`.
pub(in crate::cashier) fn money_text<S: Serializer>(
    money: &Money,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut s = serializer.serialize_struct("MoneyText", 2)?;
    s.serialize_field("currency", money.currency.code())?;
    s.serialize_field("amount", &money.to_decimal_string())?;
    s.end()
}

fn optional_money_text<S: Serializer>(
    money: &Option<Money>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match money {
        Some(m) => serializer.serialize_some(&MoneyTextOf(*m)),
        None => serializer.serialize_none(),
    }
}

struct MoneyTextOf(Money);

impl Serialize for MoneyTextOf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        money_text(&self.0, serializer)
    }
}

/// An account id as the wire wrote it: a decimal string.
pub(in crate::cashier) fn account_text<S: Serializer>(
    id: &AccountId,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn fingerprint_text_keeps_the_wire_forms() {
        let cny = Currency::from_code("CNY").unwrap();
        let req = RefundOrder {
            request_id: RequestId::try_from("r-1").unwrap(),
            order_id: "O1".to_owned(),
            merchant_refund_no: String::new(),
            amount: Money::new(cny, 1_250),
            reason: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"request_id":"r-1","order_id":"O1","merchant_refund_no":"","amount":{"currency":"CNY","amount":"12.50"},"reason":""}"#
        );
        let pay = PayOrder {
            request_id: RequestId::try_from("p-1").unwrap(),
            order_id: String::new(),
            payer_account_id: AccountId(42),
            with: PayWith::MerchantQr {
                qr_payload: "q".to_owned(),
                amount: Some(Money::new(cny, 5)),
                factors: vec![AuthFactor::Password],
            },
        };
        assert_eq!(
            serde_json::to_string(&pay).unwrap(),
            r#"{"request_id":"p-1","order_id":"","payer_account_id":"42","with":{"MerchantQr":{"qr_payload":"q","amount":{"currency":"CNY","amount":"0.05"},"factors":["PASSWORD"]}}}"#
        );
    }
}
