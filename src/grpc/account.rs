//! `paygate.v1.AccountService`: thin handlers — convert the request, call the account service,
//! convert the answer. Errors go through the one mapping in [`crate::grpc::status`].

use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

mod convert;
mod import;

pub use self::import::IMPORT_LINES_MAX;

use self::convert::{
    account_id, account_kind, account_pb, balance_pb, entry_pb, freeze_change, hold_id, hold_pb,
    money_of, processing_pb, request_id_of,
};
pub(crate) use self::convert::{caller_of, millis, money_pb, network_of, network_pb, timestamp};
use super::closing::{BoxStream, Closing};
use crate::{
    account::{
        AccountError, AccountService, CardMovement, ListBy, OpenAccount, PlaceHold, WatchEventKind,
    },
    grpc::pb,
};

/// The gRPC face of the account service.
#[derive(Clone)]
pub struct AccountApi {
    service: AccountService,
    /// Ends the streams when the gateway shuts down.
    closing: Closing,
}

impl AccountApi {
    pub fn new(service: AccountService, closing: Closing) -> AccountApi {
        AccountApi { service, closing }
    }
}

type WatchStream = BoxStream<pb::WatchAccountResponse>;

#[tonic::async_trait]
impl pb::account_service_server::AccountService for AccountApi {
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::OpenAccountResponse>, Status> {
        let caller = caller_of(&request)?;
        let open = OpenAccount::try_from(request.into_inner())?;
        let view = self.service.open(&caller, open).await?;
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
        let request_id = request_id_of(r.request_id)?;
        let amount = money_of(r.amount)?;
        let movement = self
            .service
            .transfer(&caller, &request_id, from, to, amount, &r.memo)
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
        let request_id = request_id_of(r.request_id)?;
        let amount = money_of(r.amount)?;
        let m = self
            .service
            .top_up(&caller, &request_id, id, amount, &r.memo)
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
        let request_id = request_id_of(r.request_id)?;
        let amount = money_of(r.amount)?;
        let m = self
            .service
            .withdraw(&caller, &request_id, id, amount, &r.memo)
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
        let hold = self
            .service
            .place_hold(&caller, PlaceHold::try_from(r)?)
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
        let request_id = request_id_of(r.request_id)?;
        let hold = self.service.release_hold(&caller, &request_id, id).await?;
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
        let request_id = request_id_of(r.request_id)?;
        let amount = r.amount.map(|m| money_of(Some(m))).transpose()?;
        let (hold, transaction) = self
            .service
            .capture_hold(&caller, &request_id, id, amount, to, &r.memo)
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
        let request_id = request_id_of(r.request_id)?;
        let view = self
            .service
            .close(&caller, &request_id, id, &r.reason)
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
        Ok(Response::new(self.closing.guard(stream)))
    }

    async fn import_accounts(
        &self,
        request: Request<tonic::Streaming<pb::ImportAccountsRequest>>,
    ) -> Result<Response<import::ImportStream>, Status> {
        let caller = caller_of(&request)?;
        let stream = import::import(self.service.clone(), caller, request.into_inner());
        Ok(Response::new(self.closing.guard(stream)))
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
