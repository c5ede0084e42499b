//! What the bank's operators ask of the end-of-day run over the operations RPC: a network's
//! stored reconciliation (对账) of a period, the adjustment (调账) of one of its breaks, where
//! each step of a date stands, and a merchant's settlement statement (结算单) of a date. The
//! same reads and rules as `paygate recon` and `paygate eod status`.

use time::Date;

use super::{
    EodError, StepRecord,
    adjust::{AdjustError, AdjustedBreak, BreakAdjustment, adjust_break},
    reconcile::{PeriodRefusal, StoredRecon, report_id, stored},
    records_of,
};
use crate::{
    account::{AccountService, Caller},
    cashier::{CashierError, CashierService, SettlementStatement},
    clearing::{Network, ReconPeriod, matching::Break},
    ledger::{Ledger, LedgerError, RequestId},
    money::Currency,
};

/// Why an operator's request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    #[error("{field}: {why}")]
    InvalidArgument { field: &'static str, why: String },
    #[error("{field}: {refusal}")]
    Period {
        field: &'static str,
        refusal: PeriodRefusal,
    },
    #[error(
        "no stored reconciliation of {id}: the end-of-day run stores it once the period's file \
         is reconciled"
    )]
    ReconciliationNotFound { id: String },
    #[error(
        "no settlement statement of {merchant_id} for {date}: the end-of-day step \
         MERCHANT_SETTLEMENT makes one, once the date has ended, for each merchant with a \
         payment or refund that date"
    )]
    StatementNotFound { merchant_id: String, date: String },
    #[error(transparent)]
    Adjust(#[from] AdjustError),
    #[error(transparent)]
    Eod(#[from] EodError),
    #[error(transparent)]
    Cashier(Box<CashierError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl OperationsError {
    pub fn invalid(field: &'static str, why: impl Into<String>) -> OperationsError {
        OperationsError::InvalidArgument {
            field,
            why: why.into(),
        }
    }
}

impl From<CashierError> for OperationsError {
    fn from(e: CashierError) -> OperationsError {
        OperationsError::Cashier(Box::new(e))
    }
}

/// A stored reconciliation with its breaks read back.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    pub stored: StoredRecon,
    pub breaks: Vec<Break>,
    /// Lines of the network's file, and our calls taken into the period.
    pub their_lines: usize,
    pub our_lines: usize,
}

impl Reconciliation {
    /// The adjustment made of the break under `reference`, if any.
    pub fn adjustment(&self, reference: &str) -> Option<&AdjustedBreak> {
        self.stored
            .adjusted
            .iter()
            .find(|a| a.reference == reference)
    }
}

/// The operators' face of the end-of-day run.
#[derive(Clone)]
pub struct Operations {
    ledger: Ledger,
    accounts: AccountService,
    cashier: CashierService,
}

impl Operations {
    pub fn new(ledger: Ledger, accounts: AccountService, cashier: CashierService) -> Operations {
        Operations {
            ledger,
            accounts,
            cashier,
        }
    }

    /// The currency of the bank's book.
    pub fn currency(&self) -> Currency {
        self.accounts.rules().currency
    }

    /// The stored reconciliation of `network`'s `period`.
    pub async fn reconciliation(
        &self,
        network: Network,
        period: &ReconPeriod,
    ) -> Result<Reconciliation, OperationsError> {
        let stored = stored(&self.ledger, network, period)
            .await?
            .ok_or_else(|| OperationsError::ReconciliationNotFound {
                id: report_id(network, period),
            })?;
        let breaks: Vec<Break> = serde_json::from_value(stored.report["breaks"].clone())
            .map_err(|e| {
                tracing::error!(id = %report_id(network, period), error = %e, "stored breaks do not decode");
                LedgerError::Storage
            })?;
        let count = |field: &str| {
            stored.report[field]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
        };
        Ok(Reconciliation {
            their_lines: count("their_lines"),
            our_lines: count("our_lines"),
            breaks,
            stored,
        })
    }

    /// Adjusts one break, the caller as operator ([`adjust_break`]).
    pub async fn adjust_break(
        &self,
        caller: &Caller,
        request_id: RequestId,
        network: Network,
        period: ReconPeriod,
        reference: String,
        reason: String,
    ) -> Result<AdjustedBreak, OperationsError> {
        let request = BreakAdjustment {
            network,
            period,
            reference,
            operator: caller.name.clone(),
            reason,
            request_id: Some(request_id),
        };
        Ok(adjust_break(&self.ledger, &self.accounts, &request).await?)
    }

    /// The step records of `date`, in order.
    pub async fn end_of_day(&self, date: Date) -> Result<Vec<StepRecord>, OperationsError> {
        Ok(records_of(&self.ledger, date).await?)
    }

    /// The settlement statement of `merchant_id` for `date`.
    pub async fn merchant_settlement(
        &self,
        merchant_id: &str,
        date: Date,
    ) -> Result<SettlementStatement, OperationsError> {
        self.cashier
            .settlement_statement(merchant_id, date)
            .await?
            .ok_or_else(|| OperationsError::StatementNotFound {
                merchant_id: merchant_id.to_owned(),
                date: super::format_date(date),
            })
    }
}
