//! Amount holds: place, release, capture.

use super::*;
use crate::ledger::Observe;

impl AccountService {
    pub async fn place_hold(
        &self,
        caller: &Caller,
        req: PlaceHold,
    ) -> Result<HoldView, AccountError> {
        let PlaceHold {
            request_id,
            account,
            amount,
            kind,
            reason,
            external_reference,
            expires_at_ms,
        } = req;
        let (reason, external_reference) = (reason.as_str(), external_reference.as_str());
        check_text("reason", reason, true)?;
        check_text("external_reference", external_reference, false)?;
        let print = format!(
            "place_hold|{account}|{}|{}|{}|{reason:?}|{external_reference:?}|{expires_at_ms:?}",
            amount.currency.code(),
            amount.minor,
            kind.as_str(),
        );
        let profile = self.acting_profile(caller, account).await?;
        let checked = match &profile {
            Ok(profile) => (|| {
                check_postable(caller, profile)?;
                let amount = self.amount_in(profile, amount)?;
                let timeout_ms = match expires_at_ms {
                    None => None,
                    Some(at) => {
                        let left = at.saturating_sub(self.inner.ledger.now_ms());
                        if left <= 0 {
                            return Err(AccountError::invalid(
                                "expire_time",
                                "must be in the future",
                            ));
                        }
                        Some(u64::try_from(left).unwrap_or(u64::MAX))
                    }
                };
                let hold = NewHold {
                    account,
                    amount,
                    timeout_ms,
                    metadata: Metadata::from([
                        ("kind".to_owned(), kind.as_str().to_owned()),
                        ("reason".to_owned(), reason.to_owned()),
                        (
                            "external_reference".to_owned(),
                            external_reference.to_owned(),
                        ),
                    ]),
                };
                Ok((Command::PlaceHold(hold), Vec::new(), Observe::default()))
            })(),
            Err(e) => Err(e.clone()),
        };
        // The hold as placed: a retry later (its expiry now nearer) is the same request.
        match self
            .submit_checked(caller, &request_id, &print, checked)
            .await?
            .0
        {
            Outcome::Hold(hold) => Ok(hold_view(hold)),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn release_hold(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        hold: HoldId,
    ) -> Result<HoldView, AccountError> {
        let checked = self.hold_in_scope(caller, hold).await?.map(|_| {
            (
                Command::ReleaseHold { hold },
                Vec::new(),
                Observe::default(),
            )
        });
        let print = format!("release_hold|{hold}");
        match self
            .submit_checked(caller, request_id, &print, checked)
            .await?
            .0
        {
            Outcome::Hold(released) => Ok(hold_view(released)),
            other => Err(unexpected(&other)),
        }
    }

    /// Captures `amount` (all of it when `None`) of a hold into `to`; the rest is released.
    pub async fn capture_hold(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        hold: HoldId,
        amount: Option<Money>,
        to: AccountId,
        memo: &str,
    ) -> Result<(HoldView, crate::ledger::TransactionId), AccountError> {
        check_text("memo", memo, false)?;
        let print = format!(
            "capture_hold|{hold}|{:?}|{to}|{memo:?}",
            amount.map(|a| (a.currency.code().to_owned(), a.minor))
        );
        let checked = match self.hold_in_scope(caller, hold).await? {
            Ok(current) => {
                self.capture_command(caller, current, amount, to, memo)
                    .await
            }
            Err(e) => Err(e),
        };
        let posted = match self
            .submit_checked(caller, request_id, &print, checked)
            .await?
            .0
        {
            Outcome::Posted(p) => p,
            other => return Err(unexpected(&other)),
        };
        // A captured hold is final (the rest was released with the capture): read now, it is
        // the hold as the capture left it, the same on every replay.
        let after = self.inner.ledger.hold(hold).await?;
        Ok((hold_view(after), posted.id))
    }

    /// The checks of a capture of `current` that read state, and its command.
    async fn capture_command(
        &self,
        caller: &Caller,
        current: Hold,
        amount: Option<Money>,
        to: AccountId,
        memo: &str,
    ) -> Result<(Command, Vec<LimitCheck>, Observe), AccountError> {
        let hold = current.id;
        let target = self.profile(to).await?;
        check_postable(caller, &target)?;
        let held = self.profile(current.account).await?;
        let amount = match amount {
            Some(amount) => self.amount_in(&held, amount)?,
            None => current.amount,
        };
        // A capture moves money out of the held account like a transfer: the class rules of
        // both sides apply (a captured pre-authorisation is a payment), in the same step. A
        // judicial deduction is executed whatever the holder's flow limits; the payee's
        // Class III balance cap holds always.
        let judicial =
            current.metadata.get("kind").map(String::as_str) == Some(HoldKind::Judicial.as_str());
        let mut checks = Vec::new();
        if !judicial {
            let date = self.today();
            let rules = &self.inner.rules;
            checks.extend(rules.outflow_checks(held.kind, held.id, amount.minor, date));
            checks.extend(rules.inflow_checks(target.kind, to, amount.minor, date));
        }
        let command = Command::Guarded {
            inner: Box::new(Command::CaptureHold {
                hold,
                amount,
                to,
                metadata: movement_metadata(
                    EntryType::HoldCapture,
                    memo,
                    Some(current.account),
                    Some(to),
                ),
            }),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: self.caps_for(&[&target]),
            documents: Vec::new(),
            events: Vec::new(),
        };
        Ok((command, checks, Observe::default()))
    }

    /// The hold a request acts on. A caller outside the grant of the hold's account is refused
    /// at once (the outer error, which claims nothing); a hold not found is the request's
    /// refusal (the inner one, which claims the request id).
    pub(super) async fn hold_in_scope(
        &self,
        caller: &Caller,
        hold: HoldId,
    ) -> Result<Result<Hold, AccountError>, AccountError> {
        let current = match self.inner.ledger.hold(hold).await {
            Ok(h) => h,
            Err(LedgerError::HoldNotFound { .. }) => {
                return Ok(Err(AccountError::HoldNotFound {
                    hold: hold.to_string(),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .acting_profile(caller, current.account)
            .await?
            .map(|_| current))
    }
}

pub(super) fn hold_view(hold: Hold) -> HoldView {
    let text = |k: &str| hold.metadata.get(k).cloned().unwrap_or_default();
    HoldView {
        id: hold.id,
        account: hold.account,
        kind: hold
            .metadata
            .get("kind")
            .and_then(|k| HoldKind::parse(k))
            .unwrap_or(HoldKind::Other),
        amount: hold.amount,
        captured: Money::new(hold.amount.currency, hold.captured_minor),
        state: hold.state,
        reason: text("reason"),
        external_reference: text("external_reference"),
        created_at_ms: hold.created_at_ms,
        expires_at_ms: hold.expires_at_ms,
        capture_transaction: hold.transaction,
    }
}
