//! Wire ↔ domain conversions of the account handlers: requests are parsed here once (ids,
//! request ids, amounts as [`Money`], enums; `UNSPECIFIED` refused) into the domain types the
//! service takes, and answers are converted back.

use tonic::{Request, Status};

use crate::{
    account::{
        self, AccountError, AccountKind, AccountView, BalanceView, Caller, EntryType, FreezeChange,
        HoldKind, HoldView, IdDocumentType, OpenAccount, PersonIdentity, PlaceHold,
        ProcessingStatus, StatementEntry,
    },
    clearing::Network,
    grpc::{gate::CallContext, pb},
    ledger::{AccountId, AccountStatus, HoldId, HoldState, REQUEST_ID_LEN_MAX, RequestId},
    money::{Currency, Money, Sign},
};

/// A network as the contract's `ClearingNetwork` (by the number its spec declares).
pub(crate) fn network_pb(network: Network) -> pb::ClearingNetwork {
    pb::ClearingNetwork::try_from(network.contract_number())
        .unwrap_or(pb::ClearingNetwork::Unspecified)
}

/// The network of a `ClearingNetwork` value; `None` for `UNSPECIFIED` or a value unknown here.
pub(crate) fn network_of(value: i32) -> Option<Network> {
    Network::from_contract(value)
}

pub(crate) fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    let context = request
        .extensions()
        .get::<CallContext>()
        .ok_or_else(|| Status::unauthenticated("no caller"))?;
    Ok(Caller {
        name: context.caller.to_string(),
        scope: context.account_scope,
    })
}

pub(super) fn account_id(field: &'static str, text: &str) -> Result<AccountId, Status> {
    parse_id(text)
        .map(AccountId)
        .ok_or_else(|| AccountError::invalid(field, "an account id").into())
}

pub(super) fn optional_id(field: &'static str, text: &str) -> Result<Option<AccountId>, Status> {
    if text.is_empty() {
        Ok(None)
    } else {
        account_id(field, text).map(Some)
    }
}

pub(super) fn hold_id(text: &str) -> Result<HoldId, Status> {
    parse_id(text)
        .map(HoldId)
        .ok_or_else(|| AccountError::invalid("hold_id", "a hold id").into())
}

/// Ids are positive decimal integers; anything else (signs, spaces, letters) is refused.
pub(super) fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|id| *id > 0)
}

pub(super) fn account_kind(value: i32) -> Result<AccountKind, Status> {
    Ok(match pb::AccountKind::try_from(value) {
        Ok(pb::AccountKind::ClassIi) => AccountKind::ClassIi,
        Ok(pb::AccountKind::ClassIii) => AccountKind::ClassIii,
        Ok(pb::AccountKind::MerchantSettlement) => AccountKind::MerchantSettlement,
        Ok(pb::AccountKind::PlatformMaster) => AccountKind::PlatformMaster,
        Ok(pb::AccountKind::PlatformSub) => AccountKind::PlatformSub,
        Ok(pb::AccountKind::BankInternal) => AccountKind::BankInternal,
        Ok(pb::AccountKind::Unspecified) | Err(_) => {
            return Err(AccountError::invalid("kind", "an account kind is required").into());
        }
    })
}

/// A freeze (`freeze` true) or unfreeze request's fields, parsed.
pub(super) fn freeze_change(
    request_id: String,
    account: &str,
    mode: i32,
    freeze: bool,
    reason: String,
) -> Result<FreezeChange, Status> {
    let request_id = request_id_of(request_id)?;
    let (no_debit, no_credit) = match pb::FreezeMode::try_from(mode) {
        Ok(pb::FreezeMode::NoDebit) => (true, false),
        Ok(pb::FreezeMode::NoCredit) => (false, true),
        Ok(pb::FreezeMode::Both) => (true, true),
        Ok(pb::FreezeMode::Unspecified) | Err(_) => {
            return Err(AccountError::invalid("mode", "NO_DEBIT, NO_CREDIT or BOTH").into());
        }
    };
    Ok(FreezeChange {
        request_id,
        account: account_id("account_id", account)?,
        no_debit,
        no_credit,
        freeze,
        reason,
    })
}

