//! The account service (虚拟账户 / 电子账户): personal Class II and Class III electronic accounts,
//! merchant settlement accounts, platform master accounts with virtual sub-accounts, and bank
//! internal accounts; transfers, top-ups and withdrawals with the bound card, freezes, amount
//! holds, statements and a live balance stream. Every movement posts through the ledger, with
//! the class rules checked in the same database transaction as the posting.

pub mod card;
mod card_movement;
mod claim;
mod close;
pub mod error;
mod freeze;
mod holds;
pub mod identity;
pub mod model;
mod notice;
mod open;
pub mod outbound;
mod profile;
mod read;
mod recovery;
pub mod rules;
mod statement;
mod submit;
mod transfer;
mod watch;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use error::{AccountError, LimitAmount};
pub use model::*;
pub use notice::NoticeVerdict;
pub use recovery::{CallSettler, Recorded, RecoveryRound, Settlers};
pub use watch::{WatchEvent, WatchEventKind};

use self::profile::Profile;

use self::rules::{BusinessCalendar, ClassRules, LimitCheck};
use crate::{
    clearing::{CardDirection, CardInstruction, Network, routing::Clearing},
    config::{AccountScope, AccountsConfig},
    ledger::{
        AccountId, AccountState, AccountStatus, Balance, BalanceCap, BalanceConstraint, Command,
        CounterCheck, CounterRelease, Freshness, Hold, HoldId, IdempotencyKey, Ledger, LedgerError,
        Metadata, NewAccount, NewHold, NewPending, NewTransaction, Outcome, RequestId,
        STATEMENT_PAGE_MAX, Side,
        store::{
            NewProfile, PROFILE_PAGE_MAX, ProfileFilter, ProfileQuery, ProfileRow, StatementQuery,
        },
    },
    money::{Currency, Money},
    secrets::Secrets,
};

/// Longest free text (names, memos, reasons).
pub const TEXT_LEN_MAX: usize = 256;
/// Longest owner id.
pub const OWNER_ID_LEN_MAX: usize = 64;
/// Most sub-accounts under one platform master account.
pub const SUB_ACCOUNTS_PER_MASTER_MAX: i64 = 10_000;
/// The idempotency scope of accounts the gateway creates for itself.
const SYSTEM_SCOPE: &str = "paygate-system";

/// The account service. Cheap to clone.
#[derive(Clone)]
pub struct AccountService {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    clearing: Arc<Clearing>,
    secrets: Secrets,
    rules: ClassRules,
    calendar: BusinessCalendar,
    config: AccountsConfig,
    /// Bank internal accounts by purpose, in the electronic-account currency.
    internal: BTreeMap<&'static str, AccountId>,
}

impl AccountService {
    /// Builds the service and makes sure the bank internal accounts exist (idempotently: the
    /// same accounts on every start).
    pub async fn start(
        ledger: Ledger,
        clearing: Arc<Clearing>,
        secrets: Secrets,
        config: &AccountsConfig,
    ) -> Result<AccountService, AccountError> {
        let rules = ClassRules::from_config(config)
            .map_err(|e| AccountError::invalid("accounts", e.to_string()))?;
        let calendar = BusinessCalendar::from_config(config)
            .map_err(|e| AccountError::invalid("accounts", e.to_string()))?;
        let mut internal = BTreeMap::new();
        // A clearing suspense account for each network this gateway reaches (on-us always):
        // created on the first start that routes to it, so a gateway that never leaves on-us
        // keeps the same four internal accounts.
        let reached: Vec<Network> = clearing.networks().collect();
        let wanted = InternalPurpose::all().filter(|p| match p {
            InternalPurpose::ClearingSuspense(n) => *n == Network::ON_US || reached.contains(n),
            _ => true,
        });
        for purpose in wanted {
            let (key, spec) = internal_spec(purpose, rules.currency);
            let account = ledger.create_account(key, spec).await?;
            internal.insert(purpose.as_str(), account.id);
        }
        Ok(AccountService {
            inner: Arc::new(Inner {
                ledger,
                clearing,
                secrets,
                rules,
                calendar,
                config: config.clone(),
                internal,
            }),
        })
    }

    /// The bank internal account of a purpose.
    pub fn internal_account(&self, purpose: InternalPurpose) -> Option<AccountId> {
        self.inner.internal.get(purpose.as_str()).copied()
    }

    /// The bank internal account of a purpose, opened now if it is not yet (idempotently: the
    /// same account however many processes ask at once).
    pub async fn internal_account_opened(
        &self,
        purpose: InternalPurpose,
    ) -> Result<AccountId, AccountError> {
        if let Some(id) = self.internal_account(purpose) {
            return Ok(id);
        }
        let (key, spec) = internal_spec(purpose, self.inner.rules.currency);
        Ok(self.inner.ledger.create_account(key, spec).await?.id)
    }

    /// The class rules (limits) of electronic accounts.
    pub fn rules(&self) -> &ClassRules {
        &self.inner.rules
    }

