//! The wire parsed once into the cashier's domain requests: request ids, account ids, amounts
//! and enums. A request that does not parse is INVALID_ARGUMENT before any service code runs.

use tonic::Status;

use super::{factors_of, invalid, method_of, scenario_of};
use crate::{
    cashier::{
        CashierError, CloseOrder, CreateOrder, InvalidFeeRate, IssuePaymentCode, MerchantType,
        PayOrder, PayWith, Product, RefundOrder, RegisterMerchant, ScanPay, Scenario,
    },
    grpc::{account::millis, pb},
    ledger::{AccountId, LedgerError, REQUEST_ID_LEN_MAX, RequestId},
    money::{Currency, Money, Sign},
};

fn request_id(text: String) -> Result<RequestId, Status> {
    RequestId::try_from(text).map_err(|_| {
        invalid(
            "request_id",
            format!("1..={REQUEST_ID_LEN_MAX} printable ASCII characters, no '#'"),
        )
    })
}

pub(super) fn account_id(field: &'static str, text: &str) -> Result<AccountId, Status> {
    let digits = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|id| *id > 0)
        .map(AccountId)
        .ok_or_else(|| invalid(field, "an account id"))
}

/// A positive amount in its currency's minor units. Whether the cashier takes that currency
/// is the service's rule.
fn amount_of(money: Option<pb::Money>) -> Result<Money, Status> {
    let money = money.unwrap_or_default();
    if money.currency.is_empty() || money.amount.is_empty() {
        return Err(invalid("amount", "currency and amount are required"));
    }
    let refused = |e| Status::from(CashierError::from(LedgerError::from(e)));
    let currency = Currency::from_code(&money.currency).map_err(refused)?;
    Money::parse(currency, &money.amount, Sign::Positive).map_err(refused)
}

impl TryFrom<pb::RegisterMerchantRequest> for RegisterMerchant {
    type Error = Status;

    fn try_from(r: pb::RegisterMerchantRequest) -> Result<RegisterMerchant, Status> {
        let merchant_type = match pb::MerchantType::try_from(r.merchant_type) {
            Ok(pb::MerchantType::Normal) => MerchantType::Normal,
            Ok(pb::MerchantType::ServiceProvider) => MerchantType::ServiceProvider,
            Ok(pb::MerchantType::SubMerchant) => MerchantType::SubMerchant,
            Ok(pb::MerchantType::Unspecified) | Err(_) => {
                return Err(invalid("merchant_type", "required"));
            }
        };
        let products = r
            .products
            .iter()
            .map(product_of)
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(RegisterMerchant {
            request_id: request_id(r.request_id)?,
            name: r.name,
            merchant_type,
            service_provider_id: r.service_provider_id,
            settlement_account_id: account_id("settlement_account_id", &r.settlement_account_id)?,
            products,
            allowed_callers: r.allowed_callers,
        })
    }
}

fn product_of(p: &pb::PaymentProduct) -> Result<Product, Status> {
    Ok(Product {
        method: method_of(p.method, "products.method")?,
        scenario: scenario_of(p.scenario, "products.scenario")?,
        fee_rate: p
            .fee_rate
            .parse()
            .map_err(|e: InvalidFeeRate| invalid("products.fee_rate", e.to_string()))?,
    })
}

impl TryFrom<pb::CreateOrderRequest> for CreateOrder {
    type Error = Status;

    fn try_from(r: pb::CreateOrderRequest) -> Result<CreateOrder, Status> {
        Ok(CreateOrder {
            request_id: request_id(r.request_id)?,
            merchant_id: r.merchant_id,
            merchant_order_no: r.merchant_order_no,
            scenario: required_scenario(r.scenario, "required")?,
            amount: amount_of(r.amount)?,
            subject: r.subject,
            expires_at_ms: r.expire_time.as_ref().map(millis),
        })
    }
}

impl TryFrom<pb::CloseOrderRequest> for CloseOrder {
    type Error = Status;

    fn try_from(r: pb::CloseOrderRequest) -> Result<CloseOrder, Status> {
        Ok(CloseOrder {
            request_id: request_id(r.request_id)?,
            order_id: r.order_id,
            reason: r.reason,
        })
    }
}

impl TryFrom<pb::PayRequest> for PayOrder {
    type Error = Status;

