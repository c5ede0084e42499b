//! The services: electronic accounts, the cashier, and the callers with their grants.

use serde::{Deserialize, Serialize};

/// Electronic accounts (电子账户): class rules with the regulatory defaults, counted per business
/// date in Asia/Shanghai. Amounts are decimal strings in `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Currency of personal electronic accounts (they are RMB accounts).
    pub currency: String,
    /// Per person per bank (rule): at most this many open Class II and Class III accounts.
    pub class_ii_per_person_max: u32,
    pub class_iii_per_person_max: u32,
    /// Class II (银发〔2015〕392号 / 2016 302号): non-bound inflows and outflows.
    pub class_ii_non_bound_inflow_per_day: String,
    pub class_ii_non_bound_inflow_per_year: String,
    pub class_ii_non_bound_outflow_per_day: String,
    pub class_ii_non_bound_outflow_per_year: String,
    /// Class III (银发〔2018〕16号): balance cap and outflows.
    pub class_iii_balance_max: String,
    pub class_iii_outflow_per_day: String,
    pub class_iii_outflow_per_year: String,
    /// Business date: UTC offset of the bank's calendar (Asia/Shanghai = +480) and the cutover
    /// (日切) minute of the local day at which the date rolls.
    pub business_day_utc_offset_minutes: i32,
    pub business_day_cutover_minute: u32,
    /// How long a withdrawal or top-up reservation waits for the clearing network.
    pub clearing_reservation_timeout_ms: u64,
    /// List pages: default and ceiling of `page_size`.
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// Shortest time between two reads of one WatchAccount stream; it reads only after the ledger
    /// committed something (`ledger.changes_poll_interval_ms`), so an idle stream never reads.
    pub watch_poll_interval_ms: u64,
}

/// The quick cashier (快捷收银台): order expiry, payment codes, barcode limits (rule,
/// 银发〔2017〕296号) per payer per business date, and the bank's own callers. Amounts are
/// decimal strings in the electronic-account currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CashierConfig {
    /// Expiry of an order created without one, and the longest expiry a caller may ask for.
    pub order_expiry_default_ms: u64,
    pub order_expiry_max_ms: u64,
    /// How long a consumer-presented payment code (付款码) is accepted.
    pub payment_code_ttl_ms: u64,
    /// Static merchant code payments per payer per day.
    pub static_code_per_day: String,
    /// Dynamic code payments per payer per day by risk level (A: the amount agreed with the
    /// customer, one bank-wide figure here).
    pub dynamic_code_a_per_day: String,
    pub dynamic_code_b_per_day: String,
    pub dynamic_code_c_per_day: String,
    /// Callers that act for every merchant and may register merchants (the bank's own systems).
    pub bank_callers: Vec<String>,
    /// Shortest time between two reads of one SubscribeEvents stream; it reads only after the
    /// ledger committed something (`ledger.changes_poll_interval_ms`), so an idle one never reads.
    pub events_poll_interval_ms: u64,
    /// How often unpaid orders past their expiry are closed (with an ORDER_CLOSED event).
    pub expiry_sweep_interval_ms: u64,
}

impl Default for CashierConfig {
    fn default() -> Self {
        CashierConfig {
            order_expiry_default_ms: 30 * 60_000,
            order_expiry_max_ms: 7 * 24 * 3_600_000,
            payment_code_ttl_ms: 60_000,
            static_code_per_day: "500.00".to_owned(),
            dynamic_code_a_per_day: "50000.00".to_owned(),
            dynamic_code_b_per_day: "5000.00".to_owned(),
            dynamic_code_c_per_day: "1000.00".to_owned(),
            bank_callers: vec![
                "core-banking".to_owned(),
                "loadtest".to_owned(),
                "auditor".to_owned(),
            ],
            events_poll_interval_ms: 200,
            expiry_sweep_interval_ms: 1_000,
        }
    }
}

