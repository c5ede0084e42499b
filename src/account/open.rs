//! OpenAccount: a new account with its profile, in one batch.

use super::*;

impl AccountService {
    pub async fn open(
        &self,
        caller: &Caller,
        req: OpenAccount,
    ) -> Result<AccountView, AccountError> {
        let i = &self.inner;
        check_text("display_name", &req.display_name, false)?;
        if req.owner_id.is_empty() || req.owner_id.len() > OWNER_ID_LEN_MAX {
            return Err(AccountError::invalid(
                "owner_id",
                format!("1..={OWNER_ID_LEN_MAX} characters"),
            ));
        }
        let currency = req.currency.unwrap_or(i.rules.currency);
        let mut metadata = Metadata::from([
            ("owner".to_owned(), req.owner_id.clone()),
            ("opened_by".to_owned(), caller.name.clone()),
        ]);
        let mut counters = Vec::new();
        let mut limit_checks = Vec::new();
        let mut person_key = None;
        let mut bound = None;
        let mut parent = None;
        match req.kind {
            AccountKind::BankInternal => {
                return Err(AccountError::KindNotOpenable {
                    kind: req.kind.as_str(),
                });
            }
            AccountKind::ClassIi | AccountKind::ClassIii => {
                if currency != i.rules.currency {
                    return Err(AccountError::invalid(
                        "currency",
                        format!("electronic accounts are kept in {}", i.rules.currency),
                    ));
                }
                let identity = req.identity.as_ref().ok_or_else(|| {
                    AccountError::invalid("identity", "required for Class II/III")
                })?;
                check_text("identity.full_name", &identity.full_name, true)?;
                check_text("identity.document_type", &identity.document_type, true)?;
                check_text("identity.document_number", &identity.document_number, true)?;
                let number = req.card_number.as_deref().ok_or_else(|| {
                    AccountError::invalid("bound_card_number", "required for Class II/III")
                })?;
                let agreement = format!(
                    "AGR{}",
                    &hex::encode(Sha256::digest(
                        format!("{}\0{}", caller.name, req.request_id.as_str()).as_bytes()
                    ))[..24]
                );
                let card = card::bind(&i.secrets, number, agreement)
                    .map_err(|e| AccountError::invalid("bound_card_number", e.to_string()))?;
                let key = i
                    .secrets
                    .person_key(&identity.document_type, &identity.document_number);
                if let Some(check) = i.rules.per_person_check(req.kind, &key, 1) {
                    counters.push(check.counter.clone());
                    limit_checks.push(check);
                }
                metadata.insert("person".to_owned(), key.clone());
                metadata.insert("card".to_owned(), card.token.clone());
                metadata.insert("agreement".to_owned(), card.agreement_id.clone());
                person_key = Some(key);
                bound = Some(card);
            }
            AccountKind::PlatformSub => {
                let parent_id = req
                    .parent
                    .ok_or_else(|| AccountError::invalid("parent_account_id", "required"))?;
                let master = self.profile(parent_id).await?;
                if master.kind != AccountKind::PlatformMaster
                    || master.closed_at_ms.is_some()
                    || master.currency != currency
                {
                    return Err(AccountError::InvalidParent {
                        parent: parent_id,
                        currency: currency.code().to_owned(),
                    });
                }
                self.check_scope(caller, &master)?;
                counters.push(CounterCheck {
                    key: format!("SUB_ACCOUNTS/{parent_id}"),
                    amount_minor: 1,
                    cap_minor: SUB_ACCOUNTS_PER_MASTER_MAX,
                });
                metadata.insert("parent".to_owned(), parent_id.to_string());
                parent = Some(parent_id);
            }
            AccountKind::MerchantSettlement | AccountKind::PlatformMaster => {}
        }
        if req.kind != AccountKind::PlatformSub && req.parent.is_some() {
            return Err(AccountError::invalid(
                "parent_account_id",
                "only platform sub-accounts have a parent",
            ));
        }
        let spec = NewAccount {
            currency,
            normal_side: Side::Credit,
            kind: req.kind.as_str().to_owned(),
            constraint: BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor: 0 },
            metadata,
            profile: Some(Box::new(NewProfile {
                kind: req.kind.as_str().to_owned(),
                currency: currency.code().to_owned(),
                owner_id: req.owner_id.clone(),
                display_name: req.display_name.clone(),
                parent_id: parent.map(|p| p.0),
                person_key,
                card_token: bound.as_ref().map(|c| c.token.clone()),
                card_first_six: bound.as_ref().map(|c| c.first_six.clone()),
                card_last_four: bound.as_ref().map(|c| c.last_four.clone()),
                agreement_id: bound.as_ref().map(|c| c.agreement_id.clone()),
                internal_purpose: None,
                opened_by: caller.name.clone(),
            })),
        };
        let command = Command::Guarded {
            inner: Box::new(Command::CreateAccount(spec)),
            counters,
            releases: Vec::new(),
            caps: Vec::new(),
            documents: Vec::new(),
            events: Vec::new(),
        };
        let account = match self
            .submit(caller, &req.request_id, command, &limit_checks)
            .await?
        {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The profile was written in the same batch as the account.
        let profile = self.profile(account.id).await?;
        // A replayed request answers with the account as it is now.
        let (current, _) = i.ledger.account(account.id).await?;
        Ok(profile.view(current.status))
    }
}
