//! The cashier's part of clearing recovery: a quick pay (快捷支付) whose network call went
//! unanswered is settled by the account service's recovery worker through this
//! [`CallSettler`]: the order SUCCEEDED with its posting, or FAILED, with the call's record in
//! the same batch.

use async_trait::async_trait;

use super::*;
use crate::account::{
    CallSettler,
    outbound::{CallState, OutboundCall},
};

#[async_trait]
impl CallSettler for CashierService {
    async fn settle_call(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), AccountError> {
        self.settle_quick_pay(call, version, state, presumed)
            .await
            .map_err(|e| match e {
                CashierError::Account(e) => e,
                CashierError::Ledger(e) => AccountError::Ledger(e),
                other => AccountError::corrupt(format!(
                    "quick pay {} could not be settled: {other}",
                    call.subject
                )),
            })
    }
}

impl CashierService {
    async fn settle_quick_pay(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), CashierError> {
        let (order, order_version) = self.order_as(&call.subject, Freshness::Current).await?;
        let record = call.settled(state.clone(), presumed).write(version)?;
        let key = IdempotencyKey::new(
            SYSTEM_CALLER,
            format!("recover/{}/{version}", call.reference),
        );
        let command = if order.status == OrderStatus::Processing {
            let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
            self.card_settlement(&merchant, order, order_version, state, record)?
        } else {
            // The order was settled with the call (one batch), so this is a record left
            // behind by a bug: settle the record alone and say so.
            tracing::error!(order = %order.order_id, reference = %call.reference, "a quick-pay call unsettled under a settled order");
            guarded(Command::NoOp, Vec::new(), vec![record], Vec::new())
        };
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
}
