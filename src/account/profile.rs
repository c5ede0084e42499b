//! The typed account profile and the shared checks on it.

use super::*;

impl AccountService {
    /// An account's profile as the database holds it now (from the read cache when it is
    /// known current).
    pub(super) async fn profile(&self, id: AccountId) -> Result<Profile, AccountError> {
        self.profile_as(id, Freshness::Current).await
    }

    /// An account's profile for the checks of a request whose batch re-checks the account's
    /// status (see [`Freshness::Checked`]).
    pub(super) async fn profile_checked(&self, id: AccountId) -> Result<Profile, AccountError> {
        self.profile_as(id, Freshness::Checked).await
    }

    pub(super) async fn profile_as(
        &self,
        id: AccountId,
        freshness: Freshness,
    ) -> Result<Profile, AccountError> {
        let row = self
            .inner
            .ledger
            .profile_as(id, freshness)
            .await?
            .ok_or_else(|| AccountError::AccountNotFound {
                account: id.to_string(),
            })?;
        Profile::from_row(row)
    }

    pub(super) fn check_scope(
        &self,
        caller: &Caller,
        profile: &Profile,
    ) -> Result<(), AccountError> {
        match caller.scope {
            AccountScope::All => Ok(()),
            AccountScope::Own if profile.opened_by == caller.name => Ok(()),
            AccountScope::Own => Err(AccountError::OutOfScope {
                caller: caller.name.clone(),
                account: profile.id,
            }),
        }
    }

    pub(super) fn page_size(&self, requested: i32) -> Result<u32, AccountError> {
        let max = self.inner.config.page_size_max;
        match requested {
            0 => Ok(self.inner.config.page_size_default.min(max)),
            n if n < 0 => Err(AccountError::invalid("page_size", "must not be negative")),
            n => Ok(u32::try_from(n).unwrap_or(max).min(max)),
        }
    }

    /// The amount, if it is in the account's currency; another currency is a mismatch, not a
    /// conversion.
    pub(super) fn amount_in(
        &self,
        profile: &Profile,
        amount: Money,
    ) -> Result<Money, AccountError> {
        if amount.currency != profile.currency {
            return Err(AccountError::Ledger(LedgerError::CurrencyMismatch {
                account: profile.id,
                expected: profile.currency,
                actual: amount.currency,
            }));
        }
        Ok(amount)
    }

    /// The Class III balance cap for every capped account that money flows into.
    pub(super) fn caps_for(&self, targets: &[&Profile]) -> Vec<BalanceCap> {
        targets
            .iter()
            .filter(|p| p.kind == AccountKind::ClassIii)
            .map(|p| BalanceCap {
                account: p.id,
                max_minor: self.inner.rules.class_iii_balance_max_minor,
            })
            .collect()
    }
}

/// A profile with its typed fields.
#[derive(Debug, Clone)]
pub(super) struct Profile {
    pub(super) id: AccountId,
    pub(super) kind: AccountKind,
    pub(super) currency: Currency,
    pub(super) owner_id: String,
    pub(super) display_name: String,
    pub(super) parent: Option<AccountId>,
    pub(super) person_key: Option<String>,
    pub(super) card_token: Option<String>,
    pub(super) card: Option<card::BoundCard>,
    pub(super) internal_purpose: Option<InternalPurpose>,
    pub(super) opened_by: String,
    pub(super) freeze_reason: String,
    pub(super) opened_at_ms: i64,
    pub(super) closed_at_ms: Option<i64>,
}

impl Profile {
    pub(super) fn from_row(row: ProfileRow) -> Result<Profile, AccountError> {
        let id = row.account_id;
        let corrupt = |field: &str, text: &str| {
            AccountError::corrupt(format!("profile of account {id}: {field} {text:?}"))
        };
        let internal_purpose = match row.internal_purpose.as_deref() {
            None => None,
            Some(text) => Some(
                InternalPurpose::parse(text).ok_or_else(|| corrupt("internal purpose", text))?,
            ),
        };
        let card = match (
            &row.card_token,
            &row.card_first_six,
            &row.card_last_four,
            &row.agreement_id,
        ) {
            (Some(token), Some(first), Some(last), Some(agreement)) => Some(card::BoundCard {
                token: token.clone(),
                first_six: first.clone(),
                last_four: last.clone(),
                agreement_id: agreement.clone(),
            }),
            _ => None,
        };
        Ok(Profile {
            id: AccountId(row.account_id),
            kind: AccountKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
            currency: Currency::from_code(&row.currency)
                .map_err(|_| corrupt("currency", &row.currency))?,
            owner_id: row.owner_id,
            display_name: row.display_name,
            parent: row.parent_id.map(AccountId),
            person_key: row.person_key,
            card_token: row.card_token,
            card,
            internal_purpose,
            opened_by: row.opened_by,
            freeze_reason: row.freeze_reason,
            opened_at_ms: row.opened_at_ms,
            closed_at_ms: row.closed_at_ms,
        })
    }

    pub(super) fn view(&self, status: AccountStatus) -> AccountView {
        AccountView {
            id: self.id,
            kind: self.kind,
            status,
            currency: self.currency.code().to_owned(),
            owner_id: self.owner_id.clone(),
            display_name: self.display_name.clone(),
            parent: self.parent,
            bound_card: self.card.clone(),
            freeze_reason: self.freeze_reason.clone(),
            internal_purpose: self.internal_purpose,
            opened_at_ms: self.opened_at_ms,
            closed_at_ms: self.closed_at_ms,
        }
    }
}
