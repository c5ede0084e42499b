//! `paygate.v1.AccountService`: thin handlers — convert the request, call the account service,
//! convert the answer. Errors go through the one mapping in [`crate::grpc::status`].

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::{
    account::{
        self, AccountError, AccountKind, AccountService, AccountView, BalanceView, Caller,
        CardMovement, EntryType, FreezeChange, HoldKind, HoldView, ListBy, MoneyText, OpenAccount,
        PersonIdentity, PlaceHold, ProcessingStatus, StatementEntry, WatchEventKind,
    },
    clearing::Network,
    grpc::{gate::CallContext, pb},
    ledger::{AccountId, AccountStatus, HoldId, HoldState},
    money::Money,
};

/// The gRPC face of the account service.
#[derive(Clone)]
pub struct AccountApi {
    service: AccountService,
}

impl AccountApi {
    pub fn new(service: AccountService) -> AccountApi {
        AccountApi { service }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchAccountResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::account_service_server::AccountService for AccountApi {
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::OpenAccountResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let kind = account_kind(r.kind)?;
        let identity = r.identity.map(|i| PersonIdentity {
            full_name: i.full_name,
            document_type: pb::IdDocumentType::try_from(i.document_type)
                .ok()
                .filter(|t| *t != pb::IdDocumentType::Unspecified)
                .map(|t| t.as_str_name().to_owned())
                .unwrap_or_default(),
            document_number: i.document_number,
        });
        let parent = optional_id("parent_account_id", &r.parent_account_id)?;
        let view = self
            .service
            .open(
                &caller,
                OpenAccount {
                    request_id: r.request_id,
                    kind,
                    currency: r.currency,
                    owner_id: r.owner_id,
                    identity,
                    card_number: (!r.bound_card_number.is_empty()).then_some(r.bound_card_number),
                    parent,
                    display_name: r.display_name,
                },
            )
            .await?;
        Ok(Response::new(pb::OpenAccountResponse {
            account: Some(account_pb(&view)),
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let caller = caller_of(&request)?;
        let id = account_id("account_id", &request.get_ref().account_id)?;
        let view = self.service.get(&caller, id).await?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account_pb(&view)),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let filter = match r.filter {
            Some(pb::list_accounts_request::Filter::OwnerId(owner)) => ListBy::Owner(owner),
            Some(pb::list_accounts_request::Filter::ParentAccountId(parent)) => {
                ListBy::Parent(account_id("parent_account_id", &parent)?)
            }
            None => {
                return Err(
                    AccountError::invalid("filter", "owner_id or parent_account_id").into(),
                );
            }
        };
        let kind = if r.kind == 0 {
            None
        } else {
            Some(account_kind(r.kind)?)
        };
        let (views, next) = self
            .service
            .list(
                &caller,
                filter,
                kind,
                r.include_closed,
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: views.iter().map(account_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let caller = caller_of(&request)?;
        let id = account_id("account_id", &request.get_ref().account_id)?;
        let balance = self.service.balance(&caller, id).await?;
        Ok(Response::new(pb::GetBalanceResponse {
            balance: Some(balance_pb(&balance)),
        }))
    }

    async fn transfer(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::TransferResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let from = account_id("from_account_id", &r.from_account_id)?;
        let to = account_id("to_account_id", &r.to_account_id)?;
        let movement = self
            .service
            .transfer(
                &caller,
                &r.request_id,
                from,
                to,
                &money_text(r.amount),
                &r.memo,
            )
            .await?;
        Ok(Response::new(pb::TransferResponse {
            transaction_id: movement.transaction.to_string(),
            from_balance: Some(balance_pb(&movement.balance)),
            post_time: Some(timestamp(movement.posted_at_ms)),
        }))
    }

    async fn top_up(
        &self,
        request: Request<pb::TopUpRequest>,
    ) -> Result<Response<pb::TopUpResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = account_id("account_id", &r.account_id)?;
        let m = self
            .service
            .top_up(&caller, &r.request_id, id, &money_text(r.amount), &r.memo)
            .await?;
        Ok(Response::new(card_movement_response!(pb::TopUpResponse, m)))
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::WithdrawResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = account_id("account_id", &r.account_id)?;
        let m = self
            .service
            .withdraw(&caller, &r.request_id, id, &money_text(r.amount), &r.memo)
            .await?;
        Ok(Response::new(card_movement_response!(
            pb::WithdrawResponse,
            m
        )))
    }

    async fn freeze_account(
        &self,
        request: Request<pb::FreezeAccountRequest>,
    ) -> Result<Response<pb::FreezeAccountResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let view = self
            .service
            .set_freeze(
                &caller,
                freeze_change(r.request_id, &r.account_id, r.mode, true, r.reason)?,
            )
            .await?;
        Ok(Response::new(pb::FreezeAccountResponse {
            account: Some(account_pb(&view)),
        }))
    }

    async fn unfreeze_account(
        &self,
        request: Request<pb::UnfreezeAccountRequest>,
    ) -> Result<Response<pb::UnfreezeAccountResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let view = self
            .service
            .set_freeze(
                &caller,
                freeze_change(r.request_id, &r.account_id, r.mode, false, r.reason)?,
            )
            .await?;
        Ok(Response::new(pb::UnfreezeAccountResponse {
            account: Some(account_pb(&view)),
        }))
    }

    async fn place_hold(
        &self,
        request: Request<pb::PlaceHoldRequest>,
    ) -> Result<Response<pb::PlaceHoldResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
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
        let hold = self
            .service
            .place_hold(
                &caller,
                PlaceHold {
                    request_id: r.request_id,
                    account: account_id("account_id", &r.account_id)?,
                    amount: money_text(r.amount),
                    kind,
                    reason: r.reason,
                    external_reference: r.external_reference,
                    expires_at_ms: r.expire_time.map(|t| millis(&t)),
                },
            )
            .await?;
        Ok(Response::new(pb::PlaceHoldResponse {
            hold: Some(hold_pb(&hold)),
        }))
    }

    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = hold_id(&r.hold_id)?;
        let hold = self
            .service
            .release_hold(&caller, &r.request_id, id)
            .await?;
        Ok(Response::new(pb::ReleaseHoldResponse {
            hold: Some(hold_pb(&hold)),
        }))
    }