    /// Today's business date (日切-aware).
    pub fn today(&self) -> time::Date {
        self.inner.calendar.date_at(self.inner.ledger.now_ms())
    }

    /// The bank's business calendar (dates in its time zone, rolling at its cutover).
    pub fn calendar(&self) -> BusinessCalendar {
        self.inner.calendar
    }

    /// The clearing networks cards are moved through: the routing table and a client per
    /// routed network.
    pub fn clearing(&self) -> &Clearing {
        &self.inner.clearing
    }

    /// What another service needs to know of an account to move money with it (no scope
    /// check), for checks that its batch settles ([`Freshness::Checked`]: status and balance as
    /// of this process's last batch).
    pub async fn facts(&self, id: AccountId) -> Result<AccountFacts, AccountError> {
        let profile = self.profile_checked(id).await?;
        self.facts_of(profile).await
    }

    async fn facts_of(&self, profile: Profile) -> Result<AccountFacts, AccountError> {
        let id = profile.id;
        let AccountState { status, balance } = self
            .inner
            .ledger
            .account_state(id, Freshness::Checked)
            .await?;
        let balance_caps = self.caps_for(&[&profile]);
        Ok(AccountFacts {
            id,
            kind: profile.kind,
            currency: profile.currency,
            status,
            available: Money::new(
                profile.currency,
                clamp(balance.available_minor(Side::Credit)),
            ),
            closed: profile.closed_at_ms.is_some(),
            person_key: profile.person_key,
            card_token: profile.card_token,
            card: profile.card,
            balance_caps,
        })
    }

    /// [`AccountService::facts`] of an account the caller may act on.
    pub async fn facts_in_scope(
        &self,
        caller: &Caller,
        id: AccountId,
    ) -> Result<AccountFacts, AccountError> {
        let profile = self.profile_checked(id).await?;
        self.check_scope(caller, &profile)?;
        self.facts_of(profile).await
    }
}

fn movement_metadata(
    entry_type: EntryType,
    memo: &str,
    from: Option<AccountId>,
    to: Option<AccountId>,
) -> Metadata {
    let mut m = Metadata::from([("type".to_owned(), entry_type.as_str().to_owned())]);
    if !memo.is_empty() {
        m.insert("memo".to_owned(), memo.to_owned());
    }
    if let Some(from) = from {
        m.insert("from".to_owned(), from.to_string());
    }
    if let Some(to) = to {
        m.insert("to".to_owned(), to.to_string());
    }
    m
}

/// Whether a caller may post to (or hold funds on) this account: not a platform master (its
/// balance is its sub-accounts' sum) and not a bank internal account (those move only by the
/// gateway's own postings — clearing, fees — never by a caller's transfer, hold or capture).
fn check_postable(caller: &Caller, profile: &Profile) -> Result<(), AccountError> {
    match profile.kind {
        AccountKind::PlatformMaster => Err(AccountError::MasterNotPostable {
            account: profile.id,
        }),
        AccountKind::BankInternal => Err(AccountError::OutOfScope {
            caller: caller.name.clone(),
            account: profile.id,
        }),
        AccountKind::ClassIi
        | AccountKind::ClassIii
        | AccountKind::MerchantSettlement
        | AccountKind::PlatformSub => Ok(()),
    }
}

/// A free-text field under the shared rules ([`crate::text`]).
fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), AccountError> {
    crate::text::check_free_text(text, required, TEXT_LEN_MAX)
        .map_err(|refusal| AccountError::Text { field, refusal })
}

fn parse_position(text: &str, separator: char) -> Option<(u64, u32)> {
    let (seq, idx) = text.split_once(separator)?;
    Some((seq.parse().ok()?, idx.parse().ok()?))
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

fn unexpected(outcome: &Outcome) -> AccountError {
    tracing::error!(?outcome, "ledger answered with an unexpected outcome");
    AccountError::Ledger(LedgerError::Storage)
}

/// The idempotency key and the account of a bank internal account of `purpose`.
fn internal_spec(
    purpose: InternalPurpose,
    currency: crate::money::Currency,
) -> (IdempotencyKey, NewAccount) {
    let key = IdempotencyKey::new(
        SYSTEM_SCOPE,
        format!("internal/{}/{}", purpose.as_str(), currency),
    );
    let spec = NewAccount {
        currency,
        normal_side: Side::Credit,
        kind: AccountKind::BankInternal.as_str().to_owned(),
        constraint: BalanceConstraint::None,
        metadata: Metadata::from([("purpose".to_owned(), purpose.as_str().to_owned())]),
        profile: Some(Box::new(NewProfile {
            kind: AccountKind::BankInternal.as_str().to_owned(),
            currency: currency.code().to_owned(),
            owner_id: "bank".to_owned(),
            display_name: purpose.as_str().to_owned(),
            parent_id: None,
            person_key: None,
            card_token: None,
            card_first_six: None,
            card_last_four: None,
            agreement_id: None,
            internal_purpose: Some(purpose.as_str().to_owned()),
            opened_by: SYSTEM_SCOPE.to_owned(),
        })),
    };
    (key, spec)
}
