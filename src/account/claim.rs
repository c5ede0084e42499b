//! Which refusals claim a request's key, and answers rebuilt from what the first request
//! observed.
//!
//! The rule (幂等规则), the same in every service: a refusal that depends on state (an account
//! or hold not found, no bound card, a master account, a frozen or closed account, funds,
//! limits …) is the request's answer and is stored under its key, whether the ledger decided it
//! in the batch or the service decided it from its reads before; a retry answers it again even
//! after the state changed. A malformed request (INVALID_ARGUMENT, decided from the request
//! alone), a caller outside its grant (PERMISSION_DENIED, decided by configuration) and a
//! transient failure claim nothing.

use serde::{Deserialize, Serialize};

use super::*;
use crate::ledger::{Answer, Observe, Observed, Refusal};

/// An account refusal decided before the batch, as stored under the request's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "SCREAMING_SNAKE_CASE")]
enum Stored {
    AccountNotFound { account: String },
    HoldNotFound { hold: String },
    MasterNotPostable { account: AccountId },
    NoBoundCard { account: AccountId },
    InvalidParent { parent: AccountId, currency: String },
    Ledger { error: LedgerError },
}

/// The service whose refusals [`AccountError::refusal`] encodes.
const REFUSAL_SERVICE: &str = "account";

impl AccountError {
    /// The stored form of this refusal when it claims the request's key; `None` when it does
    /// not (malformed, outside the caller's grant, transient).
    pub fn refusal(&self) -> Option<Refusal> {
        let stored = match self {
            AccountError::AccountNotFound { account } => Stored::AccountNotFound {
                account: account.clone(),
            },
            AccountError::HoldNotFound { hold } => Stored::HoldNotFound { hold: hold.clone() },
            AccountError::MasterNotPostable { account } => {
                Stored::MasterNotPostable { account: *account }
            }
            AccountError::NoBoundCard { account } => Stored::NoBoundCard { account: *account },
            AccountError::InvalidParent { parent, currency } => Stored::InvalidParent {
                parent: *parent,
                currency: currency.clone(),
            },
            AccountError::Ledger(error) if claims_key(error) => Stored::Ledger {
                error: error.clone(),
            },
            AccountError::InvalidArgument { .. }
            | AccountError::Text { .. }
            | AccountError::KindNotOpenable { .. }
            | AccountError::OutOfScope { .. }
            | AccountError::TransferToSelf
            | AccountError::LimitExceeded { .. }
            | AccountError::InvalidPageToken
            | AccountError::ClearingDeclined { .. }
            | AccountError::Corrupt { .. }
            | AccountError::Ledger(_) => return None,
        };
        let body = serde_json::to_string(&stored).ok()?;
        Some(Refusal {
            reason: REFUSAL_SERVICE.to_owned(),
            body,
        })
    }

    /// A stored account refusal read back; `None` when it is not one.
    pub fn from_refusal(refusal: &Refusal) -> Option<AccountError> {
        if refusal.reason != REFUSAL_SERVICE {
            return None;
        }
        let stored: Stored = serde_json::from_str(&refusal.body).ok()?;
        Some(match stored {
            Stored::AccountNotFound { account } => AccountError::AccountNotFound { account },
            Stored::HoldNotFound { hold } => AccountError::HoldNotFound { hold },
            Stored::MasterNotPostable { account } => AccountError::MasterNotPostable { account },
            Stored::NoBoundCard { account } => AccountError::NoBoundCard { account },
            Stored::InvalidParent { parent, currency } => {
                AccountError::InvalidParent { parent, currency }
            }
            Stored::Ledger { error } => AccountError::Ledger(error),
        })
    }
}

/// Whether a ledger refusal met before the batch (a currency the account does not hold …)
/// claims the key: the same ones the batch stores.
fn claims_key(e: &LedgerError) -> bool {
    e.is_stored_outcome()
        && !matches!(
            e,
            LedgerError::IdempotencyKeyReused { .. } | LedgerError::Refused { .. }
        )
}

