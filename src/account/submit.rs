//! Submitting commands under a request's key, naming class-rule refusals.

use super::*;

impl AccountService {
    /// Submits a command built by another service (the cashier) whose idempotency is judged on
    /// the caller's request (`request_fingerprint`), turning counter and balance-cap refusals
    /// into the rules they enforce, like the account service's own requests.
    pub async fn submit_request(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        command: Command,
        checks: &[LimitCheck],
    ) -> Result<Outcome, AccountError> {
        let result = self
            .inner
            .ledger
            .submit_request(key, request_fingerprint, command)
            .await;
        self.name_refusal(result, checks)
    }

    /// [`AccountService::submit_request`], with what the request observed of the state its
    /// command left (see [`Ledger::submit_observing`](crate::ledger::Ledger::submit_observing)).
    pub async fn submit_observing(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        command: Command,
        checks: &[LimitCheck],
        observe: crate::ledger::Observe,
    ) -> Result<(Outcome, Option<crate::ledger::Observed>), AccountError> {
        let answer = self
            .inner
            .ledger
            .submit_observing(key, request_fingerprint, command, observe)
            .await?;
        let outcome = self.name_refusal(answer.result, checks)?;
        Ok((outcome, answer.observed))
    }

    /// The answer stored for a request made with [`AccountService::submit_request`], if any
    /// (see [`Ledger::answered_request`](crate::ledger::Ledger::answered_request)).
    pub async fn answered_request(
        &self,
        key: &IdempotencyKey,
        request_fingerprint: &str,
    ) -> Result<Option<Result<Outcome, LedgerError>>, AccountError> {
        Ok(self
            .inner
            .ledger
            .answered_request(key, request_fingerprint)
            .await?)
    }

    /// Names a ledger refusal by the account rule it broke (a limit among `checks`, a frozen or
    /// closed account …); the other refusals stay the ledger's.
    pub fn name_refusal(
        &self,
        result: Result<Outcome, LedgerError>,
        checks: &[LimitCheck],
    ) -> Result<Outcome, AccountError> {
        match result {
            Ok(outcome) => Ok(outcome),
            Err(LedgerError::LimitExceeded {
                key,
                cap_minor,
                used_minor,
                requested_minor,
            }) if checks.iter().any(|c| c.counter.key == key) => {
                let check = checks
                    .iter()
                    .find(|c| c.counter.key == key)
                    .ok_or(AccountError::Ledger(LedgerError::Storage))?;
                let currency = self.inner.rules.currency;
                let amount = |minor: i64| {
                    if check.window == rules::LimitWindow::Lifetime {
                        LimitAmount::Count(minor)
                    } else {
                        LimitAmount::Money(Money::new(currency, minor))
                    }
                };
                Err(AccountError::LimitExceeded {
                    rule: check.rule,
                    window: check.window,
                    period: check.period.clone(),
                    limit: amount(cap_minor),
                    used: amount(used_minor),
                    requested: amount(requested_minor),
                    remaining: amount(cap_minor.saturating_sub(used_minor).max(0)),
                })
            }
            Err(LedgerError::BalanceCapExceeded {
                account: _,
                cap,
                balance,
                requested,
            }) => Err(AccountError::LimitExceeded {
                rule: rules::LimitRule::ClassIiiBalanceCap,
                window: rules::LimitWindow::Balance,
                // A balance cap holds at every moment: it has no period.
                period: String::new(),
                limit: LimitAmount::Money(cap),
                used: LimitAmount::Money(balance),
                requested: LimitAmount::Money(requested),
                remaining: LimitAmount::Money(Money::new(
                    cap.currency,
                    cap.minor.saturating_sub(balance.minor).max(0),
                )),
            }),
            // A refusal the account service stored before a batch (e.g. for the cashier).
            Err(LedgerError::Refused { refusal }) => Err(AccountError::from_refusal(&refusal)
                .unwrap_or(AccountError::Ledger(LedgerError::Refused { refusal }))),
            Err(e) => Err(e.into()),
        }
    }
}
