//! OpenAccount: a new account with its profile, in one batch.

use super::*;
use crate::ledger::Observe;

impl AccountService {
    pub async fn open(
        &self,
        caller: &Caller,
        req: OpenAccount,
    ) -> Result<AccountView, AccountError> {
        check_text("display_name", &req.display_name, false)?;
        if req.owner_id.is_empty() || req.owner_id.len() > OWNER_ID_LEN_MAX {
            return Err(AccountError::invalid(
                "owner_id",
                format!("1..={OWNER_ID_LEN_MAX} characters"),
            ));
        }
        // An identifier, but stored and returned as given: the free-text rules apply too.
        crate::text::check_free_text(&req.owner_id, false, OWNER_ID_LEN_MAX).map_err(
            |refusal| AccountError::Text {
                field: "owner_id",
                refusal,
            },
        )?;
        let print = self.open_print(&req);
        let checked = self.open_command(caller, &req).await;
        let account = match self
            .submit_checked(caller, &req.request_id, &print, checked)
            .await?
            .0
        {
            Outcome::Account(a) => a,
            other => return Err(unexpected(&other)),
        };
        // The profile was written in the same batch as the account (and is in the read cache
        // since); the answer shows it as opened (status, no freeze, not closed), the same on
        // every replay.
        let mut profile = self.profile_checked(account.id).await?;
        profile.freeze_reason = String::new();
        profile.closed_at_ms = None;
        Ok(profile.view(account.status))
    }

