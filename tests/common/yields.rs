//! Helpers of the yield service's tests: requests with fresh ids, the operator's runs, and the
//! gateway's manual clock moved from business date to business date.

use paygate::grpc::pb::{
    self, AccrueIncomeRequest, GetHoldingRequest, PublishDailyRateRequest, RedeemMode,
    RedeemRequest, RegisterProductRequest, SubscribeRequest,
    yield_service_client::YieldServiceClient,
};
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};
use tonic::transport::Channel;

use super::{TestApp, cny, request_id};

pub type Yields = YieldServiceClient<Channel>;

pub const OPERATOR: &str = "core-banking";
pub const CUSTOMER: &str = "mobile-backend";

pub async fn yields(app: &TestApp, caller: &str) -> Yields {
    YieldServiceClient::new(app.channel(caller).await)
}

pub fn register_req(product: &str, status: pb::ProductStatus, min: &str) -> RegisterProductRequest {
    RegisterProductRequest {
        request_id: request_id("register"),
        product_id: product.to_owned(),
        name: format!("{product} money fund"),
        fund_code: "000198".to_owned(),
        fund_manager: "Tianhong".to_owned(),
        status: status as i32,
        min_subscription: Some(cny(min)),
        fast_redeem_daily_cap: None,
    }
}

pub async fn register(y: &mut Yields, product: &str, status: pb::ProductStatus, min: &str) {
    y.register_product(register_req(product, status, min))
        .await
        .expect("product registers");
}

pub fn subscribe_req(account: &str, product: &str, amount: &str) -> SubscribeRequest {
    SubscribeRequest {
        request_id: request_id("sub"),
        account_id: account.to_owned(),
        product_id: product.to_owned(),
        amount: Some(cny(amount)),
    }
}

pub fn redeem_req(account: &str, product: &str, shares: &str, mode: RedeemMode) -> RedeemRequest {
    RedeemRequest {
        request_id: request_id("redeem"),
        account_id: account.to_owned(),
        product_id: product.to_owned(),
        shares: shares.to_owned(),
        mode: mode as i32,
    }
}

pub async fn publish(y: &mut Yields, product: &str, date: Date, rate: &str) -> pb::DailyRate {
    y.publish_daily_rate(PublishDailyRateRequest {
        request_id: request_id("rate"),
        product_id: product.to_owned(),
        business_date: date.to_string(),
        income_per_ten_thousand_shares: rate.to_owned(),
    })
    .await
    .expect("rate publishes")
    .into_inner()
    .rate
    .expect("rate")
}

pub async fn accrue(y: &mut Yields, product: &str, date: Date) -> pb::AccrualSummary {
    y.accrue_income(AccrueIncomeRequest {
        product_id: product.to_owned(),
        business_date: date.to_string(),
    })
    .await
    .expect("accrual runs")
    .into_inner()
    .summaries
    .pop()
    .expect("one summary")
}

pub async fn holding(y: &mut Yields, account: &str, product: &str) -> pb::Holding {
    y.get_holding(GetHoldingRequest {
        account_id: account.to_owned(),
        product_id: product.to_owned(),
    })
    .await
    .expect("holding")
    .into_inner()
    .holding
    .expect("holding")
}

/// "1234.56" in minor units.
pub fn minor(text: &str) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, "00"));
    int.parse::<i64>().expect("int") * 100 + frac.parse::<i64>().expect("frac")
}

/// The business date of the gateway's clock (Asia/Shanghai, cutover at midnight).
pub fn today(app: &TestApp) -> Date {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(app.clock.now_ms()) * 1_000_000)
        .expect("now")
        .to_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"));
    at.date()
}

/// Moves the clock to 01:00 (Asia/Shanghai) of `date`.
pub fn advance_to(app: &TestApp, date: Date) {
    let target = date
        .with_hms(1, 0, 0)
        .expect("time")
        .assume_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"));
    let target_ms = i64::try_from(target.unix_timestamp_nanos() / 1_000_000).expect("ms");
    let now = app.clock.now_ms();
    assert!(target_ms > now, "the clock only moves forward");
    app.clock
        .advance_ms(u64::try_from(target_ms - now).expect("delta"));
}

/// The next Monday after the clock's date.
pub fn next_monday(app: &TestApp) -> Date {
    let mut d = today(app) + Duration::days(1);
    while d.weekday() != Weekday::Monday {
        d += Duration::days(1);
    }
    d
}

/// The ledger as its database holds it, read directly (both back ends, through sqlx's Any
/// driver): what the yield service's answers do not show.
pub mod rows {
    use std::collections::BTreeMap;

    use sqlx::{AnyConnection, Connection, Row, any::AnyRow};

    /// The rows of one query, on a connection of its own (`bind`: the `$1` of the query).
    async fn fetch(url: &str, sql: &str, bind: Option<&str>) -> Vec<AnyRow> {
        sqlx::any::install_default_drivers();
        let mut db = AnyConnection::connect(url).await.expect("database");
        let mut query = sqlx::query(sql);
        if let Some(value) = bind {
            query = query.bind(value.to_owned());
        }
        let rows = query
            .fetch_all(&mut db)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        db.close().await.ok();
        rows
    }

    fn metadata(text: &str) -> BTreeMap<String, String> {
        serde_json::from_str(text).expect("metadata is a JSON map of strings")
    }

    /// Journal transactions, every kind.
    pub async fn journal_rows(url: &str) -> i64 {
        let rows = fetch(url, "SELECT COUNT(*) FROM journal_transactions", None).await;
        rows[0].get(0)
    }

    /// Every journal transaction of this `type` (e.g. `yield_income`): its metadata and the
    /// amount of its first leg (minor units), in journal order.
    pub async fn postings_of_type(url: &str, kind: &str) -> Vec<(BTreeMap<String, String>, i64)> {
        let sql = "SELECT t.metadata, e.amount_minor FROM journal_transactions t \
                   JOIN journal_entries e ON e.seq = t.seq AND e.idx = 0 ORDER BY t.seq";
        fetch(url, sql, None)
            .await
            .iter()
            .map(|r| (metadata(&r.get::<String, _>(0)), r.get::<i64, _>(1)))
            .filter(|(m, _)| m.get("type").map(String::as_str) == Some(kind))
            .collect()
    }

    /// Ids of the documents of one kind (e.g. `yield_income`).
    pub async fn document_ids(url: &str, kind: &str) -> Vec<String> {
        let sql = "SELECT id FROM documents WHERE kind = $1 ORDER BY id";
        let rows = fetch(url, sql, Some(kind)).await;
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Posted balance (credits − debits, minor units, summed from the journal entries) of every
    /// ledger account of `kind`, by its `purpose` metadata (or its id when it has none).
    pub async fn balances_of_kind(url: &str, kind: &str) -> BTreeMap<String, i64> {
        let sql = "SELECT a.id, a.metadata, CAST(COALESCE(SUM(CASE WHEN e.side = 'C' \
                   THEN e.amount_minor ELSE -e.amount_minor END), 0) AS BIGINT) \
                   FROM accounts a LEFT JOIN journal_entries e ON e.account_id = a.id \
                   WHERE a.kind = $1 GROUP BY a.id, a.metadata";
        fetch(url, sql, Some(kind))
            .await
            .iter()
            .map(|r| {
                let name = metadata(&r.get::<String, _>(1))
                    .remove("purpose")
                    .unwrap_or_else(|| r.get::<i64, _>(0).to_string());
                (name, r.get::<i64, _>(2))
            })
            .collect()
    }
}
