//! `paygate.v1.OperationsService`: thin handlers over the end-of-day run's operator face
//! ([`Operations`]). The wire is parsed once into networks, periods, dates and request ids.

use time::Date;
use tonic::{Request, Response, Status};

use crate::{
    cashier::SettlementStatement,
    clearing::{
        Network, ReconPeriod,
        matching::{Break, BreakKind, OurStatus},
        recon::{ReconKind, ReconStatus},
    },
    eod::{
        StepRecord, StepState,
        adjust::AdjustedBreak,
        operations::{Operations, OperationsError},
        reconcile::parse_period,
    },
    grpc::{
        account::{caller_of, money_pb, network_of, timestamp},
        pb,
    },
    ledger::RequestId,
    money::{Currency, Money},
    yields::{format_date, parse_date},
};

/// Longest merchant id a request may name.
const MERCHANT_ID_LEN_MAX: usize = 64;

/// The gRPC face of the operations.
#[derive(Clone)]
pub struct OperationsApi {
    operations: Operations,
}

impl OperationsApi {
    pub fn new(operations: Operations) -> OperationsApi {
        OperationsApi { operations }
    }
}

// ----- parsing the wire ---------------------------------------------------------------------

/// The network a request names: one that has reconciliations (not on-us, not unset).
fn network(value: i32) -> Result<Network, OperationsError> {
    network_of(value)
        .filter(|n| *n != Network::ON_US)
        .ok_or_else(|| OperationsError::invalid("network", "a clearing network other than on-us"))
}

fn network_and_period(value: i32, text: &str) -> Result<(Network, ReconPeriod), OperationsError> {
    let network = network(value)?;
    let period = parse_period(network, text).map_err(|refusal| OperationsError::Period {
        field: "period",
        refusal,
    })?;
    Ok((network, period))
}

fn business_date(text: &str) -> Result<Date, OperationsError> {
    parse_date("business_date", text)
        .map_err(|_| OperationsError::invalid("business_date", "a date YYYY-MM-DD"))
}

// ----- converting back ----------------------------------------------------------------------

fn fen(currency: Currency, minor: i64) -> Option<pb::Money> {
    Some(money_pb(Money::new(currency, minor)))
}

fn adjustment_pb(a: &AdjustedBreak, currency: Currency) -> pb::BreakAdjustment {
    pb::BreakAdjustment {
        amount: fen(currency, a.amount_minor),
        operator: a.operator.clone(),
        reason: a.reason.clone(),
        adjust_time: Some(timestamp(a.at_ms)),
    }
}

fn break_pb(b: &Break, adjusted: Option<&AdjustedBreak>, currency: Currency) -> pb::ReconBreak {
    let ours_status = match b.ours_status {
        Some(OurStatus::Succeeded) => pb::ReconLineStatus::Succeeded,
        Some(OurStatus::Failed) => pb::ReconLineStatus::Failed,
        Some(OurStatus::Unsettled) => pb::ReconLineStatus::Unsettled,
        None => pb::ReconLineStatus::Unspecified,
    };
    let theirs_status = match b.theirs_status {
        Some(ReconStatus::Succeeded) => pb::ReconLineStatus::Succeeded,
        Some(ReconStatus::Failed) => pb::ReconLineStatus::Failed,
        Some(ReconStatus::Reversed) => pb::ReconLineStatus::Reversed,
        None => pb::ReconLineStatus::Unspecified,
    };
    pb::ReconBreak {
        kind: match b.kind {
            BreakKind::TheirsOnly => pb::BreakKind::TheirsOnly,
            BreakKind::OursOnly => pb::BreakKind::OursOnly,
            BreakKind::AmountDiffers => pb::BreakKind::AmountDiffers,
            BreakKind::StatusDiffers => pb::BreakKind::StatusDiffers,
        } as i32,
        reference: b.reference.clone(),
        ours_amount: b.ours_amount_minor.and_then(|m| fen(currency, m)),
        theirs_amount: b.theirs_amount_minor.and_then(|m| fen(currency, m)),
        ours_status: ours_status as i32,
        theirs_status: theirs_status as i32,
        theirs_movement: match b.theirs_movement {
            Some(ReconKind::Debit) => pb::ReconMovement::Debit,
            Some(ReconKind::Credit) => pb::ReconMovement::Credit,
            Some(ReconKind::Refund) => pb::ReconMovement::Refund,
            None => pb::ReconMovement::Unspecified,
        } as i32,
        adjustment: adjusted.map(|a| adjustment_pb(a, currency)),
    }
}