    /// The checks of opening `req`'s account that read state (a platform sub-account's
    /// parent), and its command.
    async fn open_command(
        &self,
        caller: &Caller,
        req: &OpenAccount,
    ) -> Result<(Command, Vec<LimitCheck>, Observe), AccountError> {
        let i = &self.inner;
        let currency = req.currency.unwrap_or(i.rules.currency);
        let mut metadata = Metadata::from([
            ("owner".to_owned(), req.owner_id.clone()),
            ("opened_by".to_owned(), caller.name.clone()),
        ]);
        let KindBinding {
            counters,
            limit_checks,
            person_key,
            bound,
            parent,
            metadata: kind_metadata,
        } = self.bind_kind(caller, req, currency).await?;
        metadata.extend(kind_metadata);
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
            profile: Some(Box::new(new_profile(
                caller,
                req,
                currency,
                parent,
                person_key,
                bound.as_ref(),
            ))),
        };
        let command = Command::Guarded {
            inner: Box::new(Command::CreateAccount(spec)),
            counters,
            releases: Vec::new(),
            caps: Vec::new(),
            documents: Vec::new(),
            events: Vec::new(),
        };
        Ok((command, limit_checks, Observe::default()))
    }

    /// The fingerprint of an OpenAccount request: its personal data only as a keyed digest.
    fn open_print(&self, req: &OpenAccount) -> String {
        let OpenAccount {
            request_id: _,
            kind,
            currency,
            owner_id,
            identity,
            card_number,
            parent,
            display_name,
        } = req;
        let personal = format!(
            "{:?}|{:?}|{:?}|{card_number:?}",
            identity.as_ref().map(|p| &p.full_name),
            identity.as_ref().map(|p| p.document_type),
            identity.as_ref().map(|p| &p.document_number),
        );
        format!(
            "open|{}|{:?}|{owner_id:?}|{display_name:?}|{parent:?}|{}",
            kind.as_str(),
            currency.map(|c| c.code().to_owned()),
            self.inner.secrets.request_digest(&personal)
        )
    }

    /// What the account's kind binds: a person and card (Class II/III), a parent (platform
    /// sub-account), with their counters and metadata; bank internal accounts are refused.
    async fn bind_kind(
        &self,
        caller: &Caller,
        req: &OpenAccount,
        currency: Currency,
    ) -> Result<KindBinding, AccountError> {
        let mut b = KindBinding::default();
        match req.kind {
            AccountKind::BankInternal => {
                return Err(AccountError::KindNotOpenable {
                    kind: req.kind.as_str(),
                });
            }
            AccountKind::ClassIi | AccountKind::ClassIii => {
                let person = self.person_binding(caller, req, currency)?;
                if let Some(check) = person.check {
                    b.counters.push(check.counter.clone());
                    b.limit_checks.push(check);
                }
                b.metadata.insert("person".to_owned(), person.key.clone());
                b.metadata
                    .insert("card".to_owned(), person.card.token.clone());
                b.metadata
                    .insert("agreement".to_owned(), person.card.agreement_id.clone());
                b.person_key = Some(person.key);
                b.bound = Some(person.card);
            }
            AccountKind::PlatformSub => {
                let (parent_id, counter) = self.sub_account_parent(caller, req, currency).await?;
                b.counters.push(counter);
                b.metadata
                    .insert("parent".to_owned(), parent_id.to_string());
                b.parent = Some(parent_id);
            }
            AccountKind::MerchantSettlement | AccountKind::PlatformMaster => {}
        }
        Ok(b)
    }

    /// A Class II/III account's person and bound card: identity checked, card bound under an
    /// agreement derived from the request, and the per-person class limit.
    fn person_binding(
        &self,
        caller: &Caller,
        req: &OpenAccount,
        currency: Currency,
    ) -> Result<PersonBinding, AccountError> {
        let i = &self.inner;
        if currency != i.rules.currency {
            return Err(AccountError::invalid(
                "currency",
                format!("electronic accounts are kept in {}", i.rules.currency),
            ));
        }
        let identity = req
            .identity
            .as_ref()
            .ok_or_else(|| AccountError::invalid("identity", "required for Class II/III"))?;
        check_text("identity.full_name", &identity.full_name, true)?;
        let document_type = identity
            .document_type
            .ok_or_else(|| AccountError::invalid("identity.document_type", "required"))?;
        // Validated and normalised before it keys the per-person rules: one person written
        // two ways is one person (see `identity` for why stored keys stay valid).
        let document = identity::normalise(document_type, &identity.document_number, self.today())
            .map_err(|e| AccountError::invalid("identity.document_number", e.to_string()))?;
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
            .person_key(document_type.person_key_code(), document.as_str());
        let check = i.rules.per_person_check(req.kind, &key, 1);
        Ok(PersonBinding { key, card, check })
    }

    /// A platform sub-account's parent (an open master in the same currency, in the caller's
    /// scope) and the counter that caps its sub-accounts.
    async fn sub_account_parent(
        &self,
        caller: &Caller,
        req: &OpenAccount,
        currency: Currency,
    ) -> Result<(AccountId, CounterCheck), AccountError> {
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
        let counter = CounterCheck {
            key: format!("SUB_ACCOUNTS/{parent_id}"),
            amount_minor: 1,
            cap_minor: SUB_ACCOUNTS_PER_MASTER_MAX,
        };
        Ok((parent_id, counter))
    }
}

/// What opening a personal electronic account binds.
struct PersonBinding {
    key: String,
    card: card::BoundCard,
    check: Option<LimitCheck>,
}

/// The profile row of a new account of `req`'s kind.
fn new_profile(
    caller: &Caller,
    req: &OpenAccount,
    currency: Currency,
    parent: Option<AccountId>,
    person_key: Option<String>,
    bound: Option<&card::BoundCard>,
) -> NewProfile {
    NewProfile {
        kind: req.kind.as_str().to_owned(),
        currency: currency.code().to_owned(),
        owner_id: req.owner_id.clone(),
        display_name: req.display_name.clone(),
        parent_id: parent.map(|p| p.0),
        person_key,
        card_token: bound.map(|c| c.token.clone()),
        card_first_six: bound.map(|c| c.first_six.clone()),
        card_last_four: bound.map(|c| c.last_four.clone()),
        agreement_id: bound.map(|c| c.agreement_id.clone()),
        internal_purpose: None,
        opened_by: caller.name.clone(),
    }
}

/// What opening an account of a kind adds to its command and metadata.
#[derive(Default)]
struct KindBinding {
    counters: Vec<CounterCheck>,
    limit_checks: Vec<LimitCheck>,
    person_key: Option<String>,
    bound: Option<card::BoundCard>,
    parent: Option<AccountId>,
    metadata: Metadata,
}
