//! The credit service's domain types: credit lines, drawdowns and repayments. No gRPC or
//! storage types here.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::{
    ledger::{AccountId, CounterCheck, CounterRelease, DocumentWrite, NewEntry, RequestId},
    money::Money,
};

/// Document kinds (≤ 32 bytes).
pub const KIND_LINE: &str = "credit_line";
pub const KIND_DRAWDOWN: &str = "credit_drawdown";
/// The ledger account kind of a line's loan receivable (debit-normal: principal outstanding).
pub const RECEIVABLE_KIND: &str = "loan_receivable";
/// Decimal places of an annual rate (a fraction: "0.18" is 18 %).
pub const RATE_SCALE_MAX: u32 = 6;
/// Free-text reasons (freeze), in characters.
pub const REASON_CHARS_MAX: usize = 128;
/// Last day of the month a repayment may fall due (every month has it).
pub const REPAYMENT_DAY_MAX: u8 = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineStatus {
    Active,
    /// No drawdown; repayments are still taken.
    Frozen,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Active => "ACTIVE",
            LineStatus::Frozen => "FROZEN",
        }
    }
}

/// A credit line (授信额度) as stored. What is drawn is not here: it is the ledger balance of
/// the line's receivable account, and the line's usage counter (see `keys::usage`) bounds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditLine {
    pub line_id: String,
    pub account: AccountId,
    /// The line's loan receivable: debited by drawdowns, credited by repayments and refunds.
    pub receivable: AccountId,
    pub status: LineStatus,
    pub limit: Money,
    /// Annual percentage rate (APR) as a fraction.
    #[serde(with = "crate::money::decimal_text")]
    pub annual_rate: Decimal,
    pub grace_days: u32,
    pub repayment_day: u8,
    /// The usage counter's cap, fixed when the line opens (the largest limit then configured).
    pub base_minor: i64,
    pub opened_at_ms: i64,
    /// The business date the line opened: its first accrual date.
    pub opened_on: Date,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub freeze_reason: String,
    /// Interest accrued and not yet repaid (part of the receivable's balance; the rest of it is
    /// principal).
    #[serde(default)]
    pub interest_due_minor: i64,
    /// The fraction of a fen of interest accrued but not yet posted (0 ≤ carry < 1 fen).
    #[serde(default, with = "crate::money::decimal_text")]
    pub interest_carry_minor: Decimal,
    /// The last business date whose interest is accrued (`None`: none yet).
    #[serde(default)]
    pub accrued_through: Option<Date>,
    /// Penalty interest (罚息) accrued on overdue principal and not yet repaid (part of the
    /// receivable's balance, repaid before anything else).
    #[serde(default)]
    pub penalty_due_minor: i64,
    /// The fraction of a fen of penalty accrued but not yet posted.
    #[serde(default, with = "crate::money::decimal_text")]
    pub penalty_carry_minor: Decimal,
    /// Principal of instalments due on or before `accrued_through` and not repaid: what the
    /// next date's penalty is charged on.
    #[serde(default)]
    pub overdue_principal_minor: i64,
    /// Auto-repay (自动还款): the end-of-day run repays what falls due on each repayment day
    /// from the line's account, as far as its available balance covers.
    #[serde(default)]
    pub auto_repay: bool,
}

impl CreditLine {
    /// What is owed on the line besides principal (penalty and interest due).
    pub fn charges_minor(&self) -> i64 {
        self.penalty_due_minor
            .saturating_add(self.interest_due_minor)
    }
}

/// A drawdown (借据): one credit payment's principal, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drawdown {
    pub drawdown_id: String,
    pub line_id: String,
    pub amount: Money,
    pub date: Date,
    /// What it paid (an order id).
    pub purpose: String,
}

/// What a caller asks to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLine {
    pub request_id: RequestId,
    pub account: AccountId,
    pub limit: Money,
    pub annual_rate: Decimal,
    pub grace_days: u32,
    pub repayment_day: u8,
    pub auto_repay: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustLimit {
    pub request_id: RequestId,
    pub line_id: String,
    pub limit: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeLine {
    pub request_id: RequestId,
    pub line_id: String,
    pub frozen: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repay {
    pub request_id: RequestId,
    pub line_id: String,
    pub amount: Money,
    pub from: RepaySource,
}

/// Where a repayment's money comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepaySource {
    /// The line's own account (it must be the line's).
    Account(AccountId),
    /// The bound card of the line's account, through the card's clearing network.
    BoundCard,
}

/// Switch a line's auto-repay (自动还款) on or off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAutoRepay {
    pub request_id: RequestId,
    pub line_id: String,
    pub enabled: bool,
}

/// An instalment plan asked for with a credit payment (分期 at payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InstalmentTerms {
    pub count: u32,
    pub method: super::schedule::InstalmentMethod,
}

