//! RegisterMerchant and GetMerchant.

use super::*;

impl CashierService {
    pub async fn register_merchant(
        &self,
        caller: &Caller,
        req: RegisterMerchant,
    ) -> Result<Merchant, CashierError> {
        check_text("name", &req.name, true)?;
        check_products(&req.products)?;
        check_allowed_callers(&req.allowed_callers)?;
        let merchant_id = derive_id("M", &caller.name, &req.request_id);
        let key = req.request_id.key(&caller.name);
        let print = fingerprint("RegisterMerchant", &req);
        // A service provider or settlement account not found (or not fit) claims the request
        // id like the batch's refusals; an earlier success answers the merchant it registered.
        let checked = match self.provider_of(caller, &req, &merchant_id).await {
            Ok(provider) => self
                .check_settlement(req.settlement_account_id)
                .await
                .map(|()| provider),
            Err(e) => Err(e),
        };
        let provider = match checked {
            Ok(provider) => provider,
            Err(e) => {
                self.claim(key, &print, e).await?;
                return Ok(self.merchant_doc(&merchant_id).await?.0);
            }
        };
        let merchant = Merchant {
            merchant_id: merchant_id.clone(),
            name: req.name.clone(),
            merchant_type: req.merchant_type,
            service_provider_id: provider.as_ref().map(|p| p.merchant_id.clone()),
            settlement_account_id: req.settlement_account_id.0,
            products: req.products.clone(),
            allowed_callers: req.allowed_callers.clone(),
            static_qr_payload: QrTarget::Merchant(&merchant_id).payload(),
            created_at_ms: self.now_ms(),
        };
        let documents = self
            .merchant_documents(&merchant, provider.as_ref())
            .await?;
        let command = guarded(Command::NoOp, Vec::new(), documents, Vec::new());
        self.submit(key, print, command, &[])
            .await
            .map_err(|e| self.conflict_is(e, "merchant"))?;
        Ok(self.merchant_doc(&merchant_id).await?.0)
    }

    /// The service provider of a sub-merchant (whose callers, or the bank's, onboard it); only
    /// the bank registers a merchant without one.
    async fn provider_of(
        &self,
        caller: &Caller,
        req: &RegisterMerchant,
        merchant_id: &str,
    ) -> Result<Option<Merchant>, CashierError> {
        match (req.merchant_type, req.service_provider_id.is_empty()) {
            (MerchantType::SubMerchant, true) => Err(CashierError::invalid(
                "service_provider_id",
                "required for a sub-merchant",
            )),
            (MerchantType::SubMerchant, false) => {
                let (provider, _) = self.merchant_doc(&req.service_provider_id).await?;
                if provider.merchant_type != MerchantType::ServiceProvider {
                    return Err(CashierError::invalid(
                        "service_provider_id",
                        "not a service provider",
                    ));
                }
                // The provider's callers onboard its sub-merchants; so does the bank.
                if !self.is_bank(caller) && !provider.allowed_callers.contains(&caller.name) {
                    return Err(not_permitted(caller, &provider.merchant_id));
                }
                Ok(Some(provider))
            }
            (_, false) => Err(CashierError::invalid(
                "service_provider_id",
                "only a sub-merchant has a service provider",
            )),
            (_, true) if !self.is_bank(caller) => Err(not_permitted(caller, merchant_id)),
            (_, true) => Ok(None),
        }
    }

    /// A settlement account is an open MERCHANT_SETTLEMENT account in the cashier's currency.
    async fn check_settlement(&self, settlement: AccountId) -> Result<(), CashierError> {
        let facts = self.inner.accounts.facts(settlement).await?;
        if facts.kind != AccountKind::MerchantSettlement || facts.closed {
            return Err(CashierError::invalid(
                "settlement_account_id",
                "an open MERCHANT_SETTLEMENT account",
            ));
        }
        if facts.currency != self.inner.currency {
            return Err(CashierError::invalid(
                "settlement_account_id",
                format!("settlement accounts are kept in {}", self.inner.currency),
            ));
        }
        Ok(())
    }

    /// The merchant document and, for a sub-merchant, its provider's list with it added.
    async fn merchant_documents(
        &self,
        merchant: &Merchant,
        provider: Option<&Merchant>,
    ) -> Result<Vec<DocumentWrite>, CashierError> {
        let merchant_id = &merchant.merchant_id;
        let mut documents = vec![write_doc(KIND_MERCHANT, merchant_id, 0, merchant)?];
        let Some(provider) = provider else {
            return Ok(documents);
        };
        let (mut subs, version) = self
            .load::<Vec<String>>(KIND_SUB_MERCHANTS, &provider.merchant_id)
            .await?
            .unwrap_or_default();
        if subs.len() >= SUB_MERCHANTS_MAX {
            return Err(CashierError::invalid(
                "service_provider_id",
                format!("a service provider has at most {SUB_MERCHANTS_MAX} sub-merchants"),
            ));
        }
        if !subs.contains(merchant_id) {
            subs.push(merchant_id.clone());
            documents.push(write_doc(
                KIND_SUB_MERCHANTS,
                &provider.merchant_id,
                version,
                &subs,
            )?);
        }
        Ok(documents)
    }

    pub async fn merchant(&self, caller: &Caller, id: &str) -> Result<Merchant, CashierError> {
        let (merchant, _) = self.merchant_doc(id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(merchant)
    }
}

/// 1..=PRODUCTS_MAX products, each method and scenario signed once.
fn check_products(products: &[Product]) -> Result<(), CashierError> {
    if products.is_empty() || products.len() > PRODUCTS_MAX {
        return Err(CashierError::invalid(
            "products",
            format!("1..={PRODUCTS_MAX} signed products"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if products
        .iter()
        .any(|p| !seen.insert((p.method, p.scenario)))
    {
        return Err(CashierError::invalid(
            "products",
            "each method and scenario is signed once",
        ));
    }
    Ok(())
}

fn check_allowed_callers(callers: &[String]) -> Result<(), CashierError> {
    if callers.len() > ALLOWED_CALLERS_MAX || callers.iter().any(|c| c.is_empty() || c.len() > 64) {
        return Err(CashierError::invalid(
            "allowed_callers",
            format!("at most {ALLOWED_CALLERS_MAX} caller names of 1..=64 characters"),
        ));
    }
    Ok(())
}
