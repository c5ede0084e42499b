//! `paygate.v1.CreditService`: thin handlers. The wire is parsed once, with `TryFrom`, into the
//! credit service's domain types (`Money`, `RequestId`, `AccountId`, rates); past here nothing
//! re-checks the wire.

use tonic::{Request, Response, Status};

use crate::{
    credit::{
        AdjustLimit, CardRepayment, CardRepaymentState, CreditError, CreditService, FreezeLine,
        InstalmentMethod, InstalmentPlan, InstalmentState, LineStatus, LineView, OpenLine, Repay,
        RepaySource, Repayment, RepaymentLookup, RepaymentStatus, SetAutoRepay, SplitDrawdown,
        check_line_id, parse_rate,
    },
    grpc::{
        account::{caller_of, money_pb, network_pb, timestamp},
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
            auto_repay: r.auto_repay,
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
        let from = match (r.from_bound_card, r.from_account_id.is_empty()) {
            (false, _) => RepaySource::Account(account_id("from_account_id", &r.from_account_id)?),
            (true, true) => RepaySource::BoundCard,
            (true, false) => {
                return Err(CreditError::invalid(
                    "from_account_id",
                    "empty when repaying from the bound card",
                ));
            }
        };
        Ok(Repay {
            request_id: request_id(r.request_id)?,
            line_id: line_id(r.credit_line_id)?,
            amount: money("amount", r.amount)?,
            from,
        })
    }
}

impl TryFrom<pb::SetAutoRepayRequest> for SetAutoRepay {
    type Error = CreditError;

    fn try_from(r: pb::SetAutoRepayRequest) -> Result<SetAutoRepay, CreditError> {
        Ok(SetAutoRepay {
            request_id: request_id(r.request_id)?,
            line_id: line_id(r.credit_line_id)?,
            enabled: r.enabled,
        })
    }
}

fn lookup_of(
    lookup: Option<pb::get_repayment_request::Lookup>,
) -> Result<RepaymentLookup, CreditError> {
    use pb::get_repayment_request::Lookup;
    match lookup {
        Some(Lookup::RequestId(id)) => Ok(RepaymentLookup::RequestId(request_id(id)?)),
        Some(Lookup::Reference(r)) if crate::clearing::reference_is_valid(&r) => {
            Ok(RepaymentLookup::Reference(r))
        }
        Some(Lookup::Reference(_)) => Err(CreditError::invalid("reference", "our reference (PG…)")),
        None => Err(CreditError::invalid("lookup", "request_id or reference")),
    }
}

impl TryFrom<pb::SplitDrawdownRequest> for SplitDrawdown {
    type Error = CreditError;

