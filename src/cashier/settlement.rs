//! Merchant settlement statements (结算单). A merchant's takings are credited to its settlement
//! account in the payment's own posting (net of the bank's fee), and a refund debits it there:
//! so a date's statement is read from the journal lines of that account within the date, each
//! line's order telling whose it is and what fee it bore. The end-of-day step
//! `MERCHANT_SETTLEMENT` stores one per merchant with a payment or refund that date.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::Date;

use super::{CashierError, CashierService, KIND_MERCHANT, KIND_ORDER, Merchant, Order};
use crate::ledger::{
    DocumentWrite, LedgerError, STATEMENT_PAGE_MAX,
    store::{DOCUMENTS_PAGE_MAX, StatementQuery, StatementRow},
};

/// Document kind of the statements (`YYYY-MM-DD/MERCHANT_ID`).
pub const KIND_SETTLEMENT_STATEMENT: &str = "settlement_statement";

/// One merchant's settlement statement of one business date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementStatement {
    pub merchant_id: String,
    /// The business date, `YYYY-MM-DD`.
    pub date: String,
    pub currency: String,
    pub settlement_account_id: u64,
    /// Payments credited to the settlement account that date.
    pub payments: u32,
    /// What those payments' payers paid, fees included.
    pub gross_minor: i64,
    /// Refunds debited from it that date.
    pub refunds: u32,
    /// What those refunds took, less refunds a network returned that date.
    pub refunded_minor: i64,
    /// The bank's fees on those payments (kept on a refund: the merchant bears it).
    pub fees_minor: i64,
    /// `gross − fees − refunded`: what the date moved into the settlement account.
    pub net_minor: i64,
    /// The settlement account's balance at the end of the date.
    pub closing_balance_minor: i64,
}

impl SettlementStatement {
    /// The statement's document id.
    pub fn id(&self) -> String {
        format!("{}/{}", self.date, self.merchant_id)
    }

    /// Counts one line of the settlement account: a payment credited, a refund debited, or a
    /// refund a network returned, credited back.
    fn count(&mut self, kind: LineKind, line: &StatementRow, order: &Order) {
        let amount = line.amount_minor;
        match (kind, line.side.as_str()) {
            (LineKind::Payment, "C") => {
                let fee = order.payment.as_ref().map_or(0, |p| p.fee_minor);
                self.payments += 1;
                self.gross_minor += amount + fee;
                self.fees_minor += fee;
                self.net_minor += amount;
            }
            (LineKind::Refund, "D") => {
                self.refunds += 1;
                self.refunded_minor += amount;
                self.net_minor -= amount;
            }
            (LineKind::RefundReturned, "C") => {
                self.refunded_minor -= amount;
                self.net_minor += amount;
            }
            _ => {}
        }
    }

    /// The statement's first write (a statement is made once: a second write of it conflicts).
    pub fn write(&self) -> Result<DocumentWrite, LedgerError> {
        DocumentWrite::json(KIND_SETTLEMENT_STATEMENT, &self.id(), 0, self)
    }
}

impl CashierService {
    /// The statements of `date`, whose lines were posted within `[from_ms, until_ms)`: one per
    /// merchant with a payment or refund on its settlement account then, in merchant-id order.
    pub async fn settlement_statements(
        &self,
        date: Date,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<SettlementStatement>, CashierError> {
        let date = crate::yields::format_date(date);
        // Each settlement account with the merchants it settles (several may share one).
        let mut by_account: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut after = String::new();
        loop {
            let page = self
                .inner
                .ledger
                .documents_after(KIND_MERCHANT, &after, DOCUMENTS_PAGE_MAX)
                .await?;
            let Some(last) = page.last() else { break };
            after.clone_from(&last.id);
            for doc in &page {
                let merchant: Merchant =
                    super::documents::decode_document(KIND_MERCHANT, &doc.id, &doc.body)?;
                by_account
                    .entry(merchant.settlement_account_id)
                    .or_default()
                    .push(merchant.merchant_id);
            }
        }
        let mut statements: BTreeMap<String, SettlementStatement> = BTreeMap::new();
        // The date's first transaction, so each account's read starts there.
        let start = self.inner.ledger.first_seq_from(from_ms).await?;
        for (account, merchants) in by_account {
            // Page by page: a busy account's day is never held in memory at once.
            let mut after = start.map_or((0, 0), |seq| (seq.saturating_sub(1), u32::MAX));
            let mut closing = None;
            loop {
                let page = self
                    .inner
                    .ledger
                    .statement_page(&StatementQuery {
                        account_id: account,
                        after,
                        from_ms,
                        until_ms,
                        limit: STATEMENT_PAGE_MAX,
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                after = (last.seq, last.idx);
                closing = Some(last.balance_after_minor);
                for line in &page {
                    let Some((kind, order)) = self.cashier_line(line).await? else {
                        continue;
                    };
                    if !merchants.contains(&order.merchant_id) {
                        continue;
                    }
                    let s = statements
                        .entry(order.merchant_id.clone())
                        .or_insert_with(|| SettlementStatement {
                            merchant_id: order.merchant_id.clone(),
                            date: date.clone(),
                            currency: self.inner.currency.code().to_owned(),
                            settlement_account_id: account,
                            ..SettlementStatement::default()
                        });
                    s.count(kind, line, &order);
                }
            }
            for s in statements.values_mut() {
                if s.settlement_account_id == account {
                    s.closing_balance_minor = closing.unwrap_or_default();
                }
            }
        }
        Ok(statements.into_values().collect())
    }

    /// The kind and order of a cashier posting on a settlement account, from its
    /// transaction's metadata; `None` for any other line.
    async fn cashier_line(
        &self,
        line: &StatementRow,
    ) -> Result<Option<(LineKind, Order)>, CashierError> {
        let Ok(metadata) = serde_json::from_str::<HashMap<String, String>>(&line.metadata) else {
            return Ok(None);
        };
        let kind = match metadata.get("type").map(String::as_str) {
            Some("PAYMENT") => LineKind::Payment,
            Some("REFUND") => LineKind::Refund,
            Some("REFUND_RETURNED") => LineKind::RefundReturned,
            _ => return Ok(None),
        };
        let Some(order_id) = metadata.get("order") else {
            return Ok(None);
        };
        Ok(self
            .load::<Order>(KIND_ORDER, order_id)
            .await?
            .map(|(order, _)| (kind, order)))
    }

    /// The statement of `merchant_id` for `date`, once the end-of-day run made it.
    pub async fn settlement_statement(
        &self,
        merchant_id: &str,
        date: Date,
    ) -> Result<Option<SettlementStatement>, CashierError> {
        let id = format!("{}/{merchant_id}", crate::yields::format_date(date));
        Ok(self
            .load::<SettlementStatement>(KIND_SETTLEMENT_STATEMENT, &id)
            .await?
            .map(|(s, _)| s))
    }
}

/// What a cashier posting on a settlement account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Payment,
    Refund,
    /// A card refund the network returned: the merchant's money back.
    RefundReturned,
}
