//! Freeze and unfreeze.

use super::*;

impl AccountService {
    /// Adds the blocked directions of `mode` to the account's freeze (`freeze` true) or removes
    /// them (`freeze` false).
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
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        // The ledger combines the change with the status as its batch sees it: concurrent
        // freezes in different directions both hold, and a retry is the same command.
        let command = Command::ChangeFreeze {
            account,
            no_debit,
            no_credit,
            freeze,
            reason: reason.to_owned(),
        };
        let updated = match self.submit(caller, &request_id, command, &[]).await? {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The batch wrote the same reason to the profile.
        let frozen = matches!(updated.status, AccountStatus::Frozen { .. });
        let reason_now = if frozen { reason } else { "" };
        let mut profile = profile;
        profile.freeze_reason = reason_now.to_owned();
        Ok(profile.view(updated.status))
    }
}
