//! Closing an account.

use super::*;
use crate::ledger::Observe;

impl AccountService {
    /// Closes an account: only at zero balance with no holds or pending transfers (a platform
    /// master only once all its sub-accounts are closed).
    pub async fn close(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        reason: &str,
    ) -> Result<AccountView, AccountError> {
        check_text("reason", reason, false)?;
        // The reason is part of the request: a retry under the same id with another reason is
        // another request (IDEMPOTENCY_KEY_REUSED), not a replay.
        let print = format!("CloseAccount|{account}|{reason}");
        let checked = match self.acting_profile(caller, account).await? {
            Ok(profile) => self.close_command(&profile).await,
            Err(e) => Err(e),
        };
        let closed = match self
            .submit_checked(caller, request_id, &print, checked)
            .await?
            .0
        {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The batch wrote the close time to the profile.
        let profile = self.profile(account).await?;
        Ok(profile.view(closed.status))
    }

    /// The checks of closing `profile`'s account that read state (a platform master's open
    /// sub-accounts), and its command.
    async fn close_command(
        &self,
        profile: &Profile,
    ) -> Result<(Command, Vec<LimitCheck>, Observe), AccountError> {
        let account = profile.id;
        if profile.kind == AccountKind::BankInternal {
            return Err(AccountError::KindNotOpenable {
                kind: profile.kind.as_str(),
            });
        }
        if profile.kind == AccountKind::PlatformMaster {
            let open_children = self
                .inner
                .ledger
                .profiles(&ProfileQuery {
                    filter: ProfileFilter::Parent(account.0),
                    kind: None,
                    include_closed: false,
                    after_id: 0,
                    limit: 1,
                })
                .await?;
            if !open_children.is_empty() {
                return Err(AccountError::Ledger(LedgerError::AccountNotEmpty {
                    account,
                }));
            }
        }
        let mut releases = Vec::new();
        // Closing frees the person's place for another account of this class.
        if let Some(check) = profile
            .person_key
            .as_deref()
            .and_then(|person| self.inner.rules.per_person_check(profile.kind, person, -1))
        {
            releases.push(CounterRelease {
                key: check.counter.key,
                amount_minor: 1,
            });
        }
        if let Some(parent) = profile.parent {
            releases.push(CounterRelease {
                key: format!("SUB_ACCOUNTS/{parent}"),
                amount_minor: 1,
            });
        }
        let command = Command::Guarded {
            inner: Box::new(Command::SetAccountStatus {
                account,
                status: AccountStatus::Closed,
            }),
            counters: Vec::new(),
            releases,
            caps: Vec::new(),
            documents: Vec::new(),
            events: Vec::new(),
        };
        Ok((command, Vec::new(), Observe::default()))
    }
}
