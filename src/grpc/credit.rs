//! `paygate.v1.CreditService`: thin handlers. The wire is parsed once, with `TryFrom`, into the
//! credit service's domain types (`Money`, `RequestId`, `AccountId`, rates); past here nothing
//! re-checks the wire.

use tonic::{Request, Response, Status};

use crate::{
    credit::{
        AdjustLimit, CreditError, CreditService, FreezeLine, LineStatus, LineView, OpenLine, Repay,
        check_line_id, parse_rate,
    },
    grpc::{
        account::{caller_of, money_pb, timestamp},
        pb,
    },
    ledger::{AccountId, RequestId},
    money::{Currency, Money, Sign},
    yields::{format_date, parse_date},
};

/// The gRPC face of the credit service.
#[derive(Clone)]
pub struct CreditApi {
    service: CreditService,
}

impl CreditApi {
    pub fn new(service: CreditService) -> CreditApi {
        CreditApi { service }
    }
}

// ----- parsing the wire ---------------------------------------------------------------------

fn request_id(text: String) -> Result<RequestId, CreditError> {
    RequestId::try_from(text).map_err(|e| CreditError::invalid("request_id", e.to_string()))
}

fn account_id(field: &'static str, text: &str) -> Result<AccountId, CreditError> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CreditError::invalid(field, "an account id"));
    }
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(AccountId)
        .ok_or_else(|| CreditError::invalid(field, "an account id"))
}

fn money(field: &'static str, m: Option<pb::Money>) -> Result<Money, CreditError> {
    let m = m.ok_or_else(|| CreditError::invalid(field, "required"))?;
    let currency =
        Currency::from_code(&m.currency).map_err(|e| CreditError::invalid(field, e.to_string()))?;
    Money::parse(currency, &m.amount, Sign::Positive)
        .map_err(|e| CreditError::invalid(field, e.to_string()))
}

fn line_id(text: String) -> Result<String, CreditError> {
    check_line_id(&text)?;
    Ok(text)
}

impl TryFrom<pb::OpenCreditLineRequest> for OpenLine {
    type Error = CreditError;

    fn try_from(r: pb::OpenCreditLineRequest) -> Result<OpenLine, CreditError> {
        Ok(OpenLine {
            request_id: request_id(r.request_id)?,
            account: account_id("account_id", &r.account_id)?,
            limit: money("limit", r.limit)?,
            annual_rate: parse_rate("annual_rate", &r.annual_rate)?,
            grace_days: u32::try_from(r.grace_days)
                .map_err(|_| CreditError::invalid("grace_days", "must not be negative"))?,
            repayment_day: u8::try_from(r.repayment_day)
                .map_err(|_| CreditError::invalid("repayment_day", "a day of the month"))?,
        })
    }
}

impl TryFrom<pb::AdjustLimitRequest> for AdjustLimit {
    type Error = CreditError;

    fn try_from(r: pb::AdjustLimitRequest) -> Result<AdjustLimit, CreditError> {
        Ok(AdjustLimit {
            request_id: request_id(r.request_id)?,
            line_id: line_id(r.credit_line_id)?,
            limit: money("limit", r.limit)?,
        })
    }
}

impl TryFrom<pb::FreezeCreditLineRequest> for FreezeLine {
    type Error = CreditError;

    fn try_from(r: pb::FreezeCreditLineRequest) -> Result<FreezeLine, CreditError> {
        Ok(FreezeLine {
            request_id: request_id(r.request_id)?,
            line_id: line_id(r.credit_line_id)?,
            frozen: r.frozen,
            reason: r.reason,
        })
    }
}

impl TryFrom<pb::RepayRequest> for Repay {
    type Error = CreditError;

    fn try_from(r: pb::RepayRequest) -> Result<Repay, CreditError> {
        Ok(Repay {
            request_id: request_id(r.request_id)?,
            line_id: line_id(r.credit_line_id)?,
            amount: money("amount", r.amount)?,
            from: account_id("from_account_id", &r.from_account_id)?,
        })
    }
}

