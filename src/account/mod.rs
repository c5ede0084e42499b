//! The account service (虚拟账户 / 电子账户): personal Class II and Class III electronic accounts,
//! merchant settlement accounts, platform master accounts with virtual sub-accounts, and bank
//! internal accounts; transfers, top-ups and withdrawals with the bound card, freezes, amount
//! holds, statements and a live balance stream. Every movement posts through the ledger, with
//! the class rules checked in the same database transaction as the posting.

pub mod card;
pub mod error;
pub mod model;
pub mod rules;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use error::{AccountError, LimitAmount};
pub use model::*;

use self::rules::{BusinessCalendar, ClassRules, LimitCheck};
use crate::{
    clearing::{CardDirection, CardInstruction, ClearingClient, ClearingOutcome},
    config::{AccountScope, AccountsConfig},
    ledger::{
        AccountId, AccountStatus, Balance, BalanceCap, BalanceConstraint, Command, CounterCheck,
        CounterRelease, Hold, HoldId, IdempotencyKey, Ledger, LedgerError, Metadata, NewAccount,
        NewEntry, NewHold, NewPending, NewTransaction, Outcome, STATEMENT_PAGE_MAX, Side,
        store::{
            NewProfile, PROFILE_PAGE_MAX, ProfileFilter, ProfileQuery, ProfileRow, StatementQuery,
        },
    },
    money::{Currency, Money, Sign},
    secrets::Secrets,
};

