//! Class and barcode limit checks of a payment, and the headroom they leave.

use super::*;

impl CashierService {
    /// Class and barcode limit checks of one payment.
    pub(in crate::cashier) fn limit_checks(
        &self,
        payer: &AccountFacts,
        amount_minor: i64,
        barcode: Option<Barcode>,
    ) -> Vec<LimitCheck> {
        let date = self.inner.accounts.today();
        let mut checks =
            self.inner
                .accounts
                .rules()
                .outflow_checks(payer.kind, payer.id, amount_minor, date);
        if let Some(barcode) = barcode {
            let (rule, limit_minor) = self.barcode_rule(barcode);
            let period = date.to_string();
            checks.push(LimitCheck {
                rule,
                window: LimitWindow::Day,
                counter: CounterCheck {
                    key: counter_key(rule, LimitWindow::Day, payer.id, &period),
                    amount_minor,
                    cap_minor: limit_minor,
                },
                period,
                limit_minor,
            });
        }
        checks
    }

    pub(in crate::cashier) fn barcode_rule(&self, barcode: Barcode) -> (LimitRule, i64) {
        let l = &self.inner.limits;
        match barcode {
            Barcode::Static => (LimitRule::BarcodeStaticCode, l.static_day_minor),
            Barcode::Dynamic(RiskLevel::A) => (LimitRule::BarcodeDynamicA, l.dynamic_a_day_minor),
            Barcode::Dynamic(RiskLevel::B) => (LimitRule::BarcodeDynamicB, l.dynamic_b_day_minor),
            Barcode::Dynamic(RiskLevel::C) => (LimitRule::BarcodeDynamicC, l.dynamic_c_day_minor),
        }
    }

    /// What the payer's class limits still allow today.
    pub(in crate::cashier) async fn outflow_headroom(
        &self,
        payer: &AccountFacts,
    ) -> Result<i64, CashierError> {
        let checks = self.limit_checks(payer, 0, None);
        self.headroom_of(&checks).await
    }

    pub(in crate::cashier) async fn barcode_headroom(
        &self,
        payer: &AccountFacts,
        risk: RiskLevel,
    ) -> Result<i64, CashierError> {
        let checks = self.limit_checks(payer, 0, Some(Barcode::Dynamic(risk)));
        self.headroom_of(&checks).await
    }

    pub(in crate::cashier) async fn headroom_of(
        &self,
        checks: &[LimitCheck],
    ) -> Result<i64, CashierError> {
        let keys: Vec<String> = checks.iter().map(|c| c.counter.key.clone()).collect();
        let used: std::collections::BTreeMap<String, i64> = self
            .inner
            .ledger
            .counter_values(&keys)
            .await?
            .into_iter()
            .collect();
        Ok(checks
            .iter()
            .map(|c| c.limit_minor - used.get(&c.counter.key).copied().unwrap_or(0))
            .min()
            .unwrap_or(i64::MAX))
    }
}
