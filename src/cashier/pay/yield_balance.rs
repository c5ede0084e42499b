//! Paying with yield (余额增值支付): the order's amount is redeemed FAST from the payer's
//! holding and paid to the merchant in one journal transaction — the bank advances the cash
//! to the payer's account and the payment takes it straight on, so the balance ends where it
//! started and nothing commits unless both do.

use super::*;

impl CashierService {
    pub(in crate::cashier) async fn pay_yield_balance(
        &self,
        caller: &Caller,
        req: &PayOrder,
        product_id: &str,
        print: String,
        replaying: Replaying,
    ) -> Result<Order, CashierError> {
        let Funded {
            order,
            version,
            merchant,
            payer,
            amount,
        } = self
            .funded(caller, req, Method::YieldBalance, replaying)
            .await?;
        let funding = self
            .inner
            .yields
            .fund_payment(
                &payer,
                product_id,
                amount,
                &derive_id("Y", &caller.name, &req.request_id),
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
            method: Method::YieldBalance,
            barcode: None,
            created_now: false,
            extra: Vec::new(),
            funding: Some(funding),
            credit: None,
        })
        .await
    }

    /// The FAST redemption that covers what the payer's balance cannot, when the payer opted
    /// in to top-ups and its holding can cover the whole shortfall today; otherwise none (the
    /// payment is then refused for insufficient funds, as without the opt-in).
    pub(in crate::cashier) async fn top_up(
        &self,
        c: &Charge<'_>,
    ) -> Result<Option<PaymentFunding>, CashierError> {
        let short = c.order.amount_minor.saturating_sub(c.payer.available.minor);
        if short <= 0 {
            return Ok(None);
        }
        let yields = &self.inner.yields;
        let Some((product_id, spendable)) = yields.top_up_source(c.payer).await? else {
            return Ok(None);
        };
        if spendable.minor < short {
            return Ok(None);
        }
        let amount = Money::new(self.inner.currency, short);
        let id = derive_id("Y", &c.caller.name, c.request_id);
        Ok(Some(
            yields
                .fund_payment(c.payer, &product_id, amount, &id)
                .await?,
        ))
    }
}
