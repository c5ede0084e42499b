//! `paygate.v1.YieldService`: thin handlers. The wire is parsed once, with `TryFrom`, into the
//! yield service's domain types (`Money`, `RequestId`, `AccountId`, dates, enums; `UNSPECIFIED`
//! is refused); past here nothing re-checks the wire.

use rust_decimal::Decimal;
use time::Date;
use tonic::{Request, Response, Status};

use crate::{
    grpc::{
        account::{caller_of, money_pb, timestamp},
        pb,
    },
    ledger::{AccountId, RequestId},
    money::{Currency, Money, Sign},
    yields::{
        AccrualProgress, AutoSweep, HoldingView, IncomeRecord, ProductStatus, ProductView,
        RateView, Redeem, RedeemMode, Redemption, RedemptionStatus, RegisterProduct, SetAutoSweep,
        StoredRate, Subscribe, Subscription, YieldError, YieldService, format_date, parse_date,
        products::check_product_id, rates::parse_rate,
    },
};

/// The gRPC face of the yield service.
#[derive(Clone)]
pub struct YieldApi {
    service: YieldService,
}

impl YieldApi {
    pub fn new(service: YieldService) -> YieldApi {
        YieldApi { service }
    }
}

// ----- parsing the wire ---------------------------------------------------------------------

fn request_id(text: String) -> Result<RequestId, YieldError> {
    RequestId::try_from(text).map_err(|e| YieldError::invalid("request_id", e.to_string()))
}

fn account_id(field: &'static str, text: &str) -> Result<AccountId, YieldError> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(YieldError::invalid(field, "an account id"));
    }
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(AccountId)
        .ok_or_else(|| YieldError::invalid(field, "an account id"))
}

fn product_id(text: String) -> Result<String, YieldError> {
    check_product_id(&text)?;
    Ok(text)
}

fn money(field: &'static str, m: Option<pb::Money>, sign: Sign) -> Result<Money, YieldError> {
    let m = m.ok_or_else(|| YieldError::invalid(field, "required"))?;
    let currency =
        Currency::from_code(&m.currency).map_err(|e| YieldError::invalid(field, e.to_string()))?;
    Money::parse(currency, &m.amount, sign).map_err(|e| YieldError::invalid(field, e.to_string()))
}

fn date(field: &'static str, text: &str) -> Result<Date, YieldError> {
    parse_date(field, text)
}

fn optional_date(field: &'static str, text: &str) -> Result<Option<Date>, YieldError> {
    if text.is_empty() {
        Ok(None)
    } else {
        date(field, text).map(Some)
    }
}

fn status_of(value: i32) -> Result<ProductStatus, YieldError> {
    match pb::ProductStatus::try_from(value) {
        Ok(pb::ProductStatus::Open) => Ok(ProductStatus::Open),
        Ok(pb::ProductStatus::SubscriptionSuspended) => Ok(ProductStatus::SubscriptionSuspended),
        Ok(pb::ProductStatus::Closed) => Ok(ProductStatus::Closed),
        Ok(pb::ProductStatus::Unspecified) | Err(_) => {
            Err(YieldError::invalid("status", "required"))
        }
    }
}

impl TryFrom<pb::SubscribeRequest> for Subscribe {
    type Error = YieldError;

    fn try_from(r: pb::SubscribeRequest) -> Result<Subscribe, YieldError> {
        Ok(Subscribe {
            request_id: request_id(r.request_id)?,
            account: account_id("account_id", &r.account_id)?,
            product_id: product_id(r.product_id)?,
            amount: money("amount", r.amount, Sign::Positive)?,
        })
    }
}

/// Shares are parsed in the product currency's scale (1.00 per share).
struct RedeemWire(pb::RedeemRequest, Currency);

impl TryFrom<RedeemWire> for Redeem {
    type Error = YieldError;

    fn try_from(RedeemWire(r, currency): RedeemWire) -> Result<Redeem, YieldError> {
        let mode = match pb::RedeemMode::try_from(r.mode) {
            Ok(pb::RedeemMode::Normal) => RedeemMode::Normal,
            Ok(pb::RedeemMode::Fast) => RedeemMode::Fast,
            Ok(pb::RedeemMode::Unspecified) | Err(_) => {
                return Err(YieldError::invalid("mode", "NORMAL or FAST"));
            }
        };
        Ok(Redeem {
            request_id: request_id(r.request_id)?,
            account: account_id("account_id", &r.account_id)?,
            product_id: product_id(r.product_id)?,
            shares: Money::parse(currency, &r.shares, Sign::Positive)
                .map_err(|e| YieldError::invalid("shares", e.to_string()))?,
            mode,
        })
    }
}