    fn try_from(r: pb::SplitDrawdownRequest) -> Result<SplitDrawdown, CreditError> {
        let method = match pb::InstalmentMethod::try_from(r.method) {
            Ok(pb::InstalmentMethod::EqualPrincipal) => InstalmentMethod::EqualPrincipal,
            Ok(pb::InstalmentMethod::EqualInstalment) => InstalmentMethod::EqualInstalment,
            Ok(pb::InstalmentMethod::Unspecified) | Err(_) => {
                return Err(CreditError::invalid(
                    "method",
                    "EQUAL_PRINCIPAL or EQUAL_INSTALMENT",
                ));
            }
        };
        Ok(SplitDrawdown {
            request_id: request_id(r.request_id)?,
            line_id: line_id(r.credit_line_id)?,
            drawdown_id: r.drawdown_id,
            count: u32::try_from(r.count)
                .map_err(|_| CreditError::invalid("count", "3, 6 or 12"))?,
            method,
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
        penalty_due: Some(money_pb(v.penalty_due)),
        overdue_principal: Some(money_pb(v.overdue_principal)),
        auto_repay: l.auto_repay,
    }
}

fn status_pb(status: RepaymentStatus) -> i32 {
    let status = match status {
        RepaymentStatus::Succeeded => pb::ProcessingStatus::Succeeded,
        RepaymentStatus::Processing => pb::ProcessingStatus::Processing,
        RepaymentStatus::Failed => pb::ProcessingStatus::Failed,
    };
    status as i32
}

fn repay_pb(done: &Repayment) -> pb::RepayResponse {
    let currency = done.principal.currency;
    let mut answer = pb::RepayResponse {
        credit_line: Some(line_pb(&done.view)),
        principal_repaid: Some(money_pb(done.principal)),
        transaction_id: done.transaction.map(|t| t.to_string()).unwrap_or_default(),
        interest_repaid: Some(money_pb(done.interest)),
        penalty_repaid: Some(money_pb(done.penalty)),
        status: status_pb(done.status),
        ..Default::default()
    };
    if let Some(card) = &done.card {
        let c = card_pb(card);
        answer.reference = c.reference;
        answer.network = c.network;
        answer.network_reference = c.network_reference;
        answer.failure_reason = c.failure_reason;
        answer.surplus_to_account = c.surplus_to_account;
    } else {
        answer.surplus_to_account = Some(money_pb(Money::new(currency, 0)));
    }
    answer
}

fn card_pb(r: &CardRepayment) -> pb::CardRepayment {
    let fen = |minor| Some(money_pb(Money::new(r.amount.currency, minor)));
    let (status, network_reference, failure_reason, parts) = match &r.state {
        CardRepaymentState::Processing => (RepaymentStatus::Processing, "", "", [0; 4]),
        CardRepaymentState::Failed { reason } => {
            (RepaymentStatus::Failed, "", reason.as_str(), [0; 4])
        }
        CardRepaymentState::Succeeded {
            network_reference,
            penalty_minor,
            interest_minor,
            principal_minor,
            surplus_minor,
        } => (
            RepaymentStatus::Succeeded,
            network_reference.as_str(),
            "",
            [
                *penalty_minor,
                *interest_minor,
                *principal_minor,
                *surplus_minor,
            ],
        ),
    };
    pb::CardRepayment {
        credit_line_id: r.line_id.clone(),
        reference: r.reference.clone(),
        request_id: r.request_id.clone(),
        amount: Some(money_pb(r.amount)),
        status: status_pb(status),
        network: network_pb(r.network) as i32,
        network_reference: network_reference.to_owned(),
        failure_reason: failure_reason.to_owned(),
        penalty_repaid: fen(parts[0]),
        interest_repaid: fen(parts[1]),
        principal_repaid: fen(parts[2]),
        surplus_to_account: fen(parts[3]),
        transaction_id: r.transaction.map(|t| t.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(r.requested_at_ms)),
        settle_time: r.settled_at_ms.map(timestamp),
    }
}

fn plan_pb(p: &InstalmentPlan, today: time::Date) -> pb::InstalmentPlan {
    let currency = p.principal.currency;
    let fen = |minor| Some(money_pb(Money::new(currency, minor)));
    pb::InstalmentPlan {
        credit_line_id: p.line_id.clone(),
        drawdown_id: p.drawdown_id.clone(),
        method: match p.method {
            InstalmentMethod::EqualPrincipal => pb::InstalmentMethod::EqualPrincipal,
            InstalmentMethod::EqualInstalment => pb::InstalmentMethod::EqualInstalment,
        } as i32,
        principal: Some(money_pb(p.principal)),
        made_date: format_date(p.made_on),
        instalments: p
            .instalments
            .iter()
            .map(|i| pb::Instalment {
                number: i32::try_from(i.number).unwrap_or(i32::MAX),
                due_date: format_date(i.due),
                principal: fen(i.principal_minor),
                interest: fen(i.interest_minor),
                paid: fen(i.paid_minor),
                interest_waived: fen(i.interest_waived_minor),
                state: match i.state(today) {
                    InstalmentState::Pending => pb::InstalmentState::Pending,
                    InstalmentState::Paid => pb::InstalmentState::Paid,
                    InstalmentState::Overdue => pb::InstalmentState::Overdue,
                } as i32,
            })
            .collect(),
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
        Ok(Response::new(repay_pb(&done)))
    }

    async fn get_repayment(
        &self,
        request: Request<pb::GetRepaymentRequest>,
    ) -> Result<Response<pb::GetRepaymentResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = line_id(r.credit_line_id)?;
        let lookup = lookup_of(r.lookup)?;
        let repayment = self.service.card_repayment_of(&caller, &id, lookup).await?;
        Ok(Response::new(pb::GetRepaymentResponse {
            repayment: Some(card_pb(&repayment)),
        }))
    }

    async fn set_auto_repay(
        &self,
        request: Request<pb::SetAutoRepayRequest>,
    ) -> Result<Response<pb::SetAutoRepayResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = SetAutoRepay::try_from(request.into_inner())?;
        let view = self.service.set_auto_repay(&caller, r).await?;
        Ok(Response::new(pb::SetAutoRepayResponse {
            credit_line: Some(line_pb(&view)),
        }))
    }

    async fn accrue_interest(
        &self,
        request: Request<pb::AccrueInterestRequest>,
    ) -> Result<Response<pb::AccrueInterestResponse>, Status> {
        let date = parse_date("business_date", &request.get_ref().business_date)
            .map_err(|_| CreditError::invalid("business_date", "a date YYYY-MM-DD"))?;
        let run = self.service.accrue_interest(date).await?;
        let fen = |minor| Some(money_pb(Money::new(self.service.currency(), minor)));
        Ok(Response::new(pb::AccrueInterestResponse {
            lines: run.lines,
            line_days: run.line_days,
            interest: fen(run.interest_minor),
            penalty: fen(run.penalty_minor),
            auto_repayments: run.auto_repayments,
        }))
    }

    async fn split_drawdown(
        &self,
        request: Request<pb::SplitDrawdownRequest>,
    ) -> Result<Response<pb::SplitDrawdownResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = SplitDrawdown::try_from(request.into_inner())?;
        let plan = self.service.split_drawdown(&caller, r).await?;
        Ok(Response::new(pb::SplitDrawdownResponse {
            plan: Some(plan_pb(&plan, self.service.business_date())),
        }))
    }

    async fn list_instalments(
        &self,
        request: Request<pb::ListInstalmentsRequest>,
    ) -> Result<Response<pb::ListInstalmentsResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let id = line_id(r.credit_line_id)?;
        let drawdown = (!r.drawdown_id.is_empty()).then_some(r.drawdown_id.as_str());
        let plans = self.service.instalments(&caller, &id, drawdown).await?;
        let today = self.service.business_date();
        Ok(Response::new(pb::ListInstalmentsResponse {
            plans: plans.iter().map(|p| plan_pb(p, today)).collect(),
        }))
    }
}
