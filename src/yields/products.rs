//! Products: registered by an operator (or configuration), read and listed with their latest
//! rate and 7-day annualised yields.

use crate::{
    account::Caller,
    config::ProductConfig,
    ledger::{Command, LedgerError, RequestId},
    money::{Money, Sign},
};

use super::{
    KIND_PRODUCT, Page, Product, ProductAccounts, ProductStatus, ProductView, RegisterProduct,
    SYSTEM_SCOPE, YieldError, YieldService, internal_account, model::PRODUCT_ID_LEN_MAX, write_doc,
};

/// Longest product name, fund code and fund manager (characters).
pub const PRODUCT_TEXT_LEN_MAX: usize = 128;

impl YieldService {
    /// Registers a product: its internal accounts (idempotently), then its document. The same
    /// definition again is an idempotent success; another one under the same id is refused.
    pub async fn register_product(
        &self,
        caller: &Caller,
        r: RegisterProduct,
    ) -> Result<ProductView, YieldError> {
        self.check_register(&r)?;
        let fingerprint = format!("register_product|{r:?}");
        let key = r.request_id.key(&caller.name);
        if let Some((existing, _)) = self.load::<Product>(KIND_PRODUCT, &r.product_id).await? {
            if !same_definition(&existing, &r, self.inner.fast_cap) {
                // Another definition under the id: the request's refusal, claimed.
                let exists = YieldError::ProductExists {
                    product: r.product_id.clone(),
                };
                self.claim(key, &fingerprint, exists).await?;
            }
            return self.product(&existing.product_id).await;
        }
        let accounts = self.product_accounts(&r.product_id).await?;
        let product = Product {
            product_id: r.product_id.clone(),
            name: r.name.clone(),
            fund_code: r.fund_code.clone(),
            fund_manager: r.fund_manager.clone(),
            status: r.status,
            min_subscription: r.min_subscription,
            fast_redeem_daily_cap: r.fast_redeem_daily_cap.unwrap_or(self.inner.fast_cap),
            accounts,
            created_at_ms: self.ledger().now_ms(),
        };
        let command = Command::with_documents(
            Command::NoOp,
            vec![write_doc(KIND_PRODUCT, &product.product_id, 0, &product)?],
        );
        match self
            .ledger()
            .submit_request(key.clone(), &fingerprint, command)
            .await
        {
            Ok(_) => {}
            // Registered at the same moment by another request: judge it as above.
            Err(LedgerError::DocumentConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let (stored, _) = self
            .load::<Product>(KIND_PRODUCT, &r.product_id)
            .await?
            .ok_or_else(|| YieldError::corrupt(KIND_PRODUCT))?;
        if !same_definition(&stored, &r, self.inner.fast_cap) {
            let exists = YieldError::ProductExists {
                product: r.product_id.clone(),
            };
            self.claim(key, &fingerprint, exists).await?;
        }
        self.product(&stored.product_id).await
    }

    /// Changes a product's status (operator): OPEN ⇄ SUBSCRIPTION_SUSPENDED, either → CLOSED;
    /// a closed product stays closed. The status it has already is an idempotent success.
    pub async fn set_product_status(
        &self,
        caller: &Caller,
        request_id: RequestId,
        product_id: &str,
        status: ProductStatus,
        reason: &str,
    ) -> Result<ProductView, YieldError> {
        crate::text::check_free_text(reason, false, PRODUCT_TEXT_LEN_MAX).map_err(|refusal| {
            YieldError::Text {
                field: "reason",
                refusal,
            }
        })?;
        let fingerprint = format!("set_product_status|{product_id}|{status:?}|{reason}");
        let key = request_id.key(&caller.name);
        // A retry answers the first answer before the product's status is judged again (the
        // first request's own change, or a later one, may have made it final since).
        if let Some(answer) = self.ledger().answered_request(&key, &fingerprint).await? {
            answer.map_err(YieldError::from_ledger)?;
            return self.product_as_set(product_id, status).await;
        }
        for attempt in 0.. {
            let Some((mut product, version)) =
                self.load::<Product>(KIND_PRODUCT, product_id).await?
            else {
                let missing = YieldError::ProductNotFound {
                    product: product_id.to_owned(),
                };
                self.claim(key, &fingerprint, missing).await?;
                return self.product_as_set(product_id, status).await;
            };
            let command = if product.status == status {
                Command::NoOp
            } else if product.status == ProductStatus::Closed {
                let closed = YieldError::ProductNotOpen {
                    product: product.product_id,
                    status: ProductStatus::Closed.as_str(),
                };
                self.claim(key, &fingerprint, closed).await?;
                return self.product_as_set(product_id, status).await;
            } else {
                product.status = status;
                Command::with_documents(
                    Command::NoOp,
                    vec![write_doc(KIND_PRODUCT, product_id, version, &product)?],
                )
            };
            match self
                .ledger()
                .submit_request(key.clone(), &fingerprint, command)
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        product = product_id,
                        status = status.as_str(),
                        reason,
                        "product status set"
                    );
                    return self.product_as_set(product_id, status).await;
                }
                Err(LedgerError::DocumentConflict { .. })
                    if attempt < super::CONFLICT_RETRIES_MAX => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(YieldError::corrupt("product status retries"))
    }

    /// A product as a successful status change left it: the status it set, whatever changed
    /// it since (the definition is immutable; the rates are read as they stand).
    async fn product_as_set(
        &self,
        product_id: &str,
        status: ProductStatus,
    ) -> Result<ProductView, YieldError> {
        let mut view = self.product(product_id).await?;
        view.product.status = status;
        Ok(view)
    }

    fn check_register(&self, r: &RegisterProduct) -> Result<(), YieldError> {
        check_product_id(&r.product_id)?;
        for (field, text, required) in [
            ("name", &r.name, true),
            ("fund_code", &r.fund_code, false),
            ("fund_manager", &r.fund_manager, false),
        ] {
            crate::text::check_free_text(text, required, PRODUCT_TEXT_LEN_MAX)
                .map_err(|refusal| YieldError::Text { field, refusal })?;
        }
        let currency = self.currency();
        for (field, m) in [
            ("min_subscription", Some(r.min_subscription)),
            ("fast_redeem_daily_cap", r.fast_redeem_daily_cap),
        ] {
            if let Some(m) = m
                && m.currency != currency
            {
                return Err(YieldError::invalid(field, format!("must be in {currency}")));
            }
        }
        Ok(())
    }

    /// Registers a product of the configuration, unless it exists.
    pub(super) async fn register_configured(&self, p: &ProductConfig) -> Result<(), YieldError> {
        if self
            .load::<Product>(KIND_PRODUCT, &p.product_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let currency = self.currency();
        let money = |field: &'static str, text: &str| {
            Money::parse(currency, text, Sign::Positive)
                .map_err(|e| YieldError::invalid(field, e.to_string()))
        };
        let request_id = RequestId::try_from(format!("config-product-{}", p.product_id))
            .map_err(|e| YieldError::invalid("yields.products.product_id", e.to_string()))?;
        let caller = Caller {
            name: SYSTEM_SCOPE.to_owned(),
            scope: crate::config::AccountScope::All,
        };
        let register = RegisterProduct {
            request_id,
            product_id: p.product_id.clone(),
            name: p.name.clone(),
            fund_code: p.fund_code.clone(),
            fund_manager: p.fund_manager.clone(),
            status: ProductStatus::Open,
            min_subscription: money("yields.products.min_subscription", &p.min_subscription)?,
            fast_redeem_daily_cap: p
                .fast_redeem_daily_cap
                .as_deref()
                .map(|c| money("yields.products.fast_redeem_daily_cap", c))
                .transpose()?,
        };
        self.register_product(&caller, register).await.map(|_| ())
    }

    async fn product_accounts(&self, product: &str) -> Result<ProductAccounts, YieldError> {
        let ledger = self.ledger();
        let c = self.currency();
        Ok(ProductAccounts {
            settlement: internal_account(ledger, c, &format!("yield/{product}/settlement")).await?,
            income: internal_account(ledger, c, &format!("yield/{product}/income")).await?,
            rounding: internal_account(ledger, c, &format!("yield/{product}/rounding")).await?,
        })
    }

    /// A product document, or `ProductNotFound`.
    pub(super) async fn product_doc(&self, product: &str) -> Result<Product, YieldError> {
        self.load::<Product>(KIND_PRODUCT, product)
            .await?
            .map(|(p, _)| p)
            .ok_or_else(|| YieldError::ProductNotFound {
                product: product.to_owned(),
            })
    }

    /// A product with its latest rate and the last 7 published.
    pub async fn product(&self, product: &str) -> Result<ProductView, YieldError> {
        let product = self.product_doc(product).await?;
        let recent = self.recent_rates(&product.product_id).await?;
        let latest = super::rates::rate_view(&recent);
        Ok(ProductView {
            product,
            latest,
            recent,
        })
    }

    /// Products in id order; the page token is the last id of the previous page.
    pub async fn list_products(
        &self,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<ProductView>, YieldError> {
        let limit = self.page_size(page_size)?;
        if !page_token.is_empty() {
            check_product_id(page_token).map_err(|_| YieldError::InvalidPageToken)?;
        }
        let docs = self
            .ledger()
            .documents_after(KIND_PRODUCT, page_token, limit)
            .await?;
        let mut items = Vec::with_capacity(docs.len());
        for doc in &docs {
            items.push(self.product(&doc.id).await?);
        }
        let next_page_token = if docs.len() == limit as usize {
            docs.last().map(|d| d.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }
}

fn same_definition(p: &Product, r: &RegisterProduct, default_cap: crate::money::Money) -> bool {
    p.name == r.name
        && p.fund_code == r.fund_code
        && p.fund_manager == r.fund_manager
        && p.status == r.status
        && p.min_subscription == r.min_subscription
        && p.fast_redeem_daily_cap == r.fast_redeem_daily_cap.unwrap_or(default_cap)
}

/// 1..=32 ASCII letters, digits, `-` or `_`.
pub fn check_product_id(id: &str) -> Result<(), YieldError> {
    if id.is_empty()
        || id.len() > PRODUCT_ID_LEN_MAX
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(YieldError::invalid(
            "product_id",
            format!("1..={PRODUCT_ID_LEN_MAX} letters, digits, '-' or '_'"),
        ));
    }
    Ok(())
}