/// A named caller: the certificate identities that are this caller, and the methods it may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Stable caller name, used in logs, metrics and idempotency scopes.
    pub name: String,
    /// Certificate identities (a SAN DNS name, URI or e-mail, or the subject CN) that map to this caller.
    pub identities: Vec<String>,
    /// Grants: `*` (everything), `paygate.v1.AccountService/*` (a whole service) or
    /// `paygate.v1.AccountService/GetAccount` (one method). Health and reflection are open to
    /// every caller holding a valid certificate.
    pub grants: Vec<String>,
    /// Per-caller rate limit override.
    #[serde(default)]
    pub rate_per_s: Option<u32>,
    #[serde(default)]
    pub burst: Option<u32>,
    /// Per-caller overrides of `limits.caller_concurrent_calls_max` and `limits.caller_streams_max`.
    #[serde(default)]
    pub concurrent_calls_max: Option<usize>,
    #[serde(default)]
    pub streams_max: Option<usize>,
    /// Which accounts this caller may touch: `all`, or `own` (only accounts it opened, e.g. a
    /// mobile back end and its own customers).
    #[serde(default)]
    pub account_scope: AccountScope,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountScope {
    #[default]
    All,
    Own,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            currency: "CNY".to_owned(),
            class_ii_per_person_max: 5,
            class_iii_per_person_max: 5,
            class_ii_non_bound_inflow_per_day: "10000.00".to_owned(),
            class_ii_non_bound_inflow_per_year: "200000.00".to_owned(),
            class_ii_non_bound_outflow_per_day: "10000.00".to_owned(),
            class_ii_non_bound_outflow_per_year: "200000.00".to_owned(),
            class_iii_balance_max: "2000.00".to_owned(),
            class_iii_outflow_per_day: "2000.00".to_owned(),
            class_iii_outflow_per_year: "50000.00".to_owned(),
            business_day_utc_offset_minutes: 480,
            business_day_cutover_minute: 0,
            clearing_reservation_timeout_ms: 600_000,
            page_size_default: 50,
            page_size_max: 500,
            watch_poll_interval_ms: 200,
        }
    }
}

/// The sample callers of the development PKI (`paygate certs init`), with grants that show the model.
pub fn default_callers() -> Vec<CallerConfig> {
    let caller = |name: &str, grants: &[&str]| CallerConfig {
        name: name.to_owned(),
        identities: vec![name.to_owned()],
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
        rate_per_s: None,
        burst: None,
        concurrent_calls_max: None,
        streams_max: None,
        account_scope: if name == "mobile-backend" {
            AccountScope::Own
        } else {
            AccountScope::All
        },
    };
    vec![
        caller("core-banking", &["*"]),
        // A mobile back end serves its own customers: no freezes or holds (those are the bank's).
        caller(
            "mobile-backend",
            &[
                "paygate.v1.AccountService/OpenAccount",
                "paygate.v1.AccountService/GetAccount",
                "paygate.v1.AccountService/ListAccounts",
                "paygate.v1.AccountService/GetBalance",
                "paygate.v1.AccountService/Transfer",
                "paygate.v1.AccountService/TopUp",
                "paygate.v1.AccountService/Withdraw",
                "paygate.v1.AccountService/CloseAccount",
                "paygate.v1.AccountService/ListEntries",
                "paygate.v1.AccountService/WatchAccount",
                "paygate.v1.CashierService/*",
                "paygate.v1.YieldService/ListProducts",
                "paygate.v1.YieldService/GetProduct",
                "paygate.v1.YieldService/Subscribe",
                "paygate.v1.YieldService/Redeem",
                "paygate.v1.YieldService/GetHolding",
                "paygate.v1.YieldService/ListIncome",
                "paygate.v1.YieldService/ListRedemptions",
                "paygate.v1.YieldService/SetAutoSweep",
                "paygate.v1.YieldService/GetAutoSweep",
                "paygate.v1.CreditService/GetCreditLine",
                "paygate.v1.CreditService/Repay",
                "paygate.v1.CreditService/GetRepayment",
                "paygate.v1.CreditService/SplitDrawdown",
                "paygate.v1.CreditService/ListInstalments",
            ],
        ),
        caller("merchant-gateway", &["paygate.v1.CashierService/*"]),
        caller("loadtest", &["*"]),
        caller(
            "auditor",
            &[
                "paygate.v1.AccountService/GetAccount",
                "paygate.v1.AccountService/ListAccounts",
                "paygate.v1.AccountService/GetBalance",
                "paygate.v1.AccountService/ListEntries",
                "paygate.v1.CashierService/GetMerchant",
                "paygate.v1.CashierService/GetOrder",
                "paygate.v1.CashierService/GetRefund",
                "paygate.v1.YieldService/ListProducts",
                "paygate.v1.YieldService/GetProduct",
                "paygate.v1.YieldService/GetHolding",
                "paygate.v1.YieldService/ListIncome",
                "paygate.v1.YieldService/ListRedemptions",
                "paygate.v1.YieldService/GetAutoSweep",
                "paygate.v1.CreditService/GetCreditLine",
                "paygate.v1.CreditService/GetRepayment",
                "paygate.v1.CreditService/ListInstalments",
            ],
        ),
        // The bank's operators: reconciliation, break adjustments, the end-of-day run and the
        // merchants' settlement statements.
        caller("operator", &["paygate.v1.OperationsService/*"]),
    ]
}