    async fn capture_hold(
        &self,
        request: Request<pb::CaptureHoldRequest>,
    ) -> Result<Response<pb::CaptureHoldResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = hold_id(&r.hold_id)?;
        let to = account_id("to_account_id", &r.to_account_id)?;
        let amount = r.amount.map(|m| money_text(Some(m)));
        let (hold, transaction) = self
            .service
            .capture_hold(&caller, &r.request_id, id, amount.as_ref(), to, &r.memo)
            .await?;
        Ok(Response::new(pb::CaptureHoldResponse {
            hold: Some(hold_pb(&hold)),
            transaction_id: transaction.to_string(),
        }))
    }

    async fn close_account(
        &self,
        request: Request<pb::CloseAccountRequest>,
    ) -> Result<Response<pb::CloseAccountResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = account_id("account_id", &r.account_id)?;
        let view = self
            .service
            .close(&caller, &r.request_id, id, &r.reason)
            .await?;
        Ok(Response::new(pb::CloseAccountResponse {
            account: Some(account_pb(&view)),
        }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = account_id("account_id", &r.account_id)?;
        let page = self
            .service
            .statement(
                &caller,
                id,
                r.start_time.as_ref().map(millis),
                r.end_time.as_ref().map(millis),
                r.page_size,
                &r.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListEntriesResponse {
            entries: page.entries.iter().map(entry_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn watch_account(
        &self,
        request: Request<pb::WatchAccountRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = account_id("account_id", &r.account_id)?;
        let events = self.service.watch(&caller, id, &r.cursor).await?;
        let stream = ReceiverStream::new(events).map(move |event| {
            let event = event.map_err(Status::from)?;
            let event_type = match event.kind {
                WatchEventKind::Snapshot => pb::AccountEventType::Snapshot,
                WatchEventKind::EntryPosted => pb::AccountEventType::EntryPosted,
            };
            // Several snapshots can share a cursor (a hold placed, then released: no entry in
            // between), and a later one may show an earlier state again: a snapshot's id names
            // the instant and the state, so de-duplicating on it drops only true repeats.
            let b = &event.balance;
            let event_id = match event.kind {
                WatchEventKind::Snapshot => format!(
                    "{id}:{}:{}:{}:{}.{}.{}.{}",
                    event.cursor,
                    event_type.as_str_name(),
                    b.as_of_ms,
                    b.book.minor,
                    b.held.minor,
                    b.pending_in.minor,
                    b.pending_out.minor
                ),
                WatchEventKind::EntryPosted => {
                    format!("{id}:{}:{}", event.cursor, event_type.as_str_name())
                }
            };
            Ok(pb::WatchAccountResponse {
                event_id,
                cursor: event.cursor,
                account_id: id.to_string(),
                event_type: event_type as i32,
                balance: Some(balance_pb(&event.balance)),
                entry: event.entry.as_ref().map(entry_pb),
                hold: None,
                event_time: Some(timestamp(event.balance.as_of_ms)),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

// ----- conversions ---------------------------------------------------------------------------

/// TopUpResponse and WithdrawResponse carry the same fields.
macro_rules! card_movement_response {
    ($response:path, $movement:expr) => {{
        let m: CardMovement = $movement;
        $response {
            transaction_id: m.transaction.map(|t| t.to_string()).unwrap_or_default(),
            status: processing_pb(m.status) as i32,
            network: network_pb(m.network) as i32,
            network_reference: m.network_reference,
            balance: Some(balance_pb(&m.balance)),
        }
    }};
}
use card_movement_response;

fn network_pb(network: Network) -> pb::ClearingNetwork {
    match network {
        Network::OnUs => pb::ClearingNetwork::OnUs,
    }
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

fn account_id(field: &'static str, text: &str) -> Result<AccountId, Status> {
    parse_id(text)
        .map(AccountId)
        .ok_or_else(|| AccountError::invalid(field, "an account id").into())
}

fn optional_id(field: &'static str, text: &str) -> Result<Option<AccountId>, Status> {
    if text.is_empty() {
        Ok(None)
    } else {
        account_id(field, text).map(Some)
    }
}

fn hold_id(text: &str) -> Result<HoldId, Status> {
    parse_id(text)
        .map(HoldId)
        .ok_or_else(|| AccountError::invalid("hold_id", "a hold id").into())
}

/// Ids are positive decimal integers; anything else (signs, spaces, letters) is refused.
fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|id| *id > 0)
}

fn account_kind(value: i32) -> Result<AccountKind, Status> {
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

fn freeze_change(
    request_id: String,
    account: &str,
    mode: i32,
    freeze: bool,
    reason: String,
) -> Result<FreezeChange, Status> {
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

pub(crate) fn money_text(money: Option<pb::Money>) -> MoneyText {
    money
        .map(|m| MoneyText {
            currency: m.currency,
            amount: m.amount,
        })
        .unwrap_or_default()
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

fn processing_pb(status: ProcessingStatus) -> pb::ProcessingStatus {
    match status {
        ProcessingStatus::Processing => pb::ProcessingStatus::Processing,
        ProcessingStatus::Succeeded => pb::ProcessingStatus::Succeeded,
        ProcessingStatus::Failed => pb::ProcessingStatus::Failed,
    }
}

fn account_pb(view: &AccountView) -> pb::Account {
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
        Some(account::InternalPurpose::ClearingSuspenseOnUs) => {
            pb::InternalAccountPurpose::ClearingSuspense
        }
        Some(account::InternalPurpose::FundSettlement) => {
            pb::InternalAccountPurpose::FundSettlement
        }
        Some(account::InternalPurpose::Rounding) => pb::InternalAccountPurpose::Rounding,
    };
    let network = if view.internal_purpose == Some(account::InternalPurpose::ClearingSuspenseOnUs) {
        pb::ClearingNetwork::OnUs
    } else {
        pb::ClearingNetwork::Unspecified
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

fn balance_pb(b: &BalanceView) -> pb::Balance {
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

fn hold_pb(h: &HoldView) -> pb::Hold {
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

fn entry_pb(e: &StatementEntry) -> pb::Entry {
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