impl TryFrom<pb::RegisterProductRequest> for RegisterProduct {
    type Error = YieldError;

    fn try_from(r: pb::RegisterProductRequest) -> Result<RegisterProduct, YieldError> {
        Ok(RegisterProduct {
            request_id: request_id(r.request_id)?,
            product_id: product_id(r.product_id)?,
            name: r.name,
            fund_code: r.fund_code,
            fund_manager: r.fund_manager,
            status: status_of(r.status)?,
            min_subscription: money("min_subscription", r.min_subscription, Sign::Positive)?,
            fast_redeem_daily_cap: match r.fast_redeem_daily_cap {
                None => None,
                some => Some(money("fast_redeem_daily_cap", some, Sign::NonNegative)?),
            },
        })
    }
}

impl TryFrom<pb::SetAutoSweepRequest> for SetAutoSweep {
    type Error = YieldError;

    fn try_from(r: pb::SetAutoSweepRequest) -> Result<SetAutoSweep, YieldError> {
        Ok(SetAutoSweep {
            request_id: request_id(r.request_id)?,
            sweep: AutoSweep {
                account: account_id("account_id", &r.account_id)?,
                product_id: product_id(r.product_id)?,
                keep_balance: money("keep_balance", r.keep_balance, Sign::NonNegative)?,
                enabled: r.enabled,
                top_up_payments: r.top_up_payments,
            },
        })
    }
}

// ----- converting back ----------------------------------------------------------------------