/// The caller's request id, checked once here.
pub(super) fn request_id_of(text: String) -> Result<RequestId, Status> {
    RequestId::try_from(text).map_err(|_| {
        AccountError::invalid(
            "request_id",
            format!("1..={REQUEST_ID_LEN_MAX} printable ASCII characters, no '#'"),
        )
        .into()
    })
}

/// An amount: currency and decimal string, both required, scaled per the currency (ISO 4217)
/// and positive. Whether it is the account's currency is the service's question.
pub(super) fn money_of(money: Option<pb::Money>) -> Result<Money, Status> {
    let money = money.unwrap_or_default();
    if money.currency.is_empty() || money.amount.is_empty() {
        return Err(AccountError::invalid("amount", "currency and amount are required").into());
    }
    let invalid = |e| Status::from(AccountError::Ledger(e));
    let currency = Currency::from_code(&money.currency).map_err(|e| invalid(e.into()))?;
    Money::parse(currency, &money.amount, Sign::Positive).map_err(|e| invalid(e.into()))
}

impl TryFrom<pb::OpenAccountRequest> for OpenAccount {
    type Error = Status;

    fn try_from(r: pb::OpenAccountRequest) -> Result<OpenAccount, Status> {
        let kind = account_kind(r.kind)?;
        let parent = optional_id("parent_account_id", &r.parent_account_id)?;
        let request_id = request_id_of(r.request_id)?;
        let currency = if r.currency.is_empty() {
            None
        } else {
            Some(
                Currency::from_code(&r.currency)
                    .map_err(|e| AccountError::invalid("currency", e.to_string()))?,
            )
        };
        let identity = r.identity.map(|i| PersonIdentity {
            full_name: i.full_name,
            document_type: document_type_of(i.document_type),
            document_number: i.document_number,
        });
        Ok(OpenAccount {
            request_id,
            kind,
            currency,
            owner_id: r.owner_id,
            identity,
            card_number: (!r.bound_card_number.is_empty()).then_some(r.bound_card_number),
            parent,
            display_name: r.display_name,
        })
    }
}

impl TryFrom<pb::PlaceHoldRequest> for PlaceHold {
    type Error = Status;

    fn try_from(r: pb::PlaceHoldRequest) -> Result<PlaceHold, Status> {
        let kind = match pb::HoldKind::try_from(r.kind) {
            Ok(pb::HoldKind::Judicial) => HoldKind::Judicial,
            Ok(pb::HoldKind::PreAuthorization) => HoldKind::PreAuthorization,
            Ok(pb::HoldKind::Other) => HoldKind::Other,
            Ok(pb::HoldKind::Unspecified) | Err(_) => {
                return Err(
                    AccountError::invalid("kind", "JUDICIAL, PRE_AUTHORIZATION or OTHER").into(),
                );
            }
        };
        let account = account_id("account_id", &r.account_id)?;
        Ok(PlaceHold {
            request_id: request_id_of(r.request_id)?,
            account,
            amount: money_of(r.amount)?,
            kind,
            reason: r.reason,
            external_reference: r.external_reference,
            expires_at_ms: r.expire_time.map(|t| millis(&t)),
        })
    }
}

/// The identity document type of the wire (`None` when unset or unknown).
fn document_type_of(wire: i32) -> Option<IdDocumentType> {
    match pb::IdDocumentType::try_from(wire).ok()? {
        pb::IdDocumentType::Unspecified => None,
        pb::IdDocumentType::ResidentIdCard => Some(IdDocumentType::ResidentIdCard),
        pb::IdDocumentType::Passport => Some(IdDocumentType::Passport),
        pb::IdDocumentType::HkMacaoPermit => Some(IdDocumentType::HkMacaoPermit),
        pb::IdDocumentType::TaiwanPermit => Some(IdDocumentType::TaiwanPermit),
        pb::IdDocumentType::ForeignPermanentResident => {
            Some(IdDocumentType::ForeignPermanentResident)
        }
    }
}

pub(crate) fn money_pb(money: Money) -> pb::Money {
    pb::Money {
        currency: money.currency.code().to_owned(),
        amount: money.to_decimal_string(),
    }
}

pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub(crate) fn millis(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos.clamp(0, 999_999_999) / 1_000_000))
}

pub(super) fn processing_pb(status: ProcessingStatus) -> pb::ProcessingStatus {
    match status {
        ProcessingStatus::Processing => pb::ProcessingStatus::Processing,
        ProcessingStatus::Succeeded => pb::ProcessingStatus::Succeeded,
        ProcessingStatus::Failed => pb::ProcessingStatus::Failed,
    }
}

pub(super) fn account_pb(view: &AccountView) -> pb::Account {
    let kind = match view.kind {
        AccountKind::ClassIi => pb::AccountKind::ClassIi,
        AccountKind::ClassIii => pb::AccountKind::ClassIii,
        AccountKind::MerchantSettlement => pb::AccountKind::MerchantSettlement,
        AccountKind::PlatformMaster => pb::AccountKind::PlatformMaster,
        AccountKind::PlatformSub => pb::AccountKind::PlatformSub,
        AccountKind::BankInternal => pb::AccountKind::BankInternal,
    };
    let (status, freeze) = match view.status {
        AccountStatus::Active => (pb::AccountStatus::Active, pb::FreezeMode::Unspecified),
        AccountStatus::Frozen {
            no_debit,
            no_credit,
        } => (
            pb::AccountStatus::Active,
            match (no_debit, no_credit) {
                (true, true) => pb::FreezeMode::Both,
                (true, false) => pb::FreezeMode::NoDebit,
                (false, true) => pb::FreezeMode::NoCredit,
                (false, false) => pb::FreezeMode::Unspecified,
            },
        ),
        AccountStatus::Closed => (pb::AccountStatus::Closed, pb::FreezeMode::Unspecified),
    };
    let purpose = match view.internal_purpose {
        None => pb::InternalAccountPurpose::Unspecified,
        Some(account::InternalPurpose::FeeIncome) => pb::InternalAccountPurpose::FeeIncome,
        Some(account::InternalPurpose::ClearingSuspense(_)) => {
            pb::InternalAccountPurpose::ClearingSuspense
        }
        Some(account::InternalPurpose::FundSettlement) => {
            pb::InternalAccountPurpose::FundSettlement
        }
        Some(account::InternalPurpose::Rounding) => pb::InternalAccountPurpose::Rounding,
        Some(account::InternalPurpose::ReconAdjustment) => {
            pb::InternalAccountPurpose::ReconAdjustment
        }
    };
    let network = match view.internal_purpose {
        Some(account::InternalPurpose::ClearingSuspense(network)) => network_pb(network),
        _ => pb::ClearingNetwork::Unspecified,
    };
    pb::Account {
        account_id: view.id.to_string(),
        kind: kind as i32,
        status: status as i32,
        currency: view.currency.clone(),
        owner_id: view.owner_id.clone(),
        display_name: view.display_name.clone(),
        parent_account_id: view.parent.map(|p| p.to_string()).unwrap_or_default(),
        bound_card: view.bound_card.as_ref().map(|c| pb::BoundCard {
            masked_number: c.masked(),
            first_six: c.first_six.clone(),
            last_four: c.last_four.clone(),
            issuer_name: String::new(),
            agreement_id: c.agreement_id.clone(),
        }),
        freeze_mode: freeze as i32,
        freeze_reason: view.freeze_reason.clone(),
        internal_purpose: purpose as i32,
        clearing_network: network as i32,
        open_time: Some(timestamp(view.opened_at_ms)),
        close_time: view.closed_at_ms.map(timestamp),
    }
}

pub(super) fn balance_pb(b: &BalanceView) -> pb::Balance {
    pb::Balance {
        account_id: b.account.to_string(),
        book: Some(money_pb(b.book)),
        held: Some(money_pb(b.held)),
        pending_in: Some(money_pb(b.pending_in)),
        pending_out: Some(money_pb(b.pending_out)),
        available: Some(money_pb(b.available)),
        business_date: b.business_date.to_string(),
        limits: b
            .limits
            .iter()
            .map(|l| pb::LimitUsage {
                limit_rule: l.rule.name().to_owned(),
                window: match l.window {
                    account::rules::LimitWindow::Day => pb::LimitWindow::Day,
                    account::rules::LimitWindow::Year => pb::LimitWindow::Year,
                    account::rules::LimitWindow::Balance => pb::LimitWindow::Balance,
                    account::rules::LimitWindow::Lifetime => pb::LimitWindow::Unspecified,
                } as i32,
                limit: Some(money_pb(l.limit)),
                used: Some(money_pb(l.used)),
                remaining: Some(money_pb(l.remaining)),
            })
            .collect(),
        as_of_time: Some(timestamp(b.as_of_ms)),
    }
}

