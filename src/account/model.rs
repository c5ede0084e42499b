//! The account service's domain types. No gRPC and no SQL types here.

use time::Date;

use crate::{
    account::card::BoundCard,
    account::rules::{LimitRule, LimitWindow},
    clearing::Network,
    config::AccountScope,
    ledger::{AccountId, AccountStatus, HoldId, HoldState, RequestId, TransactionId},
    money::Money,
};

/// The kinds of account the service keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// Personal electronic account, Class II (Ⅱ类户).
    ClassIi,
    /// Personal electronic account, Class III (Ⅲ类户).
    ClassIii,
    /// A merchant's settlement account.
    MerchantSettlement,
    /// A platform's master account (母账户): its balance is the sum of its sub-accounts.
    PlatformMaster,
    /// A virtual sub-account (子账户) of a platform master account.
    PlatformSub,
    /// A bank internal account (fee income, clearing suspense, …), created by configuration.
    BankInternal,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::ClassIi => "CLASS_II",
            AccountKind::ClassIii => "CLASS_III",
            AccountKind::MerchantSettlement => "MERCHANT_SETTLEMENT",
            AccountKind::PlatformMaster => "PLATFORM_MASTER",
            AccountKind::PlatformSub => "PLATFORM_SUB",
            AccountKind::BankInternal => "BANK_INTERNAL",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        Some(match text {
            "CLASS_II" => AccountKind::ClassIi,
            "CLASS_III" => AccountKind::ClassIii,
            "MERCHANT_SETTLEMENT" => AccountKind::MerchantSettlement,
            "PLATFORM_MASTER" => AccountKind::PlatformMaster,
            "PLATFORM_SUB" => AccountKind::PlatformSub,
            "BANK_INTERNAL" => AccountKind::BankInternal,
            _ => return None,
        })
    }

    /// Personal electronic accounts: bound to a Class I card, subject to class rules.
    pub fn is_electronic(self) -> bool {
        matches!(self, AccountKind::ClassIi | AccountKind::ClassIii)
    }
}

/// Purposes of bank internal accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InternalPurpose {
    FeeIncome,
    /// Clearing suspense (清算过渡户) of one network: what the network owes us or we owe it
    /// between a card movement's posting and the network's settlement. Nets to zero once every
    /// call is settled.
    ClearingSuspense(Network),
    FundSettlement,
    Rounding,
    /// Reconciliation adjustments pending investigation (挂账): what an operator moved out of
    /// a clearing suspense account to settle a break. Opened by the first adjustment.
    ReconAdjustment,
}

impl InternalPurpose {
    /// Every purpose an account is opened for at start, in the order they are opened: fee
    /// income, on-us clearing suspense, fund settlement, rounding, then the clearing suspense
    /// of every other network in the registry's order (opened only for networks the gateway
    /// reaches). Reconciliation adjustments are opened by the first adjustment instead.
    pub fn all() -> impl Iterator<Item = InternalPurpose> {
        [
            InternalPurpose::FeeIncome,
            InternalPurpose::ClearingSuspense(Network::ON_US),
            InternalPurpose::FundSettlement,
            InternalPurpose::Rounding,
        ]
        .into_iter()
        .chain(
            Network::all()
                .filter(|n| *n != Network::ON_US)
                .map(InternalPurpose::ClearingSuspense),
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InternalPurpose::FeeIncome => "FEE_INCOME",
            InternalPurpose::ClearingSuspense(network) => network.spec().suspense_account,
            InternalPurpose::FundSettlement => "FUND_SETTLEMENT",
            InternalPurpose::Rounding => "ROUNDING",
            InternalPurpose::ReconAdjustment => "RECON_ADJUSTMENT",
        }
    }

    pub fn parse(text: &str) -> Option<InternalPurpose> {
        InternalPurpose::all()
            .chain([InternalPurpose::ReconAdjustment])
            .find(|p| p.as_str() == text)
    }
}

/// Who is calling, as the service sees it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scope: AccountScope,
}

/// A person's identity document, as given when opening an electronic account.
#[derive(Debug, Clone)]
pub struct PersonIdentity {
    pub full_name: String,
    /// `None` when the caller named none (refused for Class II/III).
    pub document_type: Option<IdDocumentType>,
    pub document_number: String,
}

