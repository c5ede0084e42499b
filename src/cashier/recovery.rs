//! The cashier's part of clearing recovery: a quick pay (快捷支付) or a card refund whose
//! network call went unanswered is settled by the account service's recovery worker through
//! this [`CallSettler`]: the order SUCCEEDED with its posting or FAILED; the refund SUCCEEDED,
//! or FAILED with the money back to the merchant; always with the call's record in the same
//! batch.

use async_trait::async_trait;

use super::*;
use crate::account::{
    CallSettler,
    outbound::{CallState, OutboundCall, OutboundPurpose},
};

#[async_trait]
impl CallSettler for CashierService {
    fn settles(&self, purpose: OutboundPurpose) -> bool {
        matches!(
            purpose,
            OutboundPurpose::QuickPay | OutboundPurpose::CardRefund
        )
    }

    async fn settle_call(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), AccountError> {
        let settled = match call.purpose {
            OutboundPurpose::CardRefund => {
                self.settle_card_refund(call, version, state, presumed)
                    .await
            }
            OutboundPurpose::QuickPay => {
                self.settle_quick_pay(call, version, state, presumed).await
            }
            // The account service settles its own movements, the credit service its
            // repayments.
            OutboundPurpose::TopUp
            | OutboundPurpose::Withdrawal
            | OutboundPurpose::CreditRepayment => {
                return Err(AccountError::corrupt(format!(
                    "the cashier was asked to settle {:?} call {}",
                    call.purpose, call.reference
                )));
            }
        };
        settled.map_err(|e| match e {
            CashierError::Account(e) => e,
            CashierError::Ledger(e) => AccountError::Ledger(e),
            other => AccountError::corrupt(format!(
                "{:?} {} could not be settled: {other}",
                call.purpose, call.subject
            )),
        })
    }
}

impl CashierService {
    async fn settle_card_refund(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), CashierError> {
        let record = call.settled(state.clone(), presumed).write(version)?;
        let command = match self
            .card_refund_settlement(&call.subject, state, record.clone())
            .await?
        {
            Some((command, _)) => command,
            None => {
                tracing::error!(refund = %call.subject, reference = %call.reference, "a card-refund call unsettled under a settled refund");
                guarded(Command::NoOp, Vec::new(), record, Vec::new())
            }
        };
        self.submit_recovered(call, version, command).await
    }

    async fn submit_recovered(
        &self,
        call: &OutboundCall,
        version: u64,
        command: Command,
    ) -> Result<(), CashierError> {
        let key = IdempotencyKey::new(
            SYSTEM_CALLER,
            format!("recover/{}/{version}", call.reference),
        );
        match self
            .submit(key, fingerprint("Recover", &call.reference), command, &[])
            .await
        {
            Ok(_) => Ok(()),
            // The request's own retry (or another worker) settled it first.
            Err(CashierError::Ledger(LedgerError::DocumentConflict { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn settle_quick_pay(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), CashierError> {
        let (order, order_version) = self.order_as(&call.subject, Freshness::Current).await?;
        let record = call.settled(state.clone(), presumed).write(version)?;
        let command = if order.status == OrderStatus::Processing {
            let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
            self.card_settlement(&merchant, order, order_version, state, record)?
        } else {
            // The order was settled with the call (one batch), so this is a record left
            // behind by a bug: settle the record alone and say so.
            tracing::error!(order = %order.order_id, reference = %call.reference, "a quick-pay call unsettled under a settled order");
            guarded(Command::NoOp, Vec::new(), record, Vec::new())
        };
        self.submit_recovered(call, version, command).await
    }
}
