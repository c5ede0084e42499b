//! Redeem (赎回). NORMAL takes the shares now and owes the cash through the fund's settlement
//! account; the end-of-day run credits the account on the next business date. FAST (T+0)
//! credits the account now from the bank's advance account (垫支), within the per-investor,
//! per-fund, per-business-date cap, a ledger counter checked in the same batch (so concurrent
//! FAST redemptions never pass it); the fund repays the advance on the next business date.
//!
//! Postings (shares are minor units at 1.00 per share):
//!
//! ```text
//! NORMAL now:     Dr holding      Cr fund settlement
//! NORMAL settle:  Dr settlement   Cr account
//! FAST now:       Dr holding      Cr fund settlement
//!                 Dr bank advance Cr account
//! FAST settle:    Dr settlement   Cr bank advance
//! ```

use crate::{
    account::Caller,
    ledger::{
        AccountId, Command, CounterCheck, DocumentWrite, LedgerError, Metadata, NewEntry,
        NewTransaction, Outcome, Side,
    },
    money::Money,
};

use super::{
    DueDoc, KIND_DUE, KIND_REDEMPTION, Product, ProductStatus, Redeem, RedeemMode, Redemption,
    RedemptionStatus, UNCAPPED, YieldError, YieldService, format_date, ids, keys, parse_date,
    short_hash, write_doc,
};

impl YieldService {
    /// Redeems for a caller's request (idempotent on its request id).
    pub async fn redeem(&self, caller: &Caller, r: Redeem) -> Result<Redemption, YieldError> {
        let key = r.request_id.key(&caller.name);
        let fingerprint = format!(
            "redeem|{}|{}|{}|{}|{}",
            r.account,
            r.product_id,
            r.shares.currency,
            r.shares.minor,
            r.mode.as_str()
        );
        if let Some(answer) = self.ledger().answered_request(&key, &fingerprint).await? {
            return answer
                .map_err(|e| self.name_refusal(e, &r))
                .and_then(|o| redemption_of(&o));
        }
        let result = match self.redeem_checked(caller, &r).await {
            Ok(command) => {
                self.ledger()
                    .submit_request(key, &fingerprint, command)
                    .await
            }
            // A refusal met before the batch from state (no such product, a closed one, no
            // shares held, an account not found) claims the request id like the batch's own.
            Err(e) => match self.claim(key, &fingerprint, e).await {
                Ok(outcome) => Ok(outcome),
                Err(YieldError::Ledger(e)) => Err(e),
                Err(e) => return Err(e),
            },
        };
        match result {
            Ok(outcome) => redemption_of(&outcome),
            Err(e) => Err(self.name_refusal(e, &r)),
        }
    }

    /// The checks of a redemption that read state, and its command.
    async fn redeem_checked(&self, caller: &Caller, r: &Redeem) -> Result<Command, YieldError> {
        let product = self.product_doc(&r.product_id).await?;
        if product.status == ProductStatus::Closed {
            return Err(YieldError::ProductNotOpen {
                product: product.product_id.clone(),
                status: product.status.as_str(),
            });
        }
        if r.shares.currency != self.currency() {
            return Err(YieldError::invalid("shares", "in the product's currency"));
        }
        let facts = self
            .inner
            .accounts
            .facts_in_scope(caller, r.account)
            .await?;
        let Some(holding) = self.holding_doc(r.account, &product.product_id).await? else {
            return Err(YieldError::InsufficientShares {
                held: Money::zero(self.currency()),
                requested: r.shares,
            });
        };
        let id = short_hash(&[&caller.name, r.request_id.as_str()]);
        let advance = self.advance_account().await?;
        self.redeem_command(r, &product, [holding.holding_account, advance], &id, &facts)
    }

    fn redeem_command(
        &self,
        r: &Redeem,
        product: &Product,
        [holding, advance]: [AccountId; 2],
        id: &str,
        facts: &crate::account::AccountFacts,
    ) -> Result<Command, YieldError> {
        let p = &product.product_id;
        let today = self.today();
        let (entries, counters, payee) =
            self.redeem_legs(facts, r.shares, r.mode, product, [holding, advance], today);
        let (documents, credit_date) =
            self.redemption_records(r.account, p, r.shares, r.mode, id, payee)?;
        let metadata = Metadata::from([
            ("type".to_owned(), "yield_redeem".to_owned()),
            ("product".to_owned(), p.clone()),
            ("account".to_owned(), r.account.to_string()),
            ("mode".to_owned(), r.mode.as_str().to_owned()),
            ("credit_date".to_owned(), format_date(credit_date)),
            ("redemption".to_owned(), id.to_owned()),
        ]);
        Ok(Command::Guarded {
            inner: Box::new(Command::Post(NewTransaction {
                entries,
                metadata,
                counters: Vec::new(),
            })),
            counters,
            releases: Vec::new(),
            caps: match r.mode {
                RedeemMode::Fast => facts.balance_caps.clone(),
                RedeemMode::Normal => Vec::new(),
            },
            documents,
            events: Vec::new(),
        })
    }