// ----- converting back ----------------------------------------------------------------------

fn line_pb(v: &LineView) -> pb::CreditLine {
    let l = &v.line;
    pb::CreditLine {
        credit_line_id: l.line_id.clone(),
        account_id: l.account.to_string(),
        status: match l.status {
            LineStatus::Active => pb::CreditLineStatus::Active,
            LineStatus::Frozen => pb::CreditLineStatus::Frozen,
        } as i32,
        limit: Some(money_pb(l.limit)),
        used: Some(money_pb(v.used)),
        available: Some(money_pb(v.available)),
        annual_rate: l.annual_rate.to_string(),
        grace_days: i32::try_from(l.grace_days).unwrap_or(i32::MAX),
        repayment_day: i32::from(l.repayment_day),
        next_due_date: v.next_due.map(format_date).unwrap_or_default(),
        open_time: Some(timestamp(l.opened_at_ms)),
        receivable_account_id: l.receivable.to_string(),
        interest_due: Some(money_pb(v.interest_due)),
        accrued_through_date: l.accrued_through.map(format_date).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::credit_service_server::CreditService for CreditApi {
    async fn open_credit_line(
        &self,
        request: Request<pb::OpenCreditLineRequest>,
    ) -> Result<Response<pb::OpenCreditLineResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = OpenLine::try_from(request.into_inner())?;
        let view = self.service.open_line(&caller, r).await?;
        Ok(Response::new(pb::OpenCreditLineResponse {
            credit_line: Some(line_pb(&view)),
        }))
    }

    async fn get_credit_line(
        &self,
        request: Request<pb::GetCreditLineRequest>,
    ) -> Result<Response<pb::GetCreditLineResponse>, Status> {
        let caller = caller_of(&request)?;
        let id = line_id(request.into_inner().credit_line_id)?;
        let view = self.service.line(&caller, &id).await?;
        Ok(Response::new(pb::GetCreditLineResponse {
            credit_line: Some(line_pb(&view)),
        }))
    }

    async fn adjust_limit(
        &self,
        request: Request<pb::AdjustLimitRequest>,
    ) -> Result<Response<pb::AdjustLimitResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = AdjustLimit::try_from(request.into_inner())?;
        let view = self.service.adjust_limit(&caller, r).await?;
        Ok(Response::new(pb::AdjustLimitResponse {
            credit_line: Some(line_pb(&view)),
        }))
    }

    async fn freeze_credit_line(
        &self,
        request: Request<pb::FreezeCreditLineRequest>,
    ) -> Result<Response<pb::FreezeCreditLineResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = FreezeLine::try_from(request.into_inner())?;
        let view = self.service.freeze_line(&caller, r).await?;
        Ok(Response::new(pb::FreezeCreditLineResponse {
            credit_line: Some(line_pb(&view)),
        }))
    }

    async fn repay(
        &self,
        request: Request<pb::RepayRequest>,
    ) -> Result<Response<pb::RepayResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = Repay::try_from(request.into_inner())?;
        let done = self.service.repay(&caller, r).await?;
        Ok(Response::new(pb::RepayResponse {
            credit_line: Some(line_pb(&done.view)),
            principal_repaid: Some(money_pb(done.principal)),
            transaction_id: done.transaction.to_string(),
            interest_repaid: Some(money_pb(done.interest)),
        }))
    }

    async fn accrue_interest(
        &self,
        request: Request<pb::AccrueInterestRequest>,
    ) -> Result<Response<pb::AccrueInterestResponse>, Status> {
        let date = parse_date("business_date", &request.get_ref().business_date)
            .map_err(|_| CreditError::invalid("business_date", "a date YYYY-MM-DD"))?;
        let run = self.service.accrue_interest(date).await?;
        Ok(Response::new(pb::AccrueInterestResponse {
            lines: run.lines,
            line_days: run.line_days,
            interest: Some(money_pb(Money::new(
                self.service.currency(),
                run.interest_minor,
            ))),
        }))
    }
}