pub(super) fn hold_pb(h: &HoldView) -> pb::Hold {
    let kind = match h.kind {
        HoldKind::Judicial => pb::HoldKind::Judicial,
        HoldKind::PreAuthorization => pb::HoldKind::PreAuthorization,
        HoldKind::Other => pb::HoldKind::Other,
    };
    let status = match h.state {
        HoldState::Open => pb::HoldStatus::Active,
        HoldState::Released => pb::HoldStatus::Released,
        HoldState::Captured => pb::HoldStatus::Captured,
        HoldState::Expired => pb::HoldStatus::Expired,
    };
    pb::Hold {
        hold_id: h.id.to_string(),
        account_id: h.account.to_string(),
        kind: kind as i32,
        amount: Some(money_pb(h.amount)),
        captured_amount: Some(money_pb(h.captured)),
        status: status as i32,
        reason: h.reason.clone(),
        external_reference: h.external_reference.clone(),
        create_time: Some(timestamp(h.created_at_ms)),
        expire_time: h.expires_at_ms.map(timestamp),
        resolve_time: None,
        capture_transaction_id: h
            .capture_transaction
            .map(|t| t.to_string())
            .unwrap_or_default(),
    }
}

pub(super) fn entry_pb(e: &StatementEntry) -> pb::Entry {
    let entry_type = match e.entry_type {
        EntryType::Transfer => pb::EntryType::Transfer,
        EntryType::TopUp => pb::EntryType::TopUp,
        EntryType::Withdrawal => pb::EntryType::Withdrawal,
        EntryType::Payment => pb::EntryType::Payment,
        EntryType::Refund => pb::EntryType::Refund,
        EntryType::Fee => pb::EntryType::Fee,
        EntryType::HoldCapture => pb::EntryType::HoldCapture,
        EntryType::Reversal => pb::EntryType::Reversal,
        EntryType::Adjustment => pb::EntryType::Adjustment,
    };
    pb::Entry {
        entry_id: format!("{}.{}", e.transaction, e.index),
        transaction_id: e.transaction.to_string(),
        sequence: i64::try_from(e.transaction.0).unwrap_or(i64::MAX),
        direction: if e.debit {
            pb::EntryDirection::Debit
        } else {
            pb::EntryDirection::Credit
        } as i32,
        amount: Some(money_pb(e.amount)),
        balance_after: Some(money_pb(e.balance_after)),
        entry_type: entry_type as i32,
        counterparty_account_id: e.counterparty.map(|c| c.to_string()).unwrap_or_default(),
        memo: e.memo.clone(),
        reverses_transaction_id: e.reverses.map(|t| t.to_string()).unwrap_or_default(),
        business_date: e.business_date.to_string(),
        post_time: Some(timestamp(e.posted_at_ms)),
    }
}

#[cfg(test)]
mod networks {
    use super::*;

    #[test]
    fn every_network_has_its_own_contract_value_and_every_value_a_network() {
        let mut values = Vec::new();
        for network in Network::all() {
            let value = network_pb(network);
            assert_ne!(value, pb::ClearingNetwork::Unspecified, "{network:?}");
            assert_eq!(network_of(value as i32), Some(network));
            assert!(!values.contains(&value), "{network:?}");
            values.push(value);
        }
        let contract = (1..=i32::from(u8::MAX))
            .filter(|n| pb::ClearingNetwork::try_from(*n).is_ok())
            .count();
        assert_eq!(
            contract,
            values.len(),
            "a ClearingNetwork value with no network"
        );
        assert_eq!(network_of(pb::ClearingNetwork::Unspecified as i32), None);
    }
}
