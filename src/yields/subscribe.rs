//! Subscribe (申购): balance → shares at 1.00 each, confirmed at once; the shares earn from the
//! next business date. Class II / III outflow limits apply (the account service's rules, checked
//! in the same batch). The first subscription creates the holding.

use time::Date;

use crate::{
    account::{AccountFacts, AccountKind, Caller},
    ledger::{
        Command, CounterCheck, IdempotencyKey, Metadata, NewTransaction, Outcome, Posted, Side,
        TransactionId,
    },
    money::Money,
};

use super::{
    CONFLICT_RETRIES_MAX, Product, ProductStatus, Subscribe, Subscription, UNCAPPED, YieldError,
    YieldService, format_date, is_conflict, keys, parse_date, short_hash,
};

impl YieldService {
    /// Subscribes for a caller's request (idempotent on its request id).
    pub async fn subscribe(
        &self,
        caller: &Caller,
        s: Subscribe,
    ) -> Result<Subscription, YieldError> {
        let key = s.request_id.key(&caller.name);
        let fingerprint = format!(
            "subscribe|{}|{}|{}|{}",
            s.account, s.product_id, s.amount.currency, s.amount.minor
        );
        if let Some(answer) = self
            .inner
            .accounts
            .answered_request(&key, &fingerprint)
            .await?
        {
            return subscription_of(&answer.map_err(YieldError::from_ledger)?);
        }
        let id = short_hash(&[&caller.name, s.request_id.as_str()]);
        let today = self.today();
        let result = async {
            let product = self.product_doc(&s.product_id).await?;
            let facts = self
                .inner
                .accounts
                .facts_in_scope(caller, s.account)
                .await?;
            self.subscribe_as(
                key.clone(),
                &fingerprint,
                &id,
                &facts,
                &product,
                s.amount,
                today,
            )
            .await
        }
        .await;
        // A refusal met before the batch from state (the product not open, below its minimum
        // …) claims the request id: a retry answers it again, whatever changed since.
        match result {
            Err(e) => subscription_of(&self.claim(key, &fingerprint, e).await?),
            ok => ok,
        }
    }

    /// The checks and the posting of one subscription, under `key` (a caller's request, or the
    /// end-of-day sweep's own key). `date` is the business date the subscription belongs to:
    /// today for a caller's, the ended date D for the sweep of D's night (run after the cutover,
    /// yet its shares are held at the end of D and earn from the next business date after D).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn subscribe_as(
        &self,
        key: IdempotencyKey,
        fingerprint: &str,
        subscription_id: &str,
        facts: &AccountFacts,
        product: &Product,
        amount: Money,
        date: Date,
    ) -> Result<Subscription, YieldError> {
        match product.status {
            ProductStatus::Open => {}
            other => {
                return Err(YieldError::ProductNotOpen {
                    product: product.product_id.clone(),
                    status: other.as_str(),
                });
            }
        }
        if amount.currency != product.min_subscription.currency {
            return Err(YieldError::invalid(
                "amount",
                format!("must be in {}", product.min_subscription.currency),
            ));
        }
        if amount.minor < product.min_subscription.minor {
            return Err(YieldError::BelowMinimum {
                minimum: product.min_subscription,
            });
        }
        check_investor(facts)?;
        let today = self.today();
        let rules = self.inner.accounts.rules();
        let checks = rules.outflow_checks(facts.kind, facts.id, amount.minor, today);
        for attempt in 0.. {
            let (holding, new_doc) = self.holding_for_write(facts.id, product, today).await?;
            let command = self.subscribe_command(
                facts,
                product,
                amount,
                holding,
                new_doc,
                subscription_id,
                &checks,
                date,
            );
            let result = self
                .inner
                .accounts
                .submit_request(key.clone(), fingerprint, command, &checks)
                .await
                .map_err(YieldError::from);
            match result {
                Ok(outcome) => return subscription_of(&outcome),
                Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES_MAX => continue,
                Err(e) => return Err(e),
            }
        }
        Err(YieldError::corrupt("subscribe retries"))
    }
}

impl YieldService {
    /// The subscription's posting with its limit counters and (first time) the holding document.
    #[allow(clippy::too_many_arguments)]
    fn subscribe_command(
        &self,
        facts: &AccountFacts,
        product: &Product,
        amount: Money,
        holding: crate::ledger::AccountId,
        new_doc: Option<crate::ledger::DocumentWrite>,
        subscription_id: &str,
        checks: &[crate::account::rules::LimitCheck],
        date: Date,
    ) -> Command {
        let mut metadata = Metadata::from([
            ("type".to_owned(), "yield_subscribe".to_owned()),
            ("product".to_owned(), product.product_id.clone()),
            ("account".to_owned(), facts.id.to_string()),
            ("date".to_owned(), format_date(date)),
            ("subscription".to_owned(), subscription_id.to_owned()),
        ]);
        metadata.insert(
            "income_start".to_owned(),
            format_date(self.next_business_day(date)),
        );
        let tx = NewTransaction::transfer(facts.id, holding, amount, metadata);
        let mut counters: Vec<CounterCheck> = checks.iter().map(|c| c.counter.clone()).collect();
        counters.push(CounterCheck {
            key: keys::shares_in(&product.product_id, facts.id, date),
            amount_minor: amount.minor,
            cap_minor: UNCAPPED,
        });
        Command::Guarded {
            inner: Box::new(Command::Post(tx)),
            counters,
            releases: Vec::new(),
            caps: Vec::new(),
            documents: new_doc.into_iter().collect(),
            events: Vec::new(),
        }
    }
}

/// Only an account that pays with its own balance invests: electronic accounts, merchant
/// settlement accounts and platform sub-accounts.
fn check_investor(facts: &AccountFacts) -> Result<(), YieldError> {
    match facts.kind {
        AccountKind::ClassIi
        | AccountKind::ClassIii
        | AccountKind::MerchantSettlement
        | AccountKind::PlatformSub => Ok(()),
        AccountKind::PlatformMaster | AccountKind::BankInternal => Err(YieldError::invalid(
            "account_id",
            "platform master and bank internal accounts do not invest",
        )),
    }
}

fn subscription_of(outcome: &Outcome) -> Result<Subscription, YieldError> {
    let Outcome::Posted(p) = outcome else {
        return Err(YieldError::corrupt("subscription outcome"));
    };
    subscription_of_posted(p)
}

fn subscription_of_posted(p: &Posted) -> Result<Subscription, YieldError> {
    let m = |k: &str| {
        p.metadata
            .get(k)
            .cloned()
            .ok_or_else(|| YieldError::corrupt("subscription metadata"))
    };
    let debit = p
        .entries
        .iter()
        .find(|e| e.side == Side::Debit)
        .ok_or_else(|| YieldError::corrupt("subscription entries"))?;
    let start: Date = parse_date("income_start", &m("income_start")?)?;
    Ok(Subscription {
        subscription_id: m("subscription")?,
        account: debit.account,
        product_id: m("product")?,
        amount: debit.amount,
        income_start_date: start,
        transaction: TransactionId(p.id.0),
        created_at_ms: p.created_at_ms,
    })
}