/// The kind of identity document a person is known by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdDocumentType {
    /// Resident identity card (居民身份证).
    ResidentIdCard,
    Passport,
    /// Mainland travel permit for Hong Kong and Macao residents (港澳居民来往内地通行证).
    HkMacaoPermit,
    /// Mainland travel permit for Taiwan residents (台湾居民来往大陆通行证).
    TaiwanPermit,
    /// Foreigner's permanent residence ID card (外国人永久居留身份证).
    ForeignPermanentResident,
}

impl IdDocumentType {
    /// The text the person key is derived from (see `Secrets::person_key`). Frozen: these are
    /// the codes keys were first derived with, and a changed code would give every existing
    /// person a new key, silently resetting the per-person account counts.
    pub fn person_key_code(self) -> &'static str {
        match self {
            IdDocumentType::ResidentIdCard => "ID_DOCUMENT_TYPE_RESIDENT_ID_CARD",
            IdDocumentType::Passport => "ID_DOCUMENT_TYPE_PASSPORT",
            IdDocumentType::HkMacaoPermit => "ID_DOCUMENT_TYPE_HK_MACAO_PERMIT",
            IdDocumentType::TaiwanPermit => "ID_DOCUMENT_TYPE_TAIWAN_PERMIT",
            IdDocumentType::ForeignPermanentResident => {
                "ID_DOCUMENT_TYPE_FOREIGN_PERMANENT_RESIDENT"
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenAccount {
    pub request_id: RequestId,
    pub kind: AccountKind,
    /// `None`: the electronic-account currency.
    pub currency: Option<crate::money::Currency>,
    pub owner_id: String,
    pub identity: Option<PersonIdentity>,
    pub card_number: Option<String>,
    pub parent: Option<AccountId>,
    pub display_name: String,
}

/// An account as the service shows it.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub id: AccountId,
    pub kind: AccountKind,
    pub status: AccountStatus,
    pub currency: String,
    pub owner_id: String,
    pub display_name: String,
    pub parent: Option<AccountId>,
    pub bound_card: Option<BoundCard>,
    pub freeze_reason: String,
    pub internal_purpose: Option<InternalPurpose>,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
}

/// How much of a limit is used on the current business date.
#[derive(Debug, Clone)]
pub struct LimitUsage {
    pub rule: LimitRule,
    pub window: LimitWindow,
    pub limit: Money,
    pub used: Money,
    pub remaining: Money,
}

/// Book, held, pending and available balances of an account.
#[derive(Debug, Clone)]
pub struct BalanceView {
    pub account: AccountId,
    pub book: Money,
    pub held: Money,
    pub pending_in: Money,
    pub pending_out: Money,
    pub available: Money,
    pub business_date: Date,
    pub limits: Vec<LimitUsage>,
    pub as_of_ms: i64,
}

/// A successful movement of money.
#[derive(Debug, Clone)]
pub struct Movement {
    pub transaction: TransactionId,
    pub posted_at_ms: i64,
    pub balance: BalanceView,
}

/// Where a clearing-network movement (top-up, withdrawal) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingStatus {
    Processing,
    Succeeded,
    Failed,
}

/// A top-up from or withdrawal to the bound card.
#[derive(Debug, Clone)]
pub struct CardMovement {
    pub status: ProcessingStatus,
    pub network: crate::clearing::Network,
    pub transaction: Option<TransactionId>,
    pub network_reference: String,
    pub balance: BalanceView,
}

/// Kinds of amount hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// Judicial freeze of an amount (司法冻结).
    Judicial,
    /// Pre-authorisation (预授权).
    PreAuthorization,
    Other,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Judicial => "JUDICIAL",
            HoldKind::PreAuthorization => "PRE_AUTHORIZATION",
            HoldKind::Other => "OTHER",
        }
    }

    pub fn parse(text: &str) -> Option<HoldKind> {
        Some(match text {
            "JUDICIAL" => HoldKind::Judicial,
            "PRE_AUTHORIZATION" => HoldKind::PreAuthorization,
            "OTHER" => HoldKind::Other,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct HoldView {
    pub id: HoldId,
    pub account: AccountId,
    pub kind: HoldKind,
    pub amount: Money,
    pub captured: Money,
    pub state: HoldState,
    pub reason: String,
    pub external_reference: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub capture_transaction: Option<TransactionId>,
}

/// What kind of business a statement line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Transfer,
    TopUp,
    Withdrawal,
    Payment,
    Refund,
    Fee,
    HoldCapture,
    Reversal,
    Adjustment,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Transfer => "TRANSFER",
            EntryType::TopUp => "TOP_UP",
            EntryType::Withdrawal => "WITHDRAWAL",
            EntryType::Payment => "PAYMENT",
            EntryType::Refund => "REFUND",
            EntryType::Fee => "FEE",
            EntryType::HoldCapture => "HOLD_CAPTURE",
            EntryType::Reversal => "REVERSAL",
            EntryType::Adjustment => "ADJUSTMENT",
        }
    }

    pub fn parse(text: &str) -> Option<EntryType> {
        Some(match text {
            "TRANSFER" => EntryType::Transfer,
            "TOP_UP" => EntryType::TopUp,
            "WITHDRAWAL" => EntryType::Withdrawal,
            "PAYMENT" => EntryType::Payment,
            "REFUND" => EntryType::Refund,
            "FEE" => EntryType::Fee,
            "HOLD_CAPTURE" => EntryType::HoldCapture,
            "REVERSAL" => EntryType::Reversal,
            "ADJUSTMENT" => EntryType::Adjustment,
            _ => return None,
        })
    }
}

