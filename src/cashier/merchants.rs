//! RegisterMerchant and GetMerchant.

use super::*;

impl CashierService {
    // Over 70 lines: its steps (validate, build the documents and postings, submit, answer)
    // share many locals; breaking it into named steps is pending (architecture issue, item 1).
    pub async fn register_merchant(
        &self,
        caller: &Caller,
        req: RegisterMerchant,
    ) -> Result<Merchant, CashierError> {
        check_text("name", &req.name, true)?;
        let merchant_id = derive_id("M", &caller.name, &req.request_id);
        let provider = match (req.merchant_type, req.service_provider_id.is_empty()) {
            (MerchantType::SubMerchant, true) => {
                return Err(CashierError::invalid(
                    "service_provider_id",
                    "required for a sub-merchant",
                ));
            }
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
                Some(provider)
            }
            (_, false) => {
                return Err(CashierError::invalid(
                    "service_provider_id",
                    "only a sub-merchant has a service provider",
                ));
            }
            (_, true) => {
                if !self.is_bank(caller) {
                    return Err(not_permitted(caller, &merchant_id));
                }
                None
            }
        };
        let settlement = req.settlement_account_id;
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
        if req.products.is_empty() || req.products.len() > PRODUCTS_MAX {
            return Err(CashierError::invalid(
                "products",
                format!("1..={PRODUCTS_MAX} signed products"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &req.products {
            if !seen.insert((p.method, p.scenario)) {
                return Err(CashierError::invalid(
                    "products",
                    "each method and scenario is signed once",
                ));
            }
        }
        if req.allowed_callers.len() > ALLOWED_CALLERS_MAX
            || req
                .allowed_callers
                .iter()
                .any(|c| c.is_empty() || c.len() > 64)
        {
            return Err(CashierError::invalid(
                "allowed_callers",
                format!("at most {ALLOWED_CALLERS_MAX} caller names of 1..=64 characters"),
            ));
        }
        let merchant = Merchant {
            merchant_id: merchant_id.clone(),
            name: req.name.clone(),
            merchant_type: req.merchant_type,
            service_provider_id: provider.as_ref().map(|p| p.merchant_id.clone()),
            settlement_account_id: settlement.0,
            products: req.products.clone(),
            allowed_callers: req.allowed_callers.clone(),
            static_qr_payload: format!("{QR_MERCHANT_PREFIX}{merchant_id}"),
            created_at_ms: self.now_ms(),
        };
        let mut documents = vec![write_doc(KIND_MERCHANT, &merchant_id, 0, &merchant)?];
        if let Some(provider) = &provider {
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
            if !subs.contains(&merchant_id) {
                subs.push(merchant_id.clone());
                documents.push(write_doc(
                    KIND_SUB_MERCHANTS,
                    &provider.merchant_id,
                    version,
                    &subs,
                )?);
            }
        }
        let command = guarded(Command::NoOp, Vec::new(), documents, Vec::new());
        self.submit(
            req.request_id.key(&caller.name),
            fingerprint("RegisterMerchant", &req),
            command,
            &[],
        )
        .await
        .map_err(|e| self.conflict_is(e, "merchant"))?;
        Ok(self.merchant_doc(&merchant_id).await?.0)
    }

    pub async fn merchant(&self, caller: &Caller, id: &str) -> Result<Merchant, CashierError> {
        let (merchant, _) = self.merchant_doc(id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(merchant)
    }
}
