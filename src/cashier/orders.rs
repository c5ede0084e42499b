//! CreateOrder, GetOrder and CloseOrder.

use super::*;

impl CashierService {
    /// Creates an order. A refusal met before the batch from state (no such merchant) claims
    /// the request id like the batch's own.
    pub async fn create_order(
        &self,
        caller: &Caller,
        req: CreateOrder,
    ) -> Result<Order, CashierError> {
        let key = req.request_id.key(&caller.name);
        let print = fingerprint("CreateOrder", &req);
        let order_id = derive_id("O", &caller.name, &req.request_id);
        match self
            .create_order_once(caller, &req, &order_id, key.clone(), &print)
            .await
        {
            Err(e) => {
                let (_, observed) = self.claim(key, &print, e).await?;
                self.replayed_order(&order_id, observed.as_ref()).await
            }
            ok => ok,
        }
    }

    async fn create_order_once(
        &self,
        caller: &Caller,
        req: &CreateOrder,
        order_id: &str,
        key: IdempotencyKey,
        print: &str,
    ) -> Result<Order, CashierError> {
        let (merchant, _) = self.merchant_doc(&req.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        check_no("merchant_order_no", &req.merchant_order_no)?;
        check_text("subject", &req.subject, true)?;
        let scenario = req.scenario;
        let amount = self.in_currency(req.amount)?;
        let now = self.now_ms();
        let expires_at_ms = self.expiry_of(req.expires_at_ms, now)?;
        let qr_payload = if merchant.product(Method::MerchantQr, scenario).is_some() {
            QrTarget::Order(order_id).payload()
        } else {
            String::new()
        };
        let order = Order {
            order_id: order_id.to_owned(),
            merchant_id: merchant.merchant_id.clone(),
            merchant_order_no: req.merchant_order_no.clone(),
            currency: amount.currency.code().to_owned(),
            amount_minor: amount.minor,
            subject: req.subject.clone(),
            scenario,
            status: OrderStatus::Created,
            cashier_token: hex::encode(&Sha256::digest(format!("cashier\0{order_id}"))[..16]),
            qr_payload,
            payment: None,
            refunded_minor: 0,
            close_reason: String::new(),
            created_at_ms: now,
            expires_at_ms,
            paid_at_ms: None,
            closed_at_ms: None,
            event_sequence: 1,
        };
        let command = new_order_command(&order)?;
        let (_, observed) = self
            .submit_observed(key, print.to_owned(), command, &[])
            .await
            .map_err(|e| self.conflict_is(e, "order"))?;
        self.replayed_order(order_id, observed.as_ref()).await
    }

    /// When an order expires: the default ahead of `now`, or the caller's time if it is in the
    /// future and not too far.
    fn expiry_of(&self, asked_ms: Option<i64>, now: i64) -> Result<i64, CashierError> {
        let config = &self.inner.config;
        match asked_ms {
            None => Ok(now.saturating_add(ms(config.order_expiry_default_ms))),
            Some(at) if at <= now => Err(CashierError::invalid(
                "expire_time",
                "must be in the future",
            )),
            Some(at) if at - now > ms(config.order_expiry_max_ms) => Err(CashierError::invalid(
                "expire_time",
                format!("at most {} ms ahead", config.order_expiry_max_ms),
            )),
            Some(at) => Ok(at),
        }
    }

    pub async fn order(&self, caller: &Caller, key: OrderKey) -> Result<Order, CashierError> {
        let id = match key {
            OrderKey::Id(id) => id,
            OrderKey::MerchantNo { merchant_id, no } => {
                let (merchant, _) = self.merchant_doc(&merchant_id).await?;
                self.check_merchant(caller, &merchant).await?;
                self.load::<String>(KIND_ORDER_NO, &no_key(&merchant_id, &no))
                    .await?
                    .map(|(id, _)| id)
                    .ok_or(CashierError::OrderNotFound { order: no })?
            }
        };
        let (order, _) = self.order_doc(&id).await?;
        let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(order.as_of(self.now_ms()))
    }

    pub async fn close_order(
        &self,
        caller: &Caller,
        req: CloseOrder,
    ) -> Result<Order, CashierError> {
        let CloseOrder {
            request_id,
            order_id,
            reason,
        } = &req;
        check_text("reason", reason, false)?;
        let key = request_id.key(&caller.name);
        let print = fingerprint("CloseOrder", &(request_id, order_id, reason));
        // A refusal met before the batch from state (no such order or merchant, an order
        // closed or paid) claims the request id like the batch's own.
        match self
            .close_order_once(caller, &req, key.clone(), &print)
            .await
        {
            Err(e) => {
                let (_, observed) = self.claim(key, &print, e).await?;
                self.replayed_order(order_id, observed.as_ref()).await
            }
            ok => ok,
        }
    }

    async fn close_order_once(
        &self,
        caller: &Caller,
        req: &CloseOrder,
        key: IdempotencyKey,
        print: &str,
    ) -> Result<Order, CashierError> {
        let CloseOrder {
            request_id: _,
            order_id,
            reason,
        } = req;
        let (stored, version) = self.order_doc(order_id).await?;
        let (merchant, _) = self.merchant_doc(&stored.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        // A retry of a close that went through answers the order as that close left it.
        if let Some(observed) = self.first_success(&key, print).await? {
            return self.replayed_order(order_id, observed.as_ref()).await;
        }
        let now = self.now_ms();
        let mut order = stored.clone().as_of(now);
        match order.status {
            OrderStatus::Created => {
                order.status = OrderStatus::Closed;
                order.close_reason = reason.clone();
                order.closed_at_ms = Some(now);
            }
            // Expired unpaid: record the close it already is.
            OrderStatus::Closed if stored.status == OrderStatus::Created => {}
            OrderStatus::Closed => {
                return Err(CashierError::OrderClosed {
                    order: order_id.clone(),
                });
            }
            OrderStatus::Processing | OrderStatus::Succeeded | OrderStatus::Failed => {
                return Err(CashierError::OrderAlreadyPaid {
                    order: order_id.clone(),
                });
            }
        }
        order.event_sequence += 1;
        let event = event_of(&order, EventType::OrderClosed, None, now)?;
        let command = guarded(
            Command::NoOp,
            Vec::new(),
            vec![write_doc(KIND_ORDER, order_id, version, &order)?],
            vec![event],
        );
        let (_, observed) = self
            .submit_observed(key, print.to_owned(), command, &[])
            .await
            .map_err(|e| self.conflict_is(e, "order"))?;
        self.replayed_order(order_id, observed.as_ref()).await
    }
}

/// A new order's command: the order, its number and its expiry-queue entry, with its
/// ORDER_CREATED event.
fn new_order_command(order: &Order) -> Result<Command, CashierError> {
    let order_id = &order.order_id;
    let event = event_of(order, EventType::OrderCreated, None, order.created_at_ms)?;
    Ok(guarded(
        Command::NoOp,
        Vec::new(),
        vec![
            write_doc(KIND_ORDER, order_id, 0, order)?,
            write_doc(
                KIND_ORDER_NO,
                &no_key(&order.merchant_id, &order.merchant_order_no),
                0,
                order_id,
            )?,
            write_doc(
                KIND_ORDER_EXPIRY,
                &expiry_key(order.expires_at_ms, order_id),
                0,
                order_id,
            )?,
        ],
        vec![event],
    ))
}