fn decimal_text(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// A 万份收益 with its 4 decimals.
fn rate_text(d: Decimal) -> String {
    format!("{d:.4}")
}

fn shares_text(m: Money) -> String {
    m.to_decimal_string()
}

fn stored_rate_pb(r: &StoredRate) -> pb::DailyRate {
    pb::DailyRate {
        business_date: format_date(r.date),
        income_per_ten_thousand_shares: rate_text(r.income_per_10k),
        seven_day_annualized_yield: String::new(),
        publish_time: Some(timestamp(r.published_at_ms)),
        seven_day_annualized_yield_compound: String::new(),
    }
}

fn rate_pb(v: &RateView) -> pb::DailyRate {
    pb::DailyRate {
        seven_day_annualized_yield: decimal_text(v.seven_day_simple),
        seven_day_annualized_yield_compound: decimal_text(v.seven_day_compound),
        ..stored_rate_pb(&v.rate)
    }
}

fn product_pb(v: &ProductView) -> pb::Product {
    let p = &v.product;
    pb::Product {
        product_id: p.product_id.clone(),
        name: p.name.clone(),
        fund_code: p.fund_code.clone(),
        fund_manager: p.fund_manager.clone(),
        currency: p.min_subscription.currency.code().to_owned(),
        status: match p.status {
            ProductStatus::Open => pb::ProductStatus::Open,
            ProductStatus::SubscriptionSuspended => pb::ProductStatus::SubscriptionSuspended,
            ProductStatus::Closed => pb::ProductStatus::Closed,
        } as i32,
        share_price: "1.00".to_owned(),
        min_subscription: Some(money_pb(p.min_subscription)),
        fast_redeem_daily_cap: Some(money_pb(p.fast_redeem_daily_cap)),
        latest_rate: v.latest.as_ref().map(rate_pb),
    }
}

fn subscription_pb(s: &Subscription) -> pb::Subscription {
    pb::Subscription {
        subscription_id: s.subscription_id.clone(),
        account_id: s.account.to_string(),
        product_id: s.product_id.clone(),
        amount: Some(money_pb(s.amount)),
        shares: shares_text(s.amount),
        income_start_date: format_date(s.income_start_date),
        transaction_id: s.transaction.to_string(),
        create_time: Some(timestamp(s.created_at_ms)),
    }
}

fn redemption_pb(r: &Redemption) -> pb::Redemption {
    pb::Redemption {
        redemption_id: r.redemption_id.clone(),
        account_id: r.account.to_string(),
        product_id: r.product_id.clone(),
        shares: shares_text(r.shares),
        amount: Some(money_pb(r.shares)),
        mode: match r.mode {
            RedeemMode::Normal => pb::RedeemMode::Normal,
            RedeemMode::Fast => pb::RedeemMode::Fast,
        } as i32,
        status: match r.status {
            RedemptionStatus::Pending => pb::RedemptionStatus::Pending,
            RedemptionStatus::Succeeded => pb::RedemptionStatus::Succeeded,
        } as i32,
        credit_date: format_date(r.credit_date),
        transaction_id: r
            .credit_transaction
            .map(|t| t.to_string())
            .unwrap_or_default(),
        create_time: Some(timestamp(r.requested_at_ms)),
        credit_time: r.credited_at_ms.map(timestamp),
    }
}

fn holding_pb(h: &HoldingView) -> pb::Holding {
    pb::Holding {
        account_id: h.account.to_string(),
        product_id: h.product_id.clone(),
        shares: shares_text(h.shares),
        earning_shares: shares_text(h.earning_shares),
        pending_shares: shares_text(h.pending_shares),
        market_value: Some(money_pb(h.shares)),
        last_income: Some(money_pb(h.last_income)),
        accumulated_income: Some(money_pb(h.accumulated_income)),
        fast_redeem_remaining: Some(money_pb(h.fast_redeem_remaining)),
        business_date: format_date(h.business_date),
        as_of_time: Some(timestamp(h.as_of_ms)),
        pending_redemptions: Some(money_pb(h.pending_redemptions)),
    }
}

fn income_pb(r: &IncomeRecord) -> pb::IncomeRecord {
    pb::IncomeRecord {
        business_date: format_date(r.date),
        shares: shares_text(r.shares),
        income_per_ten_thousand_shares: rate_text(r.income_per_10k),
        income: Some(money_pb(r.income)),
        transaction_id: r.transaction.map(|t| t.to_string()).unwrap_or_default(),
        post_time: Some(timestamp(r.posted_at_ms)),
    }
}

fn sweep_pb(s: &AutoSweep) -> pb::AutoSweep {
    pb::AutoSweep {
        account_id: s.account.to_string(),
        product_id: s.product_id.clone(),
        keep_balance: Some(money_pb(s.keep_balance)),
        enabled: s.enabled,
        top_up_payments: s.top_up_payments,
    }
}

fn accrual_pb(a: &AccrualProgress, currency: Currency) -> pb::AccrualSummary {
    let m = |minor| Some(money_pb(Money::new(currency, minor)));
    pb::AccrualSummary {
        product_id: a.product_id.clone(),
        business_date: format_date(a.date),
        income_per_ten_thousand_shares: rate_text(a.income_per_10k),
        holders_paid: a.holders_paid,
        eligible_shares: shares_text(Money::new(currency, a.eligible_shares_minor)),
        holders_income: m(a.holders_income_minor),
        rounding: m(a.rounding_minor),
        fund_total: m(a.fund_total_minor),
        complete: a.complete,
    }
}

#[tonic::async_trait]
impl pb::yield_service_server::YieldService for YieldApi {
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let r = request.into_inner();
        if !r.currency.is_empty() {
            Currency::from_code(&r.currency)
                .map_err(|e| YieldError::invalid("currency", e.to_string()))?;
        }
        let page = self
            .service
            .list_products(r.page_size, &r.page_token)
            .await?;
        let products = page
            .items
            .iter()
            .filter(|v| {
                r.currency.is_empty() || v.product.min_subscription.currency.code() == r.currency
            })
            .map(product_pb)
            .collect();
        Ok(Response::new(pb::ListProductsResponse {
            products,
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let id = product_id(request.into_inner().product_id)?;
        let view = self.service.product(&id).await?;
        Ok(Response::new(pb::GetProductResponse {
            product: Some(product_pb(&view)),
            recent_rates: view.recent.iter().map(stored_rate_pb).collect(),
        }))
    }

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<pb::SubscribeResponse>, Status> {
        let caller = caller_of(&request)?;
        let s = Subscribe::try_from(request.into_inner())?;
        let sub = self.service.subscribe(&caller, s).await?;
        Ok(Response::new(pb::SubscribeResponse {
            subscription: Some(subscription_pb(&sub)),
        }))
    }

    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = Redeem::try_from(RedeemWire(request.into_inner(), self.service.currency()))?;
        let redemption = self.service.redeem(&caller, r).await?;
        Ok(Response::new(pb::RedeemResponse {
            redemption: Some(redemption_pb(&redemption)),
        }))
    }

    async fn get_holding(
        &self,
        request: Request<pb::GetHoldingRequest>,
    ) -> Result<Response<pb::GetHoldingResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let account = account_id("account_id", &r.account_id)?;
        let product = product_id(r.product_id)?;
        let h = self.service.holding(&caller, account, &product).await?;
        Ok(Response::new(pb::GetHoldingResponse {
            holding: Some(holding_pb(&h)),
        }))
    }

    async fn list_income(
        &self,
        request: Request<pb::ListIncomeRequest>,
    ) -> Result<Response<pb::ListIncomeResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let account = account_id("account_id", &r.account_id)?;
        let product = product_id(r.product_id)?;
        let start = optional_date("start_date", &r.start_date)?;
        let end = optional_date("end_date", &r.end_date)?;
        let page = self
            .service
            .list_income(
                &caller,
                account,
                &product,
                start,
                end,
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListIncomeResponse {
            income: page.items.iter().map(income_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_redemptions(
        &self,
        request: Request<pb::ListRedemptionsRequest>,
    ) -> Result<Response<pb::ListRedemptionsResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let account = account_id("account_id", &r.account_id)?;
        let product = product_id(r.product_id)?;
        let page = self
            .service
            .list_redemptions(&caller, account, &product, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListRedemptionsResponse {
            redemptions: page.items.iter().map(redemption_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn set_auto_sweep(
        &self,
        request: Request<pb::SetAutoSweepRequest>,
    ) -> Result<Response<pb::SetAutoSweepResponse>, Status> {
        let caller = caller_of(&request)?;
        let s = SetAutoSweep::try_from(request.into_inner())?;
        let sweep = self.service.set_auto_sweep(&caller, s).await?;
        Ok(Response::new(pb::SetAutoSweepResponse {
            auto_sweep: Some(sweep_pb(&sweep)),
        }))
    }

    async fn get_auto_sweep(
        &self,
        request: Request<pb::GetAutoSweepRequest>,
    ) -> Result<Response<pb::GetAutoSweepResponse>, Status> {
        let caller = caller_of(&request)?;
        let account = account_id("account_id", &request.get_ref().account_id)?;
        let sweep = self.service.auto_sweep(&caller, account).await?;
        Ok(Response::new(pb::GetAutoSweepResponse {
            auto_sweep: Some(sweep_pb(&sweep)),
        }))
    }

    async fn register_product(
        &self,
        request: Request<pb::RegisterProductRequest>,
    ) -> Result<Response<pb::RegisterProductResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = RegisterProduct::try_from(request.into_inner())?;
        let view = self.service.register_product(&caller, r).await?;
        Ok(Response::new(pb::RegisterProductResponse {
            product: Some(product_pb(&view)),
        }))
    }

    async fn set_product_status(
        &self,
        request: Request<pb::SetProductStatusRequest>,
    ) -> Result<Response<pb::SetProductStatusResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let request_id = request_id(r.request_id)?;
        let product = product_id(r.product_id)?;
        let status = status_of(r.status)?;
        let view = self
            .service
            .set_product_status(&caller, request_id, &product, status, &r.reason)
            .await?;
        Ok(Response::new(pb::SetProductStatusResponse {
            product: Some(product_pb(&view)),
        }))
    }

    async fn publish_daily_rate(
        &self,
        request: Request<pb::PublishDailyRateRequest>,
    ) -> Result<Response<pb::PublishDailyRateResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let request_id = request_id(r.request_id)?;
        let product = product_id(r.product_id)?;
        let date = date("business_date", &r.business_date)?;
        let rate = parse_rate(&r.income_per_ten_thousand_shares)?;
        let view = self
            .service
            .publish_rate(&caller, request_id, &product, date, rate)
            .await?;
        Ok(Response::new(pb::PublishDailyRateResponse {
            rate: Some(rate_pb(&view)),
        }))
    }

    async fn accrue_income(
        &self,
        request: Request<pb::AccrueIncomeRequest>,
    ) -> Result<Response<pb::AccrueIncomeResponse>, Status> {
        let r = request.into_inner();
        let product = if r.product_id.is_empty() {
            None
        } else {
            Some(product_id(r.product_id)?)
        };
        let date = date("business_date", &r.business_date)?;
        let runs = self.service.accrue(product.as_deref(), date).await?;
        let currency = self.service.currency();
        Ok(Response::new(pb::AccrueIncomeResponse {
            summaries: runs.iter().map(|a| accrual_pb(a, currency)).collect(),
        }))
    }

    async fn run_end_of_day(
        &self,
        request: Request<pb::RunEndOfDayRequest>,
    ) -> Result<Response<pb::RunEndOfDayResponse>, Status> {
        let date = date("business_date", &request.get_ref().business_date)?;
        let done = self.service.end_of_day(date).await?;
        Ok(Response::new(pb::RunEndOfDayResponse {
            sweeps: done.sweeps,
            redemptions_settled: done.redemptions_settled,
        }))
    }
}