/// A stored refusal of the account service as its error (an undecodable one is corrupt).
fn refused(e: LedgerError) -> AccountError {
    match e {
        LedgerError::Refused { refusal } => {
            AccountError::from_refusal(&refusal).unwrap_or_else(|| {
                AccountError::corrupt(format!("stored refusal of {:?}", refusal.reason))
            })
        }
        other => AccountError::Ledger(other),
    }
}

impl AccountService {
    /// Submits a request's command (when its checks passed) or claims its key for the refusal
    /// its checks met; either way the answer is the request's first one, with what it observed.
    /// `print` is the request as the service understood it.
    pub(super) async fn submit_checked(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        print: &str,
        checked: Result<(Command, Vec<LimitCheck>, Observe), AccountError>,
    ) -> Result<(Outcome, Option<Observed>), AccountError> {
        let key = request_id.key(&caller.name);
        let ledger = &self.inner.ledger;
        let (answer, checks) = match checked {
            Ok((command, checks, observe)) => (
                ledger
                    .submit_observing(key, print, command, observe)
                    .await?,
                checks,
            ),
            Err(e) => match e.refusal() {
                Some(refusal) => (
                    ledger.refuse_request(key, print, refusal).await?,
                    Vec::new(),
                ),
                None => return Err(e),
            },
        };
        let Answer { result, observed } = answer;
        let outcome = match result {
            Err(e @ LedgerError::Refused { .. }) => return Err(refused(e)),
            other => self.name_refusal(other, &checks)?,
        };
        Ok((outcome, observed))
    }

    /// Claims `key` for a refusal of this service met before the batch by another service
    /// (the cashier's bound-card check): the answer is the request's first one (an outcome, or
    /// the refusal stored, this one or an earlier), as [`AccountService::submit_checked`].
    pub async fn claim_refusal(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        error: AccountError,
    ) -> Result<(Outcome, Option<Observed>), AccountError> {
        let Some(refusal) = error.refusal() else {
            return Err(error);
        };
        let Answer { result, observed } = self
            .inner
            .ledger
            .refuse_request(key, request_fingerprint, refusal)
            .await?;
        match result {
            Ok(outcome) => Ok((outcome, observed)),
            Err(e) => Err(refused(e)),
        }
    }

    /// The profile of the account a request acts on. A caller outside its grant is refused at
    /// once (the outer error, which claims nothing); an account not found is the request's
    /// refusal (the inner one, which [`AccountService::submit_checked`] claims the key for).
    pub(super) async fn acting_profile(
        &self,
        caller: &Caller,
        id: AccountId,
    ) -> Result<Result<Profile, AccountError>, AccountError> {
        let profile = self.profile_checked(id).await;
        if let Ok(profile) = &profile {
            self.check_scope(caller, profile)?;
        }
        Ok(profile)
    }

    /// What to observe for an answer that shows `profile`'s balance.
    pub(super) fn observe_balance(&self, profile: &Profile) -> Observe {
        let usage = self
            .inner
            .rules
            .usage_keys(profile.kind, profile.id, self.today());
        Observe {
            accounts: vec![profile.id],
            counters: usage.into_iter().map(|c| c.counter.key).collect(),
            document_kinds: Vec::new(),
        }
    }

    /// `profile`'s balance as the request's command left it (`observed`); read now when the
    /// answer was stored without it.
    pub(super) async fn balance_observed(
        &self,
        profile: &Profile,
        observed: Option<&Observed>,
    ) -> Result<BalanceView, AccountError> {
        match observed.and_then(|o| Some((o, o.balance(profile.id)?))) {
            Some((o, balance)) => {
                let date = self.inner.calendar.date_at(o.at_ms);
                Ok(self.balance_view(profile, balance, date, o.at_ms, |key| o.counter(key)))
            }
            None => self.balance_of(profile).await,
        }
    }
}