/// A line as shown: the stored line with what is drawn and what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineView {
    pub line: CreditLine,
    /// Principal outstanding (the receivable's balance less the interest due).
    pub used: Money,
    /// Interest accrued and not repaid.
    pub interest_due: Money,
    /// Penalty interest accrued on overdue principal and not repaid.
    pub penalty_due: Money,
    /// Principal of instalments past their due date and not repaid.
    pub overdue_principal: Money,
    /// What may still be drawn (zero when frozen or over the limit).
    pub available: Money,
    /// The next repayment day after today, when anything is used.
    pub next_due: Option<Date>,
}

/// Where a repayment stands: one from the account always succeeds (or is refused); one from
/// the bound card may wait on its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepaymentStatus {
    Succeeded,
    /// The card debit's outcome is unknown: nothing allocated yet.
    Processing,
    /// The network declined the card debit: nothing allocated.
    Failed,
}

/// What a repayment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repayment {
    pub view: LineView,
    pub status: RepaymentStatus,
    pub penalty: Money,
    pub interest: Money,
    pub principal: Money,
    /// The journal transaction that allocated it (none while PROCESSING or FAILED).
    pub transaction: Option<u64>,
    /// A repayment from the bound card: its record.
    pub card: Option<super::card_repay::CardRepayment>,
}

/// What one accrual run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterestAccrual {
    pub date: Date,
    /// Lines looked at.
    pub lines: i64,
    /// Line-days posted by this run (a day already accrued is not counted again).
    pub line_days: i64,
    /// Interest those days posted, in minor units.
    pub interest_minor: i64,
    /// Penalty interest those days posted, in minor units.
    pub penalty_minor: i64,
    /// Auto-repayments made (lines repaid on a repayment day).
    pub auto_repayments: i64,
}

/// What a payment drawn on a line adds to its posting and its batch.
#[derive(Debug, Clone)]
pub struct CreditFunding {
    pub line_id: String,
    pub drawdown_id: String,
    pub amount: Money,
    /// The drawdown's legs, before the payment's own: receivable debited, payer credited.
    pub entries: Vec<NewEntry>,
    /// The line's usage counter, within its cap.
    pub counters: Vec<CounterCheck>,
    /// The drawdown record.
    pub documents: Vec<DocumentWrite>,
}

/// What a refund of a credit payment adds: the line restored first, the surplus to the payer.
#[derive(Debug, Clone)]
pub struct CreditRestore {
    /// The credit legs (receivable, then payer); the refund's debit is the merchant's.
    pub entries: Vec<NewEntry>,
    /// The line's usage lowered by what is restored.
    pub releases: Vec<CounterRelease>,
    /// The line's document (its overdue principal recomputed) and the plans the restore pays
    /// instalments of, at the versions the restore was computed from: a repayment or accrual
    /// that moves the line meanwhile makes the refund retry, so a restore never takes more than
    /// the principal outstanding.
    pub documents: Vec<DocumentWrite>,
    pub restored: Money,
}

/// An instalment plan's document kind (id: `{line}/{drawdown}`, like its drawdown's).
pub const KIND_PLAN: &str = "credit_plan";

/// An instalment plan (分期): one drawdown's principal spread over monthly instalments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalmentPlan {
    pub line_id: String,
    pub drawdown_id: String,
    pub method: super::schedule::InstalmentMethod,
    pub principal: Money,
    /// The business date the plan was made.
    pub made_on: Date,
    pub instalments: Vec<PlanInstalment>,
}

/// One instalment of a plan as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInstalment {
    pub number: u32,
    pub due: Date,
    pub principal_minor: i64,
    pub interest_minor: i64,
    /// Paid towards it so far (principal and interest).
    #[serde(default)]
    pub paid_minor: i64,
    /// The principal part of `paid_minor` (the rest is interest).
    #[serde(default)]
    pub principal_paid_minor: i64,
    /// Interest not charged: an early full repayment closed the plan before this instalment's
    /// interest fell due.
    #[serde(default)]
    pub interest_waived_minor: i64,
}

/// Where an instalment stands on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstalmentState {
    /// Not yet due, or due today and not paid.
    Pending,
    Paid,
    /// Past its due date and not paid in full.
    Overdue,
}

impl PlanInstalment {
    /// Principal not yet repaid.
    pub fn principal_left_minor(&self) -> i64 {
        (self.principal_minor - self.principal_paid_minor).max(0)
    }

    /// Interest (once fallen due) not yet repaid nor waived.
    pub fn interest_left_minor(&self) -> i64 {
        let interest_paid = self.paid_minor - self.principal_paid_minor;
        (self.interest_minor - interest_paid - self.interest_waived_minor).max(0)
    }

    pub fn state(&self, today: Date) -> InstalmentState {
        if self.principal_left_minor() == 0 && self.interest_left_minor() == 0 {
            InstalmentState::Paid
        } else if self.due < today {
            InstalmentState::Overdue
        } else {
            InstalmentState::Pending
        }
    }
}

/// What a caller asks to split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitDrawdown {
    pub request_id: RequestId,
    pub line_id: String,
    pub drawdown_id: String,
    pub count: u32,
    pub method: super::schedule::InstalmentMethod,
}