fn step_pb(r: &StepRecord) -> pb::EndOfDayStep {
    pb::EndOfDayStep {
        step: r.step.clone(),
        state: match r.state {
            StepState::Pending => pb::EndOfDayStepState::Pending,
            StepState::Waiting => pb::EndOfDayStepState::Waiting,
            StepState::Failed => pb::EndOfDayStepState::Failed,
            StepState::Done => pb::EndOfDayStepState::Done,
            StepState::Skipped => pb::EndOfDayStepState::Skipped,
        } as i32,
        attempts: i32::try_from(r.attempts).unwrap_or(i32::MAX),
        due_time: Some(timestamp(r.due_at_ms)),
        finish_time: (r.finished_at_ms > 0).then(|| timestamp(r.finished_at_ms)),
        detail: r.detail.clone(),
    }
}

fn settlement_pb(s: &SettlementStatement, currency: Currency) -> pb::MerchantSettlement {
    pb::MerchantSettlement {
        merchant_id: s.merchant_id.clone(),
        business_date: s.date.clone(),
        settlement_account_id: s.settlement_account_id.to_string(),
        payments: i32::try_from(s.payments).unwrap_or(i32::MAX),
        gross: fen(currency, s.gross_minor),
        refunds: i32::try_from(s.refunds).unwrap_or(i32::MAX),
        refunded: fen(currency, s.refunded_minor),
        fees: fen(currency, s.fees_minor),
        net: fen(currency, s.net_minor),
        closing_balance: fen(currency, s.closing_balance_minor),
    }
}

#[tonic::async_trait]
impl pb::operations_service_server::OperationsService for OperationsApi {
    async fn get_reconciliation(
        &self,
        request: Request<pb::GetReconciliationRequest>,
    ) -> Result<Response<pb::GetReconciliationResponse>, Status> {
        let r = request.into_inner();
        let (network, period) = network_and_period(r.network, &r.period)?;
        let recon = self.operations.reconciliation(network, &period).await?;
        let currency = self.operations.currency();
        let stored = &recon.stored;
        Ok(Response::new(pb::GetReconciliationResponse {
            network: r.network,
            period: period.as_text(),
            matched: i32::try_from(stored.matched).unwrap_or(i32::MAX),
            unsettled: i32::try_from(stored.unsettled).unwrap_or(i32::MAX),
            net: fen(currency, stored.net_minor),
            breaks: recon
                .breaks
                .iter()
                .map(|b| break_pb(b, recon.adjustment(&b.reference), currency))
                .collect(),
            carried: stored.carried.clone(),
            their_lines: i32::try_from(recon.their_lines).unwrap_or(i32::MAX),
            our_lines: i32::try_from(recon.our_lines).unwrap_or(i32::MAX),
        }))
    }

    async fn adjust_break(
        &self,
        request: Request<pb::AdjustBreakRequest>,
    ) -> Result<Response<pb::AdjustBreakResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let request_id = RequestId::try_from(r.request_id)
            .map_err(|e| OperationsError::invalid("request_id", e.to_string()))?;
        let (network, period) = network_and_period(r.network, &r.period)?;
        let done = self
            .operations
            .adjust_break(&caller, request_id, network, period, r.reference, r.reason)
            .await?;
        Ok(Response::new(pb::AdjustBreakResponse {
            reference: done.reference.clone(),
            adjustment: Some(adjustment_pb(&done, self.operations.currency())),
        }))
    }

    async fn get_end_of_day(
        &self,
        request: Request<pb::GetEndOfDayRequest>,
    ) -> Result<Response<pb::GetEndOfDayResponse>, Status> {
        let date = business_date(&request.get_ref().business_date)?;
        let records = self.operations.end_of_day(date).await?;
        Ok(Response::new(pb::GetEndOfDayResponse {
            business_date: format_date(date),
            steps: records.iter().map(step_pb).collect(),
        }))
    }

    async fn get_merchant_settlement(
        &self,
        request: Request<pb::GetMerchantSettlementRequest>,
    ) -> Result<Response<pb::GetMerchantSettlementResponse>, Status> {
        let r = request.into_inner();
        if r.merchant_id.is_empty() || r.merchant_id.len() > MERCHANT_ID_LEN_MAX {
            return Err(OperationsError::invalid("merchant_id", "a merchant id").into());
        }
        let date = business_date(&r.business_date)?;
        let statement = self
            .operations
            .merchant_settlement(&r.merchant_id, date)
            .await?;
        Ok(Response::new(pb::GetMerchantSettlementResponse {
            settlement: Some(settlement_pb(&statement, self.operations.currency())),
        }))
    }
}