    fn try_from(r: pb::PayRequest) -> Result<PayOrder, Status> {
        let request_id = request_id(r.request_id)?;
        let payer_account_id = account_id("payer_account_id", &r.payer_account_id)?;
        let with = match r.method {
            Some(pb::pay_request::Method::Balance(_)) => PayWith::Balance,
            Some(pb::pay_request::Method::YieldBalance(y)) => PayWith::YieldBalance {
                product_id: y.product_id,
            },
            Some(pb::pay_request::Method::BoundCard(c)) => PayWith::BoundCard {
                agreement_id: c.agreement_id,
            },
            Some(pb::pay_request::Method::Credit(c)) => {
                crate::credit::check_line_id(&c.credit_line_id).map_err(Status::from)?;
                PayWith::Credit {
                    instalments: instalment_terms(c.instalment_count, c.instalment_method)?,
                    line_id: c.credit_line_id,
                }
            }
            Some(pb::pay_request::Method::MerchantQr(q)) => PayWith::MerchantQr {
                amount: q.amount.map(|m| amount_of(Some(m))).transpose()?,
                factors: factors_of(&q.verified_factors)?,
                qr_payload: q.qr_payload,
            },
            None => return Err(invalid("method", "required")),
        };
        Ok(PayOrder {
            request_id,
            order_id: r.order_id,
            payer_account_id,
            with,
        })
    }
}

/// A split at payment: none for a count of 0 with no method; else 3, 6 or 12 with a method.
fn instalment_terms(
    count: i32,
    method: i32,
) -> Result<Option<crate::credit::InstalmentTerms>, Status> {
    use crate::credit::InstalmentMethod;
    let method = pb::InstalmentMethod::try_from(method).unwrap_or_default();
    if count == 0 && method == pb::InstalmentMethod::Unspecified {
        return Ok(None);
    }
    let count = u32::try_from(count)
        .ok()
        .filter(|n| crate::credit::schedule::INSTALMENT_COUNTS.contains(n))
        .ok_or_else(|| invalid("credit.instalment_count", "3, 6 or 12"))?;
    let method = match method {
        pb::InstalmentMethod::EqualPrincipal => InstalmentMethod::EqualPrincipal,
        pb::InstalmentMethod::EqualInstalment => InstalmentMethod::EqualInstalment,
        pb::InstalmentMethod::Unspecified => {
            return Err(invalid(
                "credit.instalment_method",
                "EQUAL_PRINCIPAL or EQUAL_INSTALMENT",
            ));
        }
    };
    Ok(Some(crate::credit::InstalmentTerms { count, method }))
}

impl TryFrom<pb::IssuePaymentCodeRequest> for IssuePaymentCode {
    type Error = Status;

    fn try_from(r: pb::IssuePaymentCodeRequest) -> Result<IssuePaymentCode, Status> {
        let factors = factors_of(&r.verified_factors)?;
        Ok(IssuePaymentCode {
            request_id: request_id(r.request_id)?,
            payer_account_id: account_id("payer_account_id", &r.payer_account_id)?,
            factors,
        })
    }
}

impl TryFrom<pb::ScanPayRequest> for ScanPay {
    type Error = Status;

    fn try_from(r: pb::ScanPayRequest) -> Result<ScanPay, Status> {
        Ok(ScanPay {
            request_id: request_id(r.request_id)?,
            merchant_id: r.merchant_id,
            merchant_order_no: r.merchant_order_no,
            payment_code: r.payment_code,
            scenario: required_scenario(r.scenario, "must be POS")?,
            amount: amount_of(r.amount)?,
            subject: r.subject,
        })
    }
}

impl TryFrom<pb::RefundRequest> for RefundOrder {
    type Error = Status;

    fn try_from(r: pb::RefundRequest) -> Result<RefundOrder, Status> {
        Ok(RefundOrder {
            request_id: request_id(r.request_id)?,
            order_id: r.order_id,
            merchant_refund_no: r.merchant_refund_no,
            amount: amount_of(r.amount)?,
            reason: r.reason,
        })
    }
}

/// A request's scenario: none at all is refused with `missing`, an unknown one like any other.
fn required_scenario(value: i32, missing: &'static str) -> Result<Scenario, Status> {
    if value == 0 {
        return Err(invalid("scenario", missing));
    }
    scenario_of(value, "scenario")
}