/// Longest caller-chosen request id.
pub const REQUEST_ID_LEN_MAX: usize = 64;
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
    clearing: Arc<dyn ClearingClient>,
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
        clearing: Arc<dyn ClearingClient>,
        secrets: Secrets,
        config: &AccountsConfig,
    ) -> Result<AccountService, AccountError> {
        let rules = ClassRules::from_config(config)
            .map_err(|e| AccountError::invalid("accounts", e.to_string()))?;
        let calendar = BusinessCalendar::from_config(config)
            .map_err(|e| AccountError::invalid("accounts", e.to_string()))?;
        let mut internal = BTreeMap::new();
        for purpose in InternalPurpose::ALL {
            let key = IdempotencyKey::new(
                SYSTEM_SCOPE,
                format!("internal/{}/{}", purpose.as_str(), rules.currency),
            );
            let spec = NewAccount {
                currency: rules.currency,
                normal_side: Side::Credit,
                kind: AccountKind::BankInternal.as_str().to_owned(),
                constraint: BalanceConstraint::None,
                metadata: Metadata::from([("purpose".to_owned(), purpose.as_str().to_owned())]),
                profile: Some(Box::new(NewProfile {
                    kind: AccountKind::BankInternal.as_str().to_owned(),
                    currency: rules.currency.code().to_owned(),
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

    /// The class rules (limits) of electronic accounts.
    pub fn rules(&self) -> &ClassRules {
        &self.inner.rules
    }

    /// Today's business date (日切-aware).
    pub fn today(&self) -> time::Date {
        self.inner.calendar.date_at(self.inner.ledger.now_ms())
    }

    /// The clearing-network client cards are moved through.
    pub fn clearing(&self) -> &Arc<dyn ClearingClient> {
        &self.inner.clearing
    }

    /// What another service needs to know of an account to move money with it (no scope check).
    pub async fn facts(&self, id: AccountId) -> Result<AccountFacts, AccountError> {
        let profile = self.profile(id).await?;
        let (account, balance) = self.inner.ledger.account(id).await?;
        Ok(AccountFacts {
            id,
            kind: profile.kind,
            currency: profile.currency,
            status: account.status,
            available: Money::new(
                profile.currency,
                clamp(balance.available_minor(Side::Credit)),
            ),
            card_token: profile.card_token.clone(),
            card: profile.card.clone(),
            closed: profile.closed_at_ms.is_some(),
            balance_caps: self.caps_for(&[&profile]),
        })
    }

    /// [`AccountService::facts`] of an account the caller may act on.
    pub async fn facts_in_scope(
        &self,
        caller: &Caller,
        id: AccountId,
    ) -> Result<AccountFacts, AccountError> {
        let profile = self.profile(id).await?;
        self.check_scope(caller, &profile)?;
        self.facts(id).await
    }

    // ----- opening, reading, listing -------------------------------------------------------

    pub async fn open(
        &self,
        caller: &Caller,
        req: OpenAccount,
    ) -> Result<AccountView, AccountError> {
        let i = &self.inner;
        check_request_id(&req.request_id)?;
        check_text("display_name", &req.display_name, false)?;
        if req.owner_id.is_empty() || req.owner_id.len() > OWNER_ID_LEN_MAX {
            return Err(AccountError::invalid(
                "owner_id",
                format!("1..={OWNER_ID_LEN_MAX} characters"),
            ));
        }
        let currency = if req.currency.is_empty() {
            i.rules.currency
        } else {
            Currency::from_code(&req.currency)
                .map_err(|e| AccountError::invalid("currency", e.to_string()))?
        };
        let mut metadata = Metadata::from([
            ("owner".to_owned(), req.owner_id.clone()),
            ("opened_by".to_owned(), caller.name.clone()),
        ]);
        let mut counters = Vec::new();
        let mut limit_checks = Vec::new();
        let mut person_key = None;
        let mut bound = None;
        let mut parent = None;
        match req.kind {
            AccountKind::BankInternal => {
                return Err(AccountError::KindNotOpenable {
                    kind: req.kind.as_str(),
                });
            }
            AccountKind::ClassIi | AccountKind::ClassIii => {
                if currency != i.rules.currency {
                    return Err(AccountError::invalid(
                        "currency",
                        format!("electronic accounts are kept in {}", i.rules.currency),
                    ));
                }
                let identity = req.identity.as_ref().ok_or_else(|| {
                    AccountError::invalid("identity", "required for Class II/III")
                })?;
                check_text("identity.full_name", &identity.full_name, true)?;
                check_text("identity.document_type", &identity.document_type, true)?;
                check_text("identity.document_number", &identity.document_number, true)?;
                let number = req.card_number.as_deref().ok_or_else(|| {
                    AccountError::invalid("bound_card_number", "required for Class II/III")
                })?;
                let agreement = format!(
                    "AGR{}",
                    &hex::encode(Sha256::digest(
                        format!("{}\0{}", caller.name, req.request_id).as_bytes()
                    ))[..24]
                );
                let card = card::bind(&i.secrets, number, agreement)
                    .map_err(|e| AccountError::invalid("bound_card_number", e.to_string()))?;
                let key = i
                    .secrets
                    .person_key(&identity.document_type, &identity.document_number);
                if let Some(check) = i.rules.per_person_check(req.kind, &key, 1) {
                    counters.push(check.counter.clone());
                    limit_checks.push(check);
                }
                metadata.insert("person".to_owned(), key.clone());
                metadata.insert("card".to_owned(), card.token.clone());
                metadata.insert("agreement".to_owned(), card.agreement_id.clone());
                person_key = Some(key);
                bound = Some(card);
            }
            AccountKind::PlatformSub => {
                let parent_id = req
                    .parent
                    .ok_or_else(|| AccountError::invalid("parent_account_id", "required"))?;
                let master = self.profile(parent_id).await?;
                if master.kind != AccountKind::PlatformMaster
                    || master.closed_at_ms.is_some()
                    || master.currency != currency
                {
                    return Err(AccountError::InvalidParent {
                        parent: parent_id,
                        currency: currency.code().to_owned(),
                    });
                }
                self.check_scope(caller, &master)?;
                counters.push(CounterCheck {
                    key: format!("SUB_ACCOUNTS/{parent_id}"),
                    amount_minor: 1,
                    cap_minor: SUB_ACCOUNTS_PER_MASTER_MAX,
                });
                metadata.insert("parent".to_owned(), parent_id.to_string());
                parent = Some(parent_id);
            }
            AccountKind::MerchantSettlement | AccountKind::PlatformMaster => {}
        }
        if req.kind != AccountKind::PlatformSub && req.parent.is_some() {
            return Err(AccountError::invalid(
                "parent_account_id",
                "only platform sub-accounts have a parent",
            ));
        }
        let spec = NewAccount {
            currency,
            normal_side: Side::Credit,
            kind: req.kind.as_str().to_owned(),
            constraint: BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor: 0 },
            metadata,
            profile: Some(Box::new(NewProfile {
                kind: req.kind.as_str().to_owned(),
                currency: currency.code().to_owned(),
                owner_id: req.owner_id.clone(),
                display_name: req.display_name.clone(),
                parent_id: parent.map(|p| p.0),
                person_key,
                card_token: bound.as_ref().map(|c| c.token.clone()),
                card_first_six: bound.as_ref().map(|c| c.first_six.clone()),
                card_last_four: bound.as_ref().map(|c| c.last_four.clone()),
                agreement_id: bound.as_ref().map(|c| c.agreement_id.clone()),
                internal_purpose: None,
                opened_by: caller.name.clone(),
            })),
        };
        let command = Command::Guarded {
            inner: Box::new(Command::CreateAccount(spec)),
            counters,
            releases: Vec::new(),
            caps: Vec::new(),
            documents: Vec::new(),
            events: Vec::new(),
        };
        let account = match self
            .submit(caller, &req.request_id, command, &limit_checks)
            .await?
        {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The profile was written in the same batch as the account.
        let profile = self.profile(account.id).await?;
        // A replayed request answers with the account as it is now.
        let (current, _) = i.ledger.account(account.id).await?;
        Ok(profile.view(current.status))
    }

    pub async fn get(&self, caller: &Caller, id: AccountId) -> Result<AccountView, AccountError> {
        let profile = self.profile(id).await?;
        self.check_scope(caller, &profile)?;
        let (account, _) = self.inner.ledger.account(id).await?;
        Ok(profile.view(account.status))
    }

    /// Accounts of an owner or under a parent, in id order; `page_token` continues a listing.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: ListBy,
        kind: Option<AccountKind>,
        include_closed: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AccountView>, String), AccountError> {
        let limit = self.page_size(page_size)?;
        match &filter {
            ListBy::Owner(owner) if owner.is_empty() || owner.len() > OWNER_ID_LEN_MAX => {
                return Err(AccountError::invalid("owner_id", "1..=64 characters"));
            }
            ListBy::Parent(parent) => {
                let master = self.profile(*parent).await?;
                self.check_scope(caller, &master)?;
            }
            ListBy::Owner(_) => {}
        }
        let query_tag = short_hash(&format!(
            "{filter:?}|{}|{include_closed}",
            kind.map_or("", AccountKind::as_str)
        ));
        let after_id = if page_token.is_empty() {
            0
        } else {
            let payload = self
                .inner
                .secrets
                .open_page_token(page_token)
                .ok_or(AccountError::InvalidPageToken)?;
            let (tag, after) = payload
                .strip_prefix("accounts:")
                .and_then(|rest| rest.split_once(':'))
                .ok_or(AccountError::InvalidPageToken)?;
            if tag != query_tag {
                return Err(AccountError::InvalidPageToken);
            }
            after
                .parse::<u64>()
                .map_err(|_| AccountError::InvalidPageToken)?
        };
        let rows = self
            .inner
            .ledger
            .profiles(&ProfileQuery {
                filter: match filter {
                    ListBy::Owner(owner) => ProfileFilter::Owner(owner),
                    ListBy::Parent(parent) => ProfileFilter::Parent(parent.0),
                },
                kind: kind.map(|k| k.as_str().to_owned()),
                include_closed,
                after_id,
                limit,
            })
            .await?;
        let next = if rows.len() == limit as usize {
            rows.last().map_or_else(String::new, |last| {
                self.inner
                    .secrets
                    .seal_page_token(&format!("accounts:{query_tag}:{}", last.account_id))
            })
        } else {
            String::new()
        };
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let profile = Profile::from_row(row)?;
            if self.check_scope(caller, &profile).is_err() {
                continue;
            }
            let (account, _) = self.inner.ledger.account(profile.id).await?;
            views.push(profile.view(account.status));
        }
        Ok((views, next))
    }

    pub async fn balance(
        &self,
        caller: &Caller,
        id: AccountId,
    ) -> Result<BalanceView, AccountError> {
        let profile = self.profile(id).await?;
        self.check_scope(caller, &profile)?;
        self.balance_of(&profile).await
    }

    // ----- moving money --------------------------------------------------------------------

    /// An on-us transfer between two accounts, with the class rules of both sides.
    pub async fn transfer(
        &self,
        caller: &Caller,
        request_id: &str,
        from: AccountId,
        to: AccountId,
        amount: &MoneyText,
        memo: &str,
    ) -> Result<Movement, AccountError> {
        check_request_id(request_id)?;
        check_text("memo", memo, false)?;
        if from == to {
            return Err(AccountError::TransferToSelf);
        }
        let source = self.profile(from).await?;
        self.check_scope(caller, &source)?;
        let target = self.profile(to).await?;
        for p in [&source, &target] {
            check_postable(caller, p)?;
        }
        let amount = self.amount_in(&source, amount)?;
        if target.currency != amount.currency {
            return Err(AccountError::Ledger(LedgerError::CurrencyMismatch {
                account: target.id,
                expected: target.currency,
                actual: amount.currency,
            }));
        }
        let date = self.today();
        let mut checks = self
            .inner
            .rules
            .outflow_checks(source.kind, from, amount.minor, date);
        checks.extend(
            self.inner
                .rules
                .inflow_checks(target.kind, to, amount.minor, date),
        );
        let tx = NewTransaction {
            entries: vec![
                NewEntry {
                    account: from,
                    side: Side::Debit,
                    amount,
                },
                NewEntry {
                    account: to,
                    side: Side::Credit,
                    amount,
                },
            ],
            metadata: movement_metadata(EntryType::Transfer, memo, Some(from), Some(to)),
            counters: Vec::new(),
        };
        let command = Command::Guarded {
            inner: Box::new(Command::Post(tx)),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: self.caps_for(&[&target]),
            documents: Vec::new(),
            events: Vec::new(),
        };
        let posted = match self.submit(caller, request_id, command, &checks).await? {
            Outcome::Posted(p) => p,
            other => return Err(unexpected(&other)),
        };
        Ok(Movement {
            transaction: posted.id,
            posted_at_ms: posted.created_at_ms,
            balance: self.balance_of(&source).await?,
        })
    }

    /// Top-up from the account's bound card through the clearing network: reserve, ask the
    /// network, then post (success), void (failure) or leave reserved (no answer: PROCESSING).
    pub async fn top_up(
        &self,
        caller: &Caller,
        request_id: &str,
        account: AccountId,
        amount: &MoneyText,
        memo: &str,
    ) -> Result<CardMovement, AccountError> {
        self.card_movement(
            caller,
            request_id,
            account,
            amount,
            memo,
            CardDirection::DebitCard,
        )
        .await
    }

    /// Withdrawal to the account's bound card; the mirror of [`AccountService::top_up`].
    pub async fn withdraw(
        &self,
        caller: &Caller,
        request_id: &str,
        account: AccountId,
        amount: &MoneyText,
        memo: &str,
    ) -> Result<CardMovement, AccountError> {
        self.card_movement(
            caller,
            request_id,
            account,
            amount,
            memo,
            CardDirection::CreditCard,
        )
        .await
    }

    async fn card_movement(
        &self,
        caller: &Caller,
        request_id: &str,
        account: AccountId,
        amount: &MoneyText,
        memo: &str,
        direction: CardDirection,
    ) -> Result<CardMovement, AccountError> {
        let i = &self.inner;
        check_request_id(request_id)?;
        check_text("memo", memo, false)?;
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        let card_token = profile
            .card_token
            .clone()
            .ok_or(AccountError::NoBoundCard { account })?;
        let amount = self.amount_in(&profile, amount)?;
        let suspense = self
            .internal_account(InternalPurpose::ClearingSuspenseOnUs)
            .ok_or(AccountError::Ledger(LedgerError::Storage))?;
        let (debit, credit, entry_type) = match direction {
            CardDirection::DebitCard => (suspense, account, EntryType::TopUp),
            CardDirection::CreditCard => (account, suspense, EntryType::Withdrawal),
        };
        // Movements with the bound card are bound-account flows: no non-bound limits apply;
        // a Class III balance cap still does (pending inflows count against it).
        let caps = match direction {
            CardDirection::DebitCard => self.caps_for(&[&profile]),
            CardDirection::CreditCard => Vec::new(),
        };
        let reserve = Command::Guarded {
            inner: Box::new(Command::CreatePending(NewPending {
                debit_account: debit,
                credit_account: credit,
                amount,
                timeout_ms: i.config.clearing_reservation_timeout_ms,
                metadata: movement_metadata(entry_type, memo, Some(debit), Some(credit)),
                counters: Vec::new(),
            })),
            counters: Vec::new(),
            releases: Vec::new(),
            caps,
            documents: Vec::new(),
            events: Vec::new(),
        };
        let pending = match self.submit(caller, request_id, reserve, &[]).await? {
            Outcome::Pending(p) => p,
            other => return Err(unexpected(&other)),
        };
        let instruction = CardInstruction {
            reference: format!("P{}", pending.id),
            direction,
            card_token,
            amount,
        };
        let outcome = i.clearing.submit(&instruction).await;
        let (status, transaction, network_reference) = match outcome {
            ClearingOutcome::Succeeded { network_reference } => {
                let posted = i
                    .ledger
                    .post_pending(step_key(caller, request_id, "settle"), pending.id, None)
                    .await?;
                (
                    ProcessingStatus::Succeeded,
                    Some(posted.id),
                    network_reference,
                )
            }
            ClearingOutcome::Failed { reason } => {
                i.ledger
                    .void_pending(step_key(caller, request_id, "void"), pending.id)
                    .await?;
                tracing::info!(%account, %reason, network = i.clearing.network().as_str(), "card movement declined");
                (ProcessingStatus::Failed, None, String::new())
            }
            ClearingOutcome::Unknown => (ProcessingStatus::Processing, None, String::new()),
        };
        Ok(CardMovement {
            status,
            network: i.clearing.network(),
            transaction,
            network_reference,
            balance: self.balance_of(&profile).await?,
        })
    }

    // ----- freezes, holds, closing ---------------------------------------------------------

    /// Adds the blocked directions of `mode` to the account's freeze (`freeze` true) or removes
    /// them (`freeze` false).
    pub async fn set_freeze(
        &self,
        caller: &Caller,
        change: FreezeChange,
    ) -> Result<AccountView, AccountError> {
        let FreezeChange {
            request_id,
            account,
            no_debit,
            no_credit,
            freeze,
            reason,
        } = change;
        let (request_id, reason) = (request_id.as_str(), reason.as_str());
        check_request_id(request_id)?;
        check_text("reason", reason, true)?;
        if !no_debit && !no_credit {
            return Err(AccountError::invalid("mode", "NO_DEBIT, NO_CREDIT or BOTH"));
        }
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        // The ledger combines the change with the status as its batch sees it: concurrent
        // freezes in different directions both hold, and a retry is the same command.
        let command = Command::ChangeFreeze {
            account,
            no_debit,
            no_credit,
            freeze,
            reason: reason.to_owned(),
        };
        let updated = match self.submit(caller, request_id, command, &[]).await? {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The batch wrote the same reason to the profile.
        let frozen = matches!(updated.status, AccountStatus::Frozen { .. });
        let reason_now = if frozen { reason } else { "" };
        let mut profile = profile;
        profile.freeze_reason = reason_now.to_owned();
        Ok(profile.view(updated.status))
    }

    pub async fn place_hold(
        &self,
        caller: &Caller,
        req: PlaceHold,
    ) -> Result<HoldView, AccountError> {
        let PlaceHold {
            request_id,
            account,
            amount,
            kind,
            reason,
            external_reference,
            expires_at_ms,
        } = req;
        let (request_id, amount, reason, external_reference) = (
            request_id.as_str(),
            &amount,
            reason.as_str(),
            external_reference.as_str(),
        );
        check_request_id(request_id)?;
        check_text("reason", reason, true)?;
        check_text("external_reference", external_reference, false)?;
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        check_postable(caller, &profile)?;
        let amount = self.amount_in(&profile, amount)?;
        let timeout_ms = match expires_at_ms {
            None => None,
            Some(at) => {
                let left = at.saturating_sub(self.inner.ledger.now_ms());
                if left <= 0 {
                    return Err(AccountError::invalid(
                        "expire_time",
                        "must be in the future",
                    ));
                }
                Some(u64::try_from(left).unwrap_or(u64::MAX))
            }
        };
        let hold = self
            .inner
            .ledger
            .place_hold(
                key(caller, request_id),
                NewHold {
                    account,
                    amount,
                    timeout_ms,
                    metadata: Metadata::from([
                        ("kind".to_owned(), kind.as_str().to_owned()),
                        ("reason".to_owned(), reason.to_owned()),
                        (
                            "external_reference".to_owned(),
                            external_reference.to_owned(),
                        ),
                    ]),
                },
            )
            .await?;
        Ok(hold_view(hold))
    }

    pub async fn release_hold(
        &self,
        caller: &Caller,
        request_id: &str,
        hold: HoldId,
    ) -> Result<HoldView, AccountError> {
        check_request_id(request_id)?;
        self.hold_in_scope(caller, hold).await?;
        let released = self
            .inner
            .ledger
            .release_hold(key(caller, request_id), hold)
            .await?;
        Ok(hold_view(released))
    }

    /// Captures `amount` (all of it when `None`) of a hold into `to`; the rest is released.
    pub async fn capture_hold(
        &self,
        caller: &Caller,
        request_id: &str,
        hold: HoldId,
        amount: Option<&MoneyText>,
        to: AccountId,
        memo: &str,
    ) -> Result<(HoldView, crate::ledger::TransactionId), AccountError> {
        check_request_id(request_id)?;
        check_text("memo", memo, false)?;
        let current = self.hold_in_scope(caller, hold).await?;
        let target = self.profile(to).await?;
        check_postable(caller, &target)?;
        let held = self.profile(current.account).await?;
        let amount = match amount {
            Some(text) => self.amount_in(&held, text)?,
            None => current.amount,
        };
        // A capture moves money out of the held account like a transfer: the class rules of
        // both sides apply (a captured pre-authorisation is a payment), in the same step. A
        // judicial deduction is executed whatever the holder's flow limits; the payee's
        // Class III balance cap holds always.
        let judicial =
            current.metadata.get("kind").map(String::as_str) == Some(HoldKind::Judicial.as_str());
        let mut checks = Vec::new();
        if !judicial {
            let date = self.today();
            let rules = &self.inner.rules;
            checks.extend(rules.outflow_checks(held.kind, held.id, amount.minor, date));
            checks.extend(rules.inflow_checks(target.kind, to, amount.minor, date));
        }
        let command = Command::Guarded {
            inner: Box::new(Command::CaptureHold {
                hold,
                amount,
                to,
                metadata: movement_metadata(
                    EntryType::HoldCapture,
                    memo,
                    Some(current.account),
                    Some(to),
                ),
            }),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: self.caps_for(&[&target]),
            documents: Vec::new(),
            events: Vec::new(),
        };
        let posted = match self.submit(caller, request_id, command, &checks).await? {
            Outcome::Posted(p) => p,
            other => return Err(unexpected(&other)),
        };
        let after = self.inner.ledger.hold(hold).await?;
        Ok((hold_view(after), posted.id))
    }

    /// Closes an account: only at zero balance with no holds or pending transfers (a platform
    /// master only once all its sub-accounts are closed).
    pub async fn close(
        &self,
        caller: &Caller,
        request_id: &str,
        account: AccountId,
        reason: &str,
    ) -> Result<AccountView, AccountError> {
        check_request_id(request_id)?;
        check_text("reason", reason, false)?;
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        if profile.kind == AccountKind::BankInternal {
            return Err(AccountError::KindNotOpenable {
                kind: profile.kind.as_str(),
            });
        }
        if profile.kind == AccountKind::PlatformMaster {
            let open_children = self
                .inner
                .ledger
                .profiles(&ProfileQuery {
                    filter: ProfileFilter::Parent(account.0),
                    kind: None,
                    include_closed: false,
                    after_id: 0,
                    limit: 1,
                })
                .await?;
            if !open_children.is_empty() {
                return Err(AccountError::Ledger(LedgerError::AccountNotEmpty {
                    account,
                }));
            }
        }
        let mut releases = Vec::new();
        // Closing frees the person's place for another account of this class.
        if let Some(check) = profile
            .person_key
            .as_deref()
            .and_then(|person| self.inner.rules.per_person_check(profile.kind, person, -1))
        {
            releases.push(CounterRelease {
                key: check.counter.key,
                amount_minor: 1,
            });
        }
        if let Some(parent) = profile.parent {
            releases.push(CounterRelease {
                key: format!("SUB_ACCOUNTS/{parent}"),
                amount_minor: 1,
            });
        }
        let command = Command::Guarded {
            inner: Box::new(Command::SetAccountStatus {
                account,
                status: AccountStatus::Closed,
            }),
            counters: Vec::new(),
            releases,
            caps: Vec::new(),
            documents: Vec::new(),
            events: Vec::new(),
        };
        let closed = match self.submit(caller, request_id, command, &[]).await? {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The batch wrote the close time to the profile.
        let profile = self.profile(account).await?;
        Ok(profile.view(closed.status))
    }

    // ----- statements and the live stream --------------------------------------------------

    /// Statement lines in `[from_ms, until_ms)`, oldest first, with the running balance.
    pub async fn statement(
        &self,
        caller: &Caller,
        account: AccountId,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
        page_size: i32,
        page_token: &str,
    ) -> Result<StatementPage, AccountError> {
        let limit = self.page_size(page_size)?;
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        let from_ms = from_ms.unwrap_or(0);
        let until_ms = until_ms.unwrap_or(i64::MAX);
        if from_ms >= until_ms {
            return Err(AccountError::invalid(
                "end_time",
                "must be after start_time",
            ));
        }
        let tag = format!("entries:{account}:{from_ms}:{until_ms}");
        let after = if page_token.is_empty() {
            (0, 0)
        } else {
            let payload = self
                .inner
                .secrets
                .open_page_token(page_token)
                .ok_or(AccountError::InvalidPageToken)?;
            let position = payload
                .strip_prefix(tag.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                .ok_or(AccountError::InvalidPageToken)?;
            parse_position(position, '_').ok_or(AccountError::InvalidPageToken)?
        };
        let entries = self
            .entries_after(&profile, after, from_ms, until_ms, limit)
            .await?;
        // A sealed payload may not contain '.' (it separates the signature): `seq_idx` here.
        let next_page_token = if entries.len() == limit as usize {
            entries.last().map_or_else(String::new, |e| {
                self.inner
                    .secrets
                    .seal_page_token(&format!("{tag}:{}_{}", e.transaction, e.index))
            })
        } else {
            String::new()
        };
        Ok(StatementPage {
            entries,
            next_page_token,
        })
    }

    /// A live stream of an account: a snapshot first, then every posted entry after `cursor`
    /// (a cursor from an earlier event resumes exactly after it), and a fresh snapshot whenever
    /// the balance changes without an entry (holds, reservations). Ends when the receiver goes.
    pub async fn watch(
        &self,
        caller: &Caller,
        account: AccountId,
        cursor: &str,
    ) -> Result<mpsc::Receiver<Result<WatchEvent, AccountError>>, AccountError> {
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        let mut position = if cursor.is_empty() {
            None
        } else {
            Some(
                parse_position(cursor, '.')
                    .ok_or_else(|| AccountError::invalid("cursor", "malformed"))?,
            )
        };
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let service = self.clone();
        let poll = Duration::from_millis(self.inner.config.watch_poll_interval_ms.max(1));
        tokio::spawn(async move {
            let mut last_balance: Option<(i64, i64, i64, i64)> = None;
            loop {
                if position.is_none() {
                    // A fresh watch starts at the newest entry.
                    match service.latest_position(&profile).await {
                        Ok(p) => position = Some(p),
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                let after = position.unwrap_or((0, 0));
                // Balance first, entries second: an entry committed in between shows up as an
                // entry (with its own running balance), never as a balance change without one.
                let balance = match service.balance_of(&profile).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let entries = match service
                    .entries_after(&profile, after, 0, i64::MAX, WATCH_BATCH_MAX)
                    .await
                {
                    Ok(entries) => entries,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let fingerprint_of = |b: &BalanceView| {
                    (
                        b.book.minor,
                        b.held.minor,
                        b.pending_in.minor,
                        b.pending_out.minor,
                    )
                };
                let mut fingerprint = fingerprint_of(&balance);
                let got_entries = !entries.is_empty();
                for entry in entries {
                    position = Some((entry.transaction.0, entry.index));
                    // One poll may bring several entries: each event carries the balance right
                    // after its own entry (book from the running balance; held and pending as
                    // of the poll), not the balance after the last one.
                    let mut after = balance.clone();
                    let delta = entry.balance_after.minor - balance.book.minor;
                    after.book = entry.balance_after;
                    after.available = Money::new(
                        after.available.currency,
                        after.available.minor.saturating_add(delta).max(0),
                    );
                    after.as_of_ms = entry.posted_at_ms;
                    fingerprint = fingerprint_of(&after);
                    let event = WatchEvent {
                        cursor: format!("{}.{}", entry.transaction, entry.index),
                        kind: WatchEventKind::EntryPosted,
                        balance: after,
                        entry: Some(entry),
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                if !got_entries && last_balance != Some(fingerprint) {
                    let (seq, idx) = position.unwrap_or((0, 0));
                    let event = WatchEvent {
                        cursor: format!("{seq}.{idx}"),
                        kind: WatchEventKind::Snapshot,
                        balance: balance.clone(),
                        entry: None,
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                last_balance = Some(fingerprint);
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    // ----- internals -----------------------------------------------------------------------

    async fn profile(&self, id: AccountId) -> Result<Profile, AccountError> {
        let row =
            self.inner
                .ledger
                .profile(id)
                .await?
                .ok_or_else(|| AccountError::AccountNotFound {
                    account: id.to_string(),
                })?;
        Profile::from_row(row)
    }

    async fn hold_in_scope(&self, caller: &Caller, hold: HoldId) -> Result<Hold, AccountError> {
        let current = match self.inner.ledger.hold(hold).await {
            Ok(h) => h,
            Err(LedgerError::HoldNotFound { .. }) => {
                return Err(AccountError::HoldNotFound {
                    hold: hold.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let profile = self.profile(current.account).await?;
        self.check_scope(caller, &profile)?;
        Ok(current)
    }

    fn check_scope(&self, caller: &Caller, profile: &Profile) -> Result<(), AccountError> {
        match caller.scope {
            AccountScope::All => Ok(()),
            AccountScope::Own if profile.opened_by == caller.name => Ok(()),
            AccountScope::Own => Err(AccountError::OutOfScope {
                caller: caller.name.clone(),
                account: profile.id,
            }),
        }
    }

    fn page_size(&self, requested: i32) -> Result<u32, AccountError> {
        let max = self.inner.config.page_size_max;
        match requested {
            0 => Ok(self.inner.config.page_size_default.min(max)),
            n if n < 0 => Err(AccountError::invalid("page_size", "must not be negative")),
            n => Ok(u32::try_from(n).unwrap_or(max).min(max)),
        }
    }

    /// The amount in the account's currency; another currency is a mismatch, not a conversion.
    fn amount_in(&self, profile: &Profile, money: &MoneyText) -> Result<Money, AccountError> {
        if money.currency.is_empty() || money.amount.is_empty() {
            return Err(AccountError::invalid(
                "amount",
                "currency and amount are required",
            ));
        }
        let currency = Currency::from_code(&money.currency)
            .map_err(|e| AccountError::Ledger(LedgerError::from(e)))?;
        if currency != profile.currency {
            return Err(AccountError::Ledger(LedgerError::CurrencyMismatch {
                account: profile.id,
                expected: profile.currency,
                actual: currency,
            }));
        }
        Money::parse(currency, &money.amount, Sign::Positive)
            .map_err(|e| AccountError::Ledger(LedgerError::from(e)))
    }

    /// The Class III balance cap for every capped account that money flows into.
    fn caps_for(&self, targets: &[&Profile]) -> Vec<BalanceCap> {
        targets
            .iter()
            .filter(|p| p.kind == AccountKind::ClassIii)
            .map(|p| BalanceCap {
                account: p.id,
                max_minor: self.inner.rules.class_iii_balance_max_minor,
            })
            .collect()
    }

    /// Submits a command under the caller's request id, turning a counter refusal into the
    /// class rule it enforces.
    async fn submit(
        &self,
        caller: &Caller,
        request_id: &str,
        command: Command,
        checks: &[LimitCheck],
    ) -> Result<Outcome, AccountError> {
        let result = self
            .inner
            .ledger
            .submit(key(caller, request_id), command)
            .await;
        self.name_refusal(result, checks)
    }

    /// Submits a command built by another service (the cashier) whose idempotency is judged on
    /// the caller's request (`request_fingerprint`), turning counter and balance-cap refusals
    /// into the rules they enforce, like the account service's own requests.
    pub async fn submit_request(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        command: Command,
        checks: &[LimitCheck],
    ) -> Result<Outcome, AccountError> {
        let result = self
            .inner
            .ledger
            .submit_request(key, request_fingerprint, command)
            .await;
        self.name_refusal(result, checks)
    }

    /// The answer stored for a request made with [`AccountService::submit_request`], if any
    /// (see [`Ledger::answered_request`](crate::ledger::Ledger::answered_request)).
    pub async fn answered_request(
        &self,
        key: &IdempotencyKey,
        request_fingerprint: &str,
    ) -> Result<Option<Result<Outcome, LedgerError>>, AccountError> {
        Ok(self
            .inner
            .ledger
            .answered_request(key, request_fingerprint)
            .await?)
    }

    fn name_refusal(
        &self,
        result: Result<Outcome, LedgerError>,
        checks: &[LimitCheck],
    ) -> Result<Outcome, AccountError> {
        match result {
            Ok(outcome) => Ok(outcome),
            Err(LedgerError::LimitExceeded {
                key,
                cap_minor,
                used_minor,
                requested_minor,
            }) if checks.iter().any(|c| c.counter.key == key) => {
                let check = checks
                    .iter()
                    .find(|c| c.counter.key == key)
                    .ok_or(AccountError::Ledger(LedgerError::Storage))?;
                let currency = self.inner.rules.currency;
                let amount = |minor: i64| {
                    if check.window == rules::LimitWindow::Lifetime {
                        LimitAmount::Count(minor)
                    } else {
                        LimitAmount::Money(Money::new(currency, minor))
                    }
                };
                Err(AccountError::LimitExceeded {
                    rule: check.rule,
                    window: check.window,
                    period: check.period.clone(),
                    limit: amount(cap_minor),
                    used: amount(used_minor),
                    requested: amount(requested_minor),
                    remaining: amount(cap_minor.saturating_sub(used_minor).max(0)),
                })
            }
            Err(LedgerError::BalanceCapExceeded {
                account: _,
                cap,
                balance,
                requested,
            }) => Err(AccountError::LimitExceeded {
                rule: rules::LimitRule::ClassIiiBalanceCap,
                window: rules::LimitWindow::Balance,
                // A balance cap holds at every moment: it has no period.
                period: String::new(),
                limit: LimitAmount::Money(cap),
                used: LimitAmount::Money(balance),
                requested: LimitAmount::Money(requested),
                remaining: LimitAmount::Money(Money::new(
                    cap.currency,
                    cap.minor.saturating_sub(balance.minor).max(0),
                )),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn balance_of(&self, profile: &Profile) -> Result<BalanceView, AccountError> {
        let currency = profile.currency;
        let balance = if profile.kind == AccountKind::PlatformMaster {
            self.master_balance(profile).await?
        } else {
            self.inner.ledger.account(profile.id).await?.1
        };
        let date = self.today();
        let usage = self.inner.rules.usage_keys(profile.kind, profile.id, date);
        let keys: Vec<String> = usage.iter().map(|c| c.counter.key.clone()).collect();
        let values: BTreeMap<String, i64> = self
            .inner
            .ledger
            .counter_values(&keys)
            .await?
            .into_iter()
            .collect();
        let money = |minor: i64| Money::new(currency, minor);
        let mut limits: Vec<LimitUsage> = usage
            .iter()
            .map(|c| {
                let used = values.get(&c.counter.key).copied().unwrap_or(0);
                LimitUsage {
                    rule: c.rule,
                    window: c.window,
                    limit: money(c.limit_minor),
                    used: money(used),
                    remaining: money(c.limit_minor.saturating_sub(used).max(0)),
                }
            })
            .collect();
        let book = clamp(balance.posted_minor(Side::Credit));
        if profile.kind == AccountKind::ClassIii {
            // The balance cap counts what is posted and what is on its way in (as the ledger
            // checks it): what remains is what may still be topped up or received.
            let cap = self.inner.rules.class_iii_balance_max_minor;
            let used = book.saturating_add(balance.pending_credits_minor);
            limits.push(LimitUsage {
                rule: rules::LimitRule::ClassIiiBalanceCap,
                window: rules::LimitWindow::Balance,
                limit: money(cap),
                used: money(used),
                remaining: money(cap.saturating_sub(used).max(0)),
            });
        }
        let available = clamp(balance.available_minor(Side::Credit));
        Ok(BalanceView {
            account: profile.id,
            book: money(book),
            held: money(balance.held_minor),
            pending_in: money(balance.pending_credits_minor),
            pending_out: money(balance.pending_debits_minor),
            available: money(available),
            business_date: date,
            limits,
            as_of_ms: self.inner.ledger.now_ms(),
        })
    }

    /// A master account's balance: the sum of its sub-accounts' balances.
    async fn master_balance(&self, master: &Profile) -> Result<Balance, AccountError> {
        let mut total = Balance::default();
        let mut after_id = 0;
        loop {
            let children = self
                .inner
                .ledger
                .profiles(&ProfileQuery {
                    filter: ProfileFilter::Parent(master.id.0),
                    kind: None,
                    include_closed: true,
                    after_id,
                    limit: PROFILE_PAGE_MAX,
                })
                .await?;
            let Some(last) = children.last() else { break };
            after_id = last.account_id;
            for child in &children {
                let (_, b) = self
                    .inner
                    .ledger
                    .account(AccountId(child.account_id))
                    .await?;
                let add = |a: i64, b: i64| a.checked_add(b).ok_or(LedgerError::Overflow);
                total.posted_debits_minor = add(total.posted_debits_minor, b.posted_debits_minor)?;
                total.posted_credits_minor =
                    add(total.posted_credits_minor, b.posted_credits_minor)?;
                total.pending_debits_minor =
                    add(total.pending_debits_minor, b.pending_debits_minor)?;
                total.pending_credits_minor =
                    add(total.pending_credits_minor, b.pending_credits_minor)?;
                total.held_minor = add(total.held_minor, b.held_minor)?;
            }
            if children.len() < PROFILE_PAGE_MAX as usize {
                break;
            }
        }
        Ok(total)
    }

    async fn latest_position(&self, profile: &Profile) -> Result<(u64, u32), AccountError> {
        let mut position = (0, 0);
        loop {
            let page = self
                .inner
                .ledger
                .statement_page(&StatementQuery {
                    account_id: profile.id.0,
                    after: position,
                    from_ms: 0,
                    until_ms: i64::MAX,
                    limit: STATEMENT_PAGE_MAX,
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(position);
            };
            position = (last.seq, last.idx);
            if page.len() < STATEMENT_PAGE_MAX as usize {
                return Ok(position);
            }
        }
    }

    async fn entries_after(
        &self,
        profile: &Profile,
        after: (u64, u32),
        from_ms: i64,
        until_ms: i64,
        limit: u32,
    ) -> Result<Vec<StatementEntry>, AccountError> {
        let rows = self
            .inner
            .ledger
            .statement_page(&StatementQuery {
                account_id: profile.id.0,
                after,
                from_ms,
                until_ms,
                limit,
            })
            .await?;
        let currency = profile.currency;
        rows.into_iter()
            .map(|row| {
                let metadata: Metadata = serde_json::from_str(&row.metadata).unwrap_or_default();
                let debit = row.side == "D";
                let counterparty = if debit {
                    metadata.get("to")
                } else {
                    metadata.get("from")
                }
                .and_then(|id| id.parse::<u64>().ok())
                .map(AccountId)
                .filter(|id| *id != profile.id);
                let entry_type = if row.kind == "REVERSAL" {
                    EntryType::Reversal
                } else {
                    metadata
                        .get("type")
                        .and_then(|t| EntryType::parse(t))
                        .unwrap_or(EntryType::Adjustment)
                };
                Ok(StatementEntry {
                    transaction: crate::ledger::TransactionId(row.seq),
                    index: row.idx,
                    debit,
                    amount: Money::new(currency, row.amount_minor),
                    // Stored from the account's normal side: a customer account is credit-normal.
                    balance_after: Money::new(currency, row.balance_after_minor),
                    entry_type,
                    counterparty,
                    memo: metadata.get("memo").cloned().unwrap_or_default(),
                    reverses: row.reverses.map(crate::ledger::TransactionId),
                    business_date: self.inner.calendar.date_at(row.created_at_ms),
                    posted_at_ms: row.created_at_ms,
                })
            })
            .collect()
    }
}

/// Events of [`AccountService::watch`].
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// Resume after this event by passing it back as the cursor.
    pub cursor: String,
    pub kind: WatchEventKind,
    pub balance: BalanceView,
    pub entry: Option<StatementEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventKind {
    Snapshot,
    EntryPosted,
}

/// Events buffered per watcher before the producer waits.
const WATCH_BUFFER: usize = 64;
/// Entries read per poll of a watch.
const WATCH_BATCH_MAX: u32 = 256;

/// A profile with its typed fields.
#[derive(Debug, Clone)]
struct Profile {
    id: AccountId,
    kind: AccountKind,
    currency: Currency,
    owner_id: String,
    display_name: String,
    parent: Option<AccountId>,
    person_key: Option<String>,
    card_token: Option<String>,
    card: Option<card::BoundCard>,
    internal_purpose: Option<InternalPurpose>,
    opened_by: String,
    freeze_reason: String,
    opened_at_ms: i64,
    closed_at_ms: Option<i64>,
}

impl Profile {
    fn from_row(row: ProfileRow) -> Result<Profile, AccountError> {
        let corrupt = || AccountError::Ledger(LedgerError::Storage);
        let card = match (
            &row.card_token,
            &row.card_first_six,
            &row.card_last_four,
            &row.agreement_id,
        ) {
            (Some(token), Some(first), Some(last), Some(agreement)) => Some(card::BoundCard {
                token: token.clone(),
                first_six: first.clone(),
                last_four: last.clone(),
                agreement_id: agreement.clone(),
            }),
            _ => None,
        };
        Ok(Profile {
            id: AccountId(row.account_id),
            kind: AccountKind::parse(&row.kind).ok_or_else(corrupt)?,
            currency: Currency::from_code(&row.currency).map_err(|_| corrupt())?,
            owner_id: row.owner_id,
            display_name: row.display_name,
            parent: row.parent_id.map(AccountId),
            person_key: row.person_key,
            card_token: row.card_token,
            card,
            internal_purpose: row
                .internal_purpose
                .as_deref()
                .and_then(InternalPurpose::parse),
            opened_by: row.opened_by,
            freeze_reason: row.freeze_reason,
            opened_at_ms: row.opened_at_ms,
            closed_at_ms: row.closed_at_ms,
        })
    }

    fn view(&self, status: AccountStatus) -> AccountView {
        AccountView {
            id: self.id,
            kind: self.kind,
            status,
            currency: self.currency.code().to_owned(),
            owner_id: self.owner_id.clone(),
            display_name: self.display_name.clone(),
            parent: self.parent,
            bound_card: self.card.clone(),
            freeze_reason: self.freeze_reason.clone(),
            internal_purpose: self.internal_purpose,
            opened_at_ms: self.opened_at_ms,
            closed_at_ms: self.closed_at_ms,
        }
    }
}

fn hold_view(hold: Hold) -> HoldView {
    let text = |k: &str| hold.metadata.get(k).cloned().unwrap_or_default();
    HoldView {
        id: hold.id,
        account: hold.account,
        kind: hold
            .metadata
            .get("kind")
            .and_then(|k| HoldKind::parse(k))
            .unwrap_or(HoldKind::Other),
        amount: hold.amount,
        captured: Money::new(hold.amount.currency, hold.captured_minor),
        state: hold.state,
        reason: text("reason"),
        external_reference: text("external_reference"),
        created_at_ms: hold.created_at_ms,
        expires_at_ms: hold.expires_at_ms,
        capture_transaction: hold.transaction,
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

fn key(caller: &Caller, request_id: &str) -> IdempotencyKey {
    IdempotencyKey::new(caller.name.clone(), request_id)
}

/// The key of a later step of one request (settle or void after a reservation).
fn step_key(caller: &Caller, request_id: &str, step: &str) -> IdempotencyKey {
    IdempotencyKey::new(caller.name.clone(), format!("{request_id}#{step}"))
}

fn check_request_id(request_id: &str) -> Result<(), AccountError> {
    if request_id.is_empty()
        || request_id.len() > REQUEST_ID_LEN_MAX
        || request_id.contains('#')
        || !request_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(AccountError::invalid(
            "request_id",
            format!("1..={REQUEST_ID_LEN_MAX} printable ASCII characters, no '#'"),
        ));
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), AccountError> {
    if required && text.trim().is_empty() {
        return Err(AccountError::invalid(field, "required"));
    }
    if text.chars().count() > TEXT_LEN_MAX {
        return Err(AccountError::invalid(
            field,
            format!("at most {TEXT_LEN_MAX} characters"),
        ));
    }
    Ok(())
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
