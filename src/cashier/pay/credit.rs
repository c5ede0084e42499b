//! Paying with credit (消费金融): the order's amount is drawn down the payer's credit line and
//! paid to the merchant in one journal transaction — the line lends the amount to the payer's
//! account and the payment takes it straight on, so the balance ends where it started and
//! nothing commits unless both do (the line's usage counter, checked in the same batch, keeps
//! the drawdown within the limit).

use super::*;
use crate::credit::InstalmentTerms;

impl CashierService {
    pub(in crate::cashier) async fn pay_credit(
        &self,
        caller: &Caller,
        req: &PayOrder,
        (line_id, instalments): (&str, Option<InstalmentTerms>),
        print: String,
        replaying: Replaying,
    ) -> Result<Order, CashierError> {
        let Funded {
            order,
            version,
            merchant,
            payer,
            amount,
        } = self.funded(caller, req, Method::Credit, replaying).await?;
        let credit = self
            .inner
            .credit
            .fund_payment(
                &payer,
                line_id,
                amount,
                (
                    &derive_id("D", &caller.name, &req.request_id),
                    &order.order_id,
                ),
                instalments,
            )
            .await?;
        self.charge(Charge {
            caller,
            request_id: &req.request_id,
            fingerprint: print,
            merchant: &merchant,
            order,
            order_version: version,
            payer: &payer,
            method: Method::Credit,
            barcode: None,
            created_now: false,
            extra: Vec::new(),
            funding: None,
            credit: Some(credit),
        })
        .await
    }
}
