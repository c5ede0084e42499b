//! Merchant-presented QR codes: a dynamic code names an order; a static code names a merchant,
//! and paying it creates the order and pays it in one step.

use super::*;

impl CashierService {
    pub(in crate::cashier) async fn pay_merchant_qr(
        &self,
        caller: &Caller,
        req: &PayOrder,
        qr: MerchantQrPay<'_>,
        print: String,
        replaying: Replaying,
    ) -> Result<Order, CashierError> {
        match QrTarget::parse(qr.payload) {
            Some(QrTarget::Order(order_id)) => {
                self.pay_dynamic_qr(caller, req, order_id, qr, print, replaying)
                    .await
            }
            Some(QrTarget::Merchant(merchant_id)) => {
                self.pay_static_qr(caller, req, merchant_id, qr, print)
                    .await
            }
            None => Err(CashierError::invalid(
                "merchant_qr.qr_payload",
                "not a QR payload of this bank",
            )),
        }
    }

    /// A dynamic code: pays the order it names, for the order's amount.
    async fn pay_dynamic_qr(
        &self,
        caller: &Caller,
        req: &PayOrder,
        order_id: &str,
        qr: MerchantQrPay<'_>,
        print: String,
        replaying: Replaying,
    ) -> Result<Order, CashierError> {
        if !req.order_id.is_empty() && req.order_id != order_id {
            return Err(CashierError::invalid(
                "order_id",
                "differs from the order the QR payload names",
            ));
        }
        if qr.amount.is_some() {
            return Err(CashierError::invalid(
                "merchant_qr.amount",
                "only for static merchant codes",
            ));
        }
        let (order, version) = self.payable_order(order_id, replaying).await?;
        let (merchant, _) = self.merchant_checked(&order.merchant_id).await?;
        let payer = self.payer(caller, req.payer_account_id, &order).await?;
        self.charge(Charge {
            caller,
            request_id: &req.request_id,
            fingerprint: print,
            merchant: &merchant,
            order,
            order_version: version,
            payer: &payer,
            method: Method::MerchantQr,
            barcode: Some(Barcode::Dynamic(qr.risk)),
            created_now: false,
            extra: Vec::new(),
            funding: None,
            credit: None,
        })
        .await
    }

    /// A static merchant code: the payer enters the amount; the order is created and paid in
    /// one step.
    async fn pay_static_qr(
        &self,
        caller: &Caller,
        req: &PayOrder,
        merchant_id: &str,
        qr: MerchantQrPay<'_>,
        print: String,
    ) -> Result<Order, CashierError> {
        let amount = qr.amount.ok_or_else(|| {
            CashierError::invalid("merchant_qr.amount", "required for a static code")
        })?;
        let amount = self.in_currency(amount)?;
        let (merchant, _) = self.merchant_checked(merchant_id).await?;
        let order = self.new_paid_order(
            &merchant,
            &derive_id("O", &caller.name, &req.request_id),
            &format!("QR{}", derive_id("", &caller.name, &req.request_id)),
            amount,
            "static QR payment",
            Scenario::Pos,
        );
        let payer = self.payer(caller, req.payer_account_id, &order).await?;
        let extra = vec![write_doc(
            KIND_ORDER_NO,
            &no_key(&merchant.merchant_id, &order.merchant_order_no),
            0,
            &order.order_id,
        )?];
        self.charge(Charge {
            caller,
            request_id: &req.request_id,
            fingerprint: print,
            merchant: &merchant,
            order,
            order_version: 0,
            payer: &payer,
            method: Method::MerchantQr,
            barcode: Some(Barcode::Static),
            created_now: true,
            extra,
            funding: None,
            credit: None,
        })
        .await
    }
}
