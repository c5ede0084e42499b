//! ImportAccounts: bulk onboarding over one stream. Each message's lines are opened side by side
//! (so the ledger's batcher commits many of them per transaction), each exactly as OpenAccount
//! would open it; the message is answered once every line has its result.

use futures::{StreamExt as _, stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tonic_types::StatusExt;

use super::account_pb;
use crate::{
    account::{AccountError, AccountService, Caller, OpenAccount},
    grpc::{closing::BoxStream, gate::code_name, pb},
};

/// Most lines in one ImportAccountsRequest.
pub const IMPORT_LINES_MAX: usize = 1_000;
/// Responses waiting for the client to read them; past it the stream reads no further request.
const IMPORT_RESPONSES_QUEUED_MAX: usize = 4;

pub(super) type ImportStream = BoxStream<pb::ImportAccountsResponse>;

/// Answers `requests` in order until the client ends the stream or sends a malformed message.
pub(super) fn import(
    service: AccountService,
    caller: Caller,
    mut requests: Streaming<pb::ImportAccountsRequest>,
) -> ImportStream {
    let (tx, rx) = mpsc::channel(IMPORT_RESPONSES_QUEUED_MAX);
    tokio::spawn(async move {
        loop {
            let request = match requests.message().await {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            let answer = match check_chunk(&request) {
                Ok(()) => Ok(chunk(&service, &caller, request).await),
                Err(status) => Err(status),
            };
            let last = answer.is_err();
            if tx.send(answer).await.is_err() || last {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

fn check_chunk(request: &pb::ImportAccountsRequest) -> Result<(), Status> {
    let lines = request.lines.len();
    if lines == 0 || lines > IMPORT_LINES_MAX {
        return Err(AccountError::invalid(
            "lines",
            format!("1..={IMPORT_LINES_MAX} per message, got {lines}"),
        )
        .into());
    }
    Ok(())
}

/// Every line of one message, opened side by side; results in line order.
async fn chunk(
    service: &AccountService,
    caller: &Caller,
    request: pb::ImportAccountsRequest,
) -> pb::ImportAccountsResponse {
    let lines = request.lines.len();
    let results = stream::iter(request.lines)
        .map(|line| one_line(service, caller, line))
        .buffered(lines)
        .collect::<Vec<_>>()
        .await;
    debug_assert_eq!(results.len(), lines);
    pb::ImportAccountsResponse { results }
}

async fn one_line(
    service: &AccountService,
    caller: &Caller,
    line: pb::ImportAccountLine,
) -> pb::ImportAccountResult {
    let number = line.line;
    let opened = match line.account {
        None => Err(AccountError::invalid("account", "required").into()),
        Some(account) => match OpenAccount::try_from(account) {
            Ok(open) => service.open(caller, open).await.map_err(Status::from),
            Err(status) => Err(status),
        },
    };
    match opened {
        Ok(view) => pb::ImportAccountResult {
            line: number,
            account: Some(account_pb(&view)),
            refusal: None,
        },
        Err(status) => pb::ImportAccountResult {
            line: number,
            account: None,
            refusal: Some(refusal_of(&status)),
        },
    }
}

/// The code, reason and message of a refusal, as OpenAccount would have answered them.
fn refusal_of(status: &Status) -> pb::ImportRefusal {
    pb::ImportRefusal {
        code: code_name(status.code()).to_owned(),
        reason: status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_default(),
        message: status.message().to_owned(),
    }
}
