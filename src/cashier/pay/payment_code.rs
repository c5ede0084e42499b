//! Consumer-presented payment codes (付款码): IssuePaymentCode and ScanPay.

use super::*;

impl CashierService {
    /// Issues a payment code to a payer. A payer not found (or unable to pay) claims the
    /// request id like the batch's refusals; a replay answers the code first issued.
    pub async fn issue_payment_code(
        &self,
        caller: &Caller,
        req: IssuePaymentCode,
    ) -> Result<PaymentCode, CashierError> {
        let IssuePaymentCode {
            request_id,
            payer_account_id: payer_id,
            factors,
        } = &req;
        let key = request_id.key(&caller.name);
        // Fingerprinted as the wire tuple it was: (request id, account id text, factors).
        let print = fingerprint(
            "IssuePaymentCode",
            &(request_id, payer_id.to_string(), factors),
        );
        let checked = match self.inner.accounts.facts_in_scope(caller, *payer_id).await {
            Ok(payer) => check_payer(&payer),
            Err(e) => Err(e.into()),
        };
        let request_key = format!("{}/{request_id}", caller.name);
        match checked {
            Ok(()) => self.issue_code(&req, &request_key, key, print).await?,
            Err(e) => {
                self.claim(key, &print, e).await?;
            }
        }
        // A replay answers with the code the first request issued.
        let (code, _) = self
            .load::<String>(KIND_CODE_REQUEST, &request_key)
            .await?
            .ok_or(CashierError::PaymentCodeInvalid)?;
        let (doc, _) = self
            .load::<PaymentCode>(KIND_PAYMENT_CODE, &code)
            .await?
            .ok_or(CashierError::PaymentCodeInvalid)?;
        Ok(doc)
    }

    /// Writes a new code for a payer that passed the checks, under the request's key.
    /// `request_key` names the request's code record (caller and request id).
    async fn issue_code(
        &self,
        req: &IssuePaymentCode,
        request_key: &str,
        key: IdempotencyKey,
        print: String,
    ) -> Result<(), CashierError> {
        let IssuePaymentCode {
            request_id: _,
            payer_account_id: payer_id,
            factors,
        } = req;
        let payer_id = *payer_id;
        let now = self.now_ms();
        // 18 digits, as wallets render them: "28" and 16 random digits.
        let code = format!("28{:016}", rand::random::<u64>() % 10_000_000_000_000_000);
        let doc = PaymentCode {
            code: code.clone(),
            payer_account_id: payer_id.0,
            risk_level: RiskLevel::from_factors(factors),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ms(self.inner.config.payment_code_ttl_ms)),
            used_by_order: None,
        };
        let command = guarded(
            Command::NoOp,
            Vec::new(),
            vec![
                write_doc(KIND_PAYMENT_CODE, &code, 0, &doc)?,
                write_doc(KIND_CODE_REQUEST, request_key, 0, &code)?,
            ],
            Vec::new(),
        );
        self.submit(key, print, command, &[])
            .await
            .map_err(|e| self.conflict_is(e, "payment code"))?;
        Ok(())
    }

    /// A merchant scans a payer's code (付款码). A refusal met before the batch from state (no
    /// such merchant, a code used, expired or unknown) claims the request id like the batch's
    /// own.
    pub async fn scan_pay(&self, caller: &Caller, req: ScanPay) -> Result<Order, CashierError> {
        let key = req.request_id.key(&caller.name);
        let print = fingerprint("ScanPay", &req);
        let order_id = derive_id("O", &caller.name, &req.request_id);
        match self
            .scan_pay_once(caller, &req, &order_id, &key, &print)
            .await
        {
            Err(e) => {
                let (_, observed) = self.claim(key, &print, e).await?;
                self.replayed_order(&order_id, observed.as_ref()).await
            }
            ok => ok,
        }
    }

    async fn scan_pay_once(
        &self,
        caller: &Caller,
        req: &ScanPay,
        order_id: &str,
        key: &IdempotencyKey,
        print: &str,
    ) -> Result<Order, CashierError> {
        let (merchant, _) = self.merchant_checked(&req.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        check_no("merchant_order_no", &req.merchant_order_no)?;
        check_text("subject", &req.subject, true)?;
        if req.scenario != Scenario::Pos {
            return Err(CashierError::invalid("scenario", "must be POS"));
        }
        let amount = self.in_currency(req.amount)?;
        check_payment_code(&req.payment_code)?;
        let (mut code, code_version) = self
            .load::<PaymentCode>(KIND_PAYMENT_CODE, &req.payment_code)
            .await?
            .ok_or(CashierError::PaymentCodeInvalid)?;
        if let Some(used_by) = &code.used_by_order {
            if *used_by == order_id {
                // This very request already paid with it: answer as the first time.
                let first = self.first_success(key, print).await?;
                return self
                    .replayed_order(order_id, first.flatten().as_ref())
                    .await;
            }
            return Err(CashierError::PaymentCodeUsed);
        }
        if self.now_ms() >= code.expires_at_ms {
            return Err(CashierError::PaymentCodeExpired);
        }
        let payer_id = AccountId(code.payer_account_id);
        let payer = self.inner.accounts.facts(payer_id).await?;
        check_payer(&payer)?;
        let mut order = self.new_paid_order(
            &merchant,
            order_id,
            &req.merchant_order_no,
            amount,
            &req.subject,
            Scenario::Pos,
        );
        order.qr_payload.clear();
        code.used_by_order = Some(order_id.to_owned());
        let extra = vec![
            write_doc(
                KIND_ORDER_NO,
                &no_key(&merchant.merchant_id, &req.merchant_order_no),
                0,
                &order_id,
            )?,
            write_doc(KIND_PAYMENT_CODE, &req.payment_code, code_version, &code)?,
        ];
        self.charge(Charge {
            caller,
            request_id: &req.request_id,
            fingerprint: print.to_owned(),
            merchant: &merchant,
            order,
            order_version: 0,
            payer: &payer,
            method: Method::PaymentCode,
            barcode: Some(Barcode::Dynamic(code.risk_level)),
            created_now: true,
            extra,
            funding: None,
            credit: None,
        })
        .await
    }
}
