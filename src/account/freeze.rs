//! Freeze and unfreeze.

use super::*;
use crate::ledger::Observe;

impl AccountService {
    /// Adds the blocked directions of `mode` to the account's freeze (`freeze` true) or removes
    /// them (`freeze` false). An account not found claims the request id like the batch's
    /// refusals; the answer is the account as the change left it, the same on every replay.
    pub async fn set_freeze(
        &self,
        caller: &Caller,
        change: FreezeChange,
    ) -> Result<AccountView, AccountError> {
        let FreezeChange {
            request_id,
            account,
            no_debit,
            no_credit,
            freeze,
            reason,
        } = change;
        let reason = reason.as_str();
        check_text("reason", reason, true)?;
        if !no_debit && !no_credit {
            return Err(AccountError::invalid("mode", "NO_DEBIT, NO_CREDIT or BOTH"));
        }
        // The reason is part of the request: a retry under the same id with another reason is
        // another request (IDEMPOTENCY_KEY_REUSED), never a replay that rewrites the reason.
        let name = if freeze { "freeze" } else { "unfreeze" };
        let print = format!("{name}|{account}|{no_debit}|{no_credit}|{reason:?}");
        let profile = self.acting_profile(caller, account).await?;
        // The ledger combines the change with the status as its batch sees it: concurrent
        // freezes in different directions both hold, and a retry is the same command.
        let checked = profile.as_ref().map_err(Clone::clone).map(|_| {
            let command = Command::ChangeFreeze {
                account,
                no_debit,
                no_credit,
                freeze,
                reason: reason.to_owned(),
            };
            (command, Vec::new(), Observe::default())
        });
        let (outcome, _) = self
            .submit_checked(caller, &request_id, &print, checked)
            .await?;
        let updated = match outcome {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The batch wrote the same reason to the profile.
        let frozen = matches!(updated.status, AccountStatus::Frozen { .. });
        let reason_now = if frozen { reason } else { "" };
        let mut profile = profile?;
        profile.freeze_reason = reason_now.to_owned();
        Ok(profile.view(updated.status))
    }
}
