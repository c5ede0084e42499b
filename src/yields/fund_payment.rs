//! Funding a payment from a holding: the FAST redemption that pays with yield (余额增值支付),
//! whole or in part, committed in the payment's own journal transaction.
//!
//! The cashier asks for the funding of an amount and adds what it gets to its posting, so the
//! redemption and the payment are one atomic step: either both commit or neither does.
//!
//! ```text
//! FAST funding:   Dr holding       Cr fund settlement     (the shares leave the holding)
//!                 Dr bank advance  Cr payer               (the bank advances the cash, 垫支)
//! the payment:    Dr payer         Cr merchant, fee income
//! ```
//!
//! It is a FAST redemption in every respect: the same per-investor, per-fund, per-date cap
//! (checked by the same counter in the same batch), the same redemption and due records (the
//! end-of-day run has the fund repay the advance), and the shares leave the holding today, so
//! they do not earn today.

use crate::{
    account::AccountFacts,
    ledger::{AccountId, CounterCheck, DocumentWrite, LedgerError, NewEntry},
    money::Money,
};

use super::{KIND_PRODUCT, ProductStatus, RedeemMode, YieldError, YieldService, keys};

/// Products looked at when choosing which one to pay with yield from.
pub const PRODUCTS_SCANNED_MAX: u32 = 100;

/// What a payment funded from a holding adds to its posting and its batch.
#[derive(Debug, Clone)]
pub struct PaymentFunding {
    pub product_id: String,
    pub redemption_id: String,
    /// Shares redeemed (at 1.00 each: the cash the payer receives).
    pub amount: Money,
    /// The redemption's legs, before the payment's own.
    pub entries: Vec<NewEntry>,
    /// The shares-out counter and the FAST cap counter.
    pub counters: Vec<CounterCheck>,
    /// The redemption record and the fund's due repayment of the advance.
    pub documents: Vec<DocumentWrite>,
    holding: AccountId,
}

impl YieldService {
    /// A FAST redemption of `amount` from the payer's holding of `product_id`, to fund a
    /// payment. Refuses what a FAST `Redeem` refuses (a closed product, no holding, another
    /// currency); the cap and the shares are checked again by the batch.
    pub async fn fund_payment(
        &self,
        payer: &AccountFacts,
        product_id: &str,
        amount: Money,
        redemption_id: &str,
    ) -> Result<PaymentFunding, YieldError> {
        let product = self.product_doc(product_id).await?;
        if product.status == ProductStatus::Closed {
            return Err(YieldError::ProductNotOpen {
                product: product.product_id.clone(),
                status: product.status.as_str(),
            });
        }
        if amount.currency != self.currency() {
            return Err(YieldError::invalid("amount", "in the product's currency"));
        }
        let Some(holding) = self.holding_doc(payer.id, product_id).await? else {
            return Err(YieldError::InsufficientShares {
                held: Money::zero(self.currency()),
                requested: amount,
            });
        };
        let advance = self.advance_account().await?;
        let (entries, counters, payee) = self.redeem_legs(
            payer,
            amount,
            RedeemMode::Fast,
            &product,
            [holding.holding_account, advance],
            self.today(),
        );
        let (documents, _) = self.redemption_records(
            payer.id,
            product_id,
            amount,
            RedeemMode::Fast,
            redemption_id,
            payee,
        )?;
        Ok(PaymentFunding {
            product_id: product_id.to_owned(),
            redemption_id: redemption_id.to_owned(),
            amount,
            entries,
            counters,
            documents,
            holding: holding.holding_account,
        })
    }

    /// The product a payer's short balance payments are topped up from, when the payer opted
    /// in (`AutoSweep.top_up_payments`), with the shares it could redeem FAST today: the
    /// holding's shares within what is left of today's FAST cap.
    pub async fn top_up_source(
        &self,
        payer: &AccountFacts,
    ) -> Result<Option<(String, Money)>, YieldError> {
        let Some(sweep) = self.sweep_doc(payer.id).await? else {
            return Ok(None);
        };
        if !sweep.top_up_payments {
            return Ok(None);
        }
        let spendable = self.fast_spendable(payer, &sweep.product_id).await?;
        Ok(Some((sweep.product_id, spendable)))
    }

    /// The product an account would pay with yield from, with what it could redeem FAST now:
    /// the product its yield settings name, else the one it could redeem the most of (products
    /// beyond the first page of [`PRODUCTS_SCANNED_MAX`] are not looked at). `None` when it
    /// holds nothing it could redeem.
    pub async fn pay_source(
        &self,
        payer: &AccountFacts,
    ) -> Result<Option<(String, Money)>, YieldError> {
        if let Some(sweep) = self.sweep_doc(payer.id).await? {
            let spendable = self.fast_spendable(payer, &sweep.product_id).await?;
            return Ok(Some((sweep.product_id, spendable)));
        }
        let products = self
            .ledger()
            .documents_after(KIND_PRODUCT, "", PRODUCTS_SCANNED_MAX)
            .await?;
        let mut best: Option<(String, Money)> = None;
        for doc in products {
            let spendable = self.fast_spendable(payer, &doc.id).await?;
            if spendable.minor > best.as_ref().map_or(0, |(_, m)| m.minor) {
                best = Some((doc.id, spendable));
            }
        }
        Ok(best)
    }

    /// What a FAST redemption of the account's holding could take now: its shares within what
    /// is left of today's cap (zero without a holding or when the product is closed).
    pub async fn fast_spendable(
        &self,
        payer: &AccountFacts,
        product_id: &str,
    ) -> Result<Money, YieldError> {
        let zero = Money::zero(self.currency());
        let product = match self.product_doc(product_id).await {
            Ok(p) if p.status != ProductStatus::Closed => p,
            Ok(_) | Err(YieldError::ProductNotFound { .. }) => return Ok(zero),
            Err(e) => return Err(e),
        };
        let Some(holding) = self.holding_doc(payer.id, product_id).await? else {
            return Ok(zero);
        };
        let shares = self.posted_minor(holding.holding_account).await?;
        let used = self
            .counters(&[keys::fast(product_id, &payer.investor(), self.today())])
            .await?;
        let quota = product
            .fast_redeem_daily_cap
            .minor
            .saturating_sub(used.first().copied().unwrap_or(0));
        Ok(Money::new(self.currency(), shares.min(quota).max(0)))
    }

    /// Names a refusal of a funded payment's batch by the yield rule it broke (too few shares
    /// in the holding, the FAST cap), or gives the ledger's refusal back.
    /// The FAST cap is named even without the funding (a retry that no longer needs a top-up
    /// is answered the refusal stored for its first try).
    pub fn funding_refused(
        &self,
        e: LedgerError,
        funding: Option<&PaymentFunding>,
    ) -> Result<YieldError, LedgerError> {
        match (e, funding) {
            (
                LedgerError::InsufficientFunds {
                    account, available, ..
                },
                Some(f),
            ) if account == f.holding => Ok(YieldError::InsufficientShares {
                held: available,
                requested: f.amount,
            }),
            (e, _) if super::redeem::is_fast_cap(&e) => Ok(self.fast_cap_refusal(e)),
            (other, _) => Err(other),
        }
    }
}