/// One line of a statement, with the balance after it.
#[derive(Debug, Clone)]
pub struct StatementEntry {
    pub transaction: TransactionId,
    pub index: u32,
    pub debit: bool,
    pub amount: Money,
    pub balance_after: Money,
    pub entry_type: EntryType,
    pub counterparty: Option<AccountId>,
    pub memo: String,
    pub reverses: Option<TransactionId>,
    pub business_date: Date,
    pub posted_at_ms: i64,
}

/// A page of a statement.
#[derive(Debug, Clone)]
pub struct StatementPage {
    pub entries: Vec<StatementEntry>,
    pub next_page_token: String,
}

/// A freeze or unfreeze of an account's directions.
#[derive(Debug, Clone)]
pub struct FreezeChange {
    pub request_id: RequestId,
    pub account: AccountId,
    pub no_debit: bool,
    pub no_credit: bool,
    /// `true` adds the directions to the freeze, `false` lifts them.
    pub freeze: bool,
    pub reason: String,
}

/// An amount hold to place.
#[derive(Debug, Clone)]
pub struct PlaceHold {
    pub request_id: RequestId,
    pub account: AccountId,
    /// In the account's currency (another currency is a mismatch).
    pub amount: Money,
    pub kind: HoldKind,
    pub reason: String,
    pub external_reference: String,
    pub expires_at_ms: Option<i64>,
}

/// An account as another service (the cashier) sees it when moving money with it.
#[derive(Debug, Clone)]
pub struct AccountFacts {
    pub id: AccountId,
    /// The person behind the account, when it was opened with an identity.
    pub person_key: Option<String>,
    pub kind: AccountKind,
    pub currency: crate::money::Currency,
    pub status: AccountStatus,
    /// Available balance (可用余额) now.
    pub available: Money,
    pub card_token: Option<String>,
    pub card: Option<BoundCard>,
    pub closed: bool,
    /// Balance caps that apply to money flowing in (a Class III account's ceiling).
    pub balance_caps: Vec<crate::ledger::BalanceCap>,
}

impl AccountFacts {
    /// Whom per-investor rules count against: `p/{person key}` for an account opened with an
    /// identity (every account of one person counts as one investor), else `a/{account id}`.
    pub fn investor(&self) -> String {
        match &self.person_key {
            Some(person) => format!("p/{person}"),
            None => format!("a/{}", self.id),
        }
    }
}

/// Which accounts a listing returns: an owner's, or a platform master's sub-accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListBy {
    Owner(String),
    Parent(AccountId),
}