    /// The records of a redemption made now: the redemption itself and the fund's due payment
    /// on the next business date (to the account for NORMAL, to the bank's advance for FAST);
    /// with the date the account is credited.
    pub(super) fn redemption_records(
        &self,
        account: AccountId,
        product_id: &str,
        shares: Money,
        mode: RedeemMode,
        id: &str,
        payee: AccountId,
    ) -> Result<(Vec<DocumentWrite>, time::Date), YieldError> {
        let today = self.today();
        let settle_date = self.next_business_day(today);
        let (status, credit_date) = match mode {
            RedeemMode::Normal => (RedemptionStatus::Pending, settle_date),
            RedeemMode::Fast => (RedemptionStatus::Succeeded, today),
        };
        let now = self.ledger().now_ms();
        let doc_id = ids::redemption(product_id, account, now, id);
        let redemption = Redemption {
            redemption_id: id.to_owned(),
            account,
            product_id: product_id.to_owned(),
            shares,
            mode,
            status,
            credit_date,
            requested_at_ms: now,
            credit_transaction: None,
            credited_at_ms: (mode == RedeemMode::Fast).then_some(now),
        };
        let due = DueDoc {
            redemption_doc_id: doc_id.clone(),
            product_id: product_id.to_owned(),
            payee,
            amount: shares,
            mode,
            settled: false,
        };
        let documents = vec![
            write_doc(KIND_REDEMPTION, &doc_id, 0, &redemption)?,
            write_doc(KIND_DUE, &ids::due(settle_date, product_id, id), 0, &due)?,
        ];
        Ok((documents, credit_date))
    }

    /// The legs and counters of a redemption by mode, with its status and who the fund pays.
    pub(super) fn redeem_legs(
        &self,
        holder: &crate::account::AccountFacts,
        shares: Money,
        mode: RedeemMode,
        product: &Product,
        [holding, advance]: [AccountId; 2],
        today: time::Date,
    ) -> (Vec<NewEntry>, Vec<CounterCheck>, AccountId) {
        let p = &product.product_id;
        let account = holder.id;
        let leg = |account, side| NewEntry {
            account,
            side,
            amount: shares,
        };
        let mut entries = vec![
            leg(holding, Side::Debit),
            leg(product.accounts.settlement, Side::Credit),
        ];
        let mut counters = vec![CounterCheck {
            key: keys::shares_out(p, account, today),
            amount_minor: shares.minor,
            cap_minor: UNCAPPED,
        }];
        let payee = match mode {
            RedeemMode::Normal => {
                counters.push(CounterCheck {
                    key: keys::pending_out(p, account),
                    amount_minor: shares.minor,
                    cap_minor: UNCAPPED,
                });
                account
            }
            RedeemMode::Fast => {
                entries.push(leg(advance, Side::Debit));
                entries.push(leg(account, Side::Credit));
                counters.push(CounterCheck {
                    key: keys::fast(p, &holder.investor(), today),
                    amount_minor: shares.minor,
                    cap_minor: product.fast_redeem_daily_cap.minor,
                });
                advance
            }
        };
        (entries, counters, payee)
    }

    /// Names the ledger's refusal by the rule it enforces here.
    fn name_refusal(&self, e: LedgerError, r: &Redeem) -> YieldError {
        let c = self.currency();
        match e {
            LedgerError::InsufficientFunds { available, .. } if available.currency == c => {
                YieldError::InsufficientShares {
                    held: available,
                    requested: r.shares,
                }
            }
            e @ LedgerError::LimitExceeded { .. } if is_fast_cap(&e) => self.fast_cap_refusal(e),
            // A refusal claimed before a batch, read back.
            e @ LedgerError::Refused { .. } => YieldError::from_ledger(e),
            other => YieldError::Ledger(other),
        }
    }

    /// The FAST cap refusal, from the ledger's refusal of the cap counter.
    pub(super) fn fast_cap_refusal(&self, e: LedgerError) -> YieldError {
        let c = self.currency();
        let LedgerError::LimitExceeded {
            key,
            cap_minor,
            used_minor,
            requested_minor,
        } = e
        else {
            return YieldError::Ledger(e);
        };
        YieldError::FastCapExceeded {
            date: key
                .rsplit('/')
                .next()
                .and_then(|d| parse_date("date", d).ok())
                .unwrap_or_else(|| self.today()),
            limit: Money::new(c, cap_minor),
            used: Money::new(c, used_minor),
            requested: Money::new(c, requested_minor),
            remaining: Money::new(c, (cap_minor - used_minor).max(0)),
        }
    }
}

/// Whether a ledger refusal is the FAST cap counter's.
pub(super) fn is_fast_cap(e: &LedgerError) -> bool {
    matches!(e, LedgerError::LimitExceeded { key, .. } if key.contains("/fast/"))
}

fn redemption_of(outcome: &Outcome) -> Result<Redemption, YieldError> {
    let Outcome::Posted(p) = outcome else {
        return Err(YieldError::corrupt("redemption outcome"));
    };
    let m = |k: &str| {
        p.metadata
            .get(k)
            .cloned()
            .ok_or_else(|| YieldError::corrupt("redemption metadata"))
    };
    let shares = p
        .entries
        .first()
        .ok_or_else(|| YieldError::corrupt("redemption entries"))?
        .amount;
    let mode = match m("mode")?.as_str() {
        "FAST" => RedeemMode::Fast,
        _ => RedeemMode::Normal,
    };
    let account = m("account")?
        .parse()
        .map(AccountId)
        .map_err(|_| YieldError::corrupt("redemption account"))?;
    Ok(Redemption {
        redemption_id: m("redemption")?,
        account,
        product_id: m("product")?,
        shares,
        mode,
        status: match mode {
            RedeemMode::Fast => RedemptionStatus::Succeeded,
            RedeemMode::Normal => RedemptionStatus::Pending,
        },
        credit_date: parse_date("credit_date", &m("credit_date")?)?,
        requested_at_ms: p.created_at_ms,
        credit_transaction: (mode == RedeemMode::Fast).then_some(p.id),
        credited_at_ms: (mode == RedeemMode::Fast).then_some(p.created_at_ms),
    })
}
