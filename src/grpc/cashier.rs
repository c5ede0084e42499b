//! `paygate.v1.CashierService`: thin handlers — convert the request, call the cashier service,
//! convert the answer. Errors go through the one mapping in [`crate::grpc::status`].

use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::closing::{BoxStream, Closing};
use crate::{
    cashier::{
        AuthFactor, BusinessClass, CashierError, CashierService, CloseOrder, CreateOrder, Event,
        EventType, IssuePaymentCode, MerchantType, Method, MethodOption, OrderKey, OrderStatus,
        PayOrder, RefundKey, RefundOrder, RefundStatus, RegisterMerchant, RiskLevel, ScanPay,
        Scenario,
    },
    grpc::{
        account::{caller_of, money_pb, network_pb, timestamp},
        pb,
    },
    money::{Currency, Money},
};

mod requests;

use requests::account_id;

/// Most methods one ListPaymentMethods page returns (there are only a handful).
const METHODS_PAGE_MAX: usize = 16;

/// The gRPC face of the cashier.
#[derive(Clone)]
pub struct CashierApi {
    service: CashierService,
    /// Ends the streams when the gateway shuts down.
    closing: Closing,
}

impl CashierApi {
    pub fn new(service: CashierService, closing: Closing) -> CashierApi {
        CashierApi { service, closing }
    }
}

type EventStream = BoxStream<pb::SubscribeEventsResponse>;

#[tonic::async_trait]
impl pb::cashier_service_server::CashierService for CashierApi {
    async fn register_merchant(
        &self,
        request: Request<pb::RegisterMerchantRequest>,
    ) -> Result<Response<pb::RegisterMerchantResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = RegisterMerchant::try_from(request.into_inner())?;
        let merchant = self.service.register_merchant(&caller, req).await?;
        Ok(Response::new(pb::RegisterMerchantResponse {
            merchant: Some(merchant_pb(&merchant)),
        }))
    }

    async fn get_merchant(
        &self,
        request: Request<pb::GetMerchantRequest>,
    ) -> Result<Response<pb::GetMerchantResponse>, Status> {
        let caller = caller_of(&request)?;
        let merchant = self
            .service
            .merchant(&caller, &request.get_ref().merchant_id)
            .await?;
        Ok(Response::new(pb::GetMerchantResponse {
            merchant: Some(merchant_pb(&merchant)),
        }))
    }

    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::CreateOrderResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = CreateOrder::try_from(request.into_inner())?;
        let order = self.service.create_order(&caller, req).await?;
        Ok(Response::new(pb::CreateOrderResponse {
            order: Some(order_pb(&order)),
        }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let caller = caller_of(&request)?;
        let key = match request.into_inner().lookup {
            Some(pb::get_order_request::Lookup::OrderId(id)) => OrderKey::Id(id),
            Some(pb::get_order_request::Lookup::MerchantOrder(m)) => OrderKey::MerchantNo {
                merchant_id: m.merchant_id,
                no: m.merchant_order_no,
            },
            None => {
                return Err(CashierError::invalid("lookup", "order_id or merchant_order").into());
            }
        };
        let order = self.service.order(&caller, key).await?;
        Ok(Response::new(pb::GetOrderResponse {
            order: Some(order_pb(&order)),
        }))
    }

    async fn close_order(
        &self,
        request: Request<pb::CloseOrderRequest>,
    ) -> Result<Response<pb::CloseOrderResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = CloseOrder::try_from(request.into_inner())?;
        let order = self.service.close_order(&caller, req).await?;
        Ok(Response::new(pb::CloseOrderResponse {
            order: Some(order_pb(&order)),
        }))
    }

    async fn list_payment_methods(
        &self,
        request: Request<pb::ListPaymentMethodsRequest>,
    ) -> Result<Response<pb::ListPaymentMethodsResponse>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        if r.page_size < 0 {
            return Err(CashierError::invalid("page_size", "must not be negative").into());
        }
        // Every method fits one page: no token is ever issued, so none is valid.
        if !r.page_token.is_empty() {
            return Err(Status::from(crate::account::AccountError::InvalidPageToken));
        }
        let payer = account_id("payer_account_id", &r.payer_account_id)?;
        let options = self
            .service
            .payment_methods(&caller, &r.order_id, payer)
            .await?;
        Ok(Response::new(pb::ListPaymentMethodsResponse {
            methods: options
                .iter()
                .take(METHODS_PAGE_MAX)
                .map(option_pb)
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn pay(
        &self,
        request: Request<pb::PayRequest>,
    ) -> Result<Response<pb::PayResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = PayOrder::try_from(request.into_inner())?;
        let order = self.service.pay(&caller, req).await?;
        Ok(Response::new(pb::PayResponse {
            order: Some(order_pb(&order)),
        }))
    }

    async fn issue_payment_code(
        &self,
        request: Request<pb::IssuePaymentCodeRequest>,
    ) -> Result<Response<pb::IssuePaymentCodeResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = IssuePaymentCode::try_from(request.into_inner())?;
        let code = self.service.issue_payment_code(&caller, req).await?;
        Ok(Response::new(pb::IssuePaymentCodeResponse {
            payment_code: Some(pb::PaymentCode {
                code: code.code,
                payer_account_id: code.payer_account_id.to_string(),
                risk_level: risk_pb(code.risk_level) as i32,
                create_time: Some(timestamp(code.created_at_ms)),
                expire_time: Some(timestamp(code.expires_at_ms)),
            }),
        }))
    }

    async fn scan_pay(
        &self,
        request: Request<pb::ScanPayRequest>,
    ) -> Result<Response<pb::ScanPayResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = ScanPay::try_from(request.into_inner())?;
        let order = self.service.scan_pay(&caller, req).await?;
        Ok(Response::new(pb::ScanPayResponse {
            order: Some(order_pb(&order)),
        }))
    }

    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::RefundResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = RefundOrder::try_from(request.into_inner())?;
        let refund = self.service.refund(&caller, req).await?;
        Ok(Response::new(pb::RefundResponse {
            refund: Some(refund_pb(&refund)),
        }))
    }

    async fn get_refund(
        &self,
        request: Request<pb::GetRefundRequest>,
    ) -> Result<Response<pb::GetRefundResponse>, Status> {
        let caller = caller_of(&request)?;
        let key = match request.into_inner().lookup {
            Some(pb::get_refund_request::Lookup::RefundId(id)) => RefundKey::Id(id),
            Some(pb::get_refund_request::Lookup::MerchantRefund(m)) => RefundKey::MerchantNo {
                merchant_id: m.merchant_id,
                no: m.merchant_refund_no,
            },
            None => {
                return Err(CashierError::invalid("lookup", "refund_id or merchant_refund").into());
            }
        };
        let refund = self.service.get_refund(&caller, key).await?;
        Ok(Response::new(pb::GetRefundResponse {
            refund: Some(refund_pb(&refund)),
        }))
    }

    async fn subscribe_events(
        &self,
        request: Request<pb::SubscribeEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = caller_of(&request)?;
        let r = request.into_inner();
        let events = self
            .service
            .subscribe(&caller, &r.merchant_id, r.include_sub_merchants, &r.cursor)
            .await?;
        let stream = ReceiverStream::new(events).map(|delivered| {
            let delivered = delivered.map_err(Status::from)?;
            Ok(event_pb(&delivered.event, delivered.cursor))
        });
        Ok(Response::new(self.closing.guard(stream)))
    }
}

// ----- conversions ---------------------------------------------------------------------------

fn invalid(field: &'static str, reason: impl Into<String>) -> Status {
    CashierError::invalid(field, reason).into()
}

fn scenario_of(value: i32, field: &'static str) -> Result<Scenario, Status> {
    Ok(match pb::Scenario::try_from(value) {
        Ok(pb::Scenario::App) => Scenario::App,
        Ok(pb::Scenario::H5) => Scenario::H5,
        Ok(pb::Scenario::OfficialAccount) => Scenario::OfficialAccount,
        Ok(pb::Scenario::MiniProgram) => Scenario::MiniProgram,
        Ok(pb::Scenario::PcWeb) => Scenario::PcWeb,
        Ok(pb::Scenario::Pos) => Scenario::Pos,
        Ok(pb::Scenario::Unspecified) | Err(_) => {
            return Err(CashierError::invalid(field, "a scenario is required").into());
        }
    })
}

fn scenario_pb(s: Scenario) -> pb::Scenario {
    match s {
        Scenario::App => pb::Scenario::App,
        Scenario::H5 => pb::Scenario::H5,
        Scenario::OfficialAccount => pb::Scenario::OfficialAccount,
        Scenario::MiniProgram => pb::Scenario::MiniProgram,
        Scenario::PcWeb => pb::Scenario::PcWeb,
        Scenario::Pos => pb::Scenario::Pos,
    }
}

fn method_of(value: i32, field: &'static str) -> Result<Method, Status> {
    Ok(match pb::PaymentMethodType::try_from(value) {
        Ok(pb::PaymentMethodType::Balance) => Method::Balance,
        Ok(pb::PaymentMethodType::YieldBalance) => Method::YieldBalance,
        Ok(pb::PaymentMethodType::BoundCard) => Method::BoundCard,
        Ok(pb::PaymentMethodType::MerchantQr) => Method::MerchantQr,
        Ok(pb::PaymentMethodType::PaymentCode) => Method::PaymentCode,
        Ok(pb::PaymentMethodType::Credit) => Method::Credit,
        Ok(pb::PaymentMethodType::Unspecified) | Err(_) => {
            return Err(CashierError::invalid(field, "a payment method is required").into());
        }
    })
}

fn method_pb(m: Method) -> pb::PaymentMethodType {
    match m {
        Method::Balance => pb::PaymentMethodType::Balance,
        Method::YieldBalance => pb::PaymentMethodType::YieldBalance,
        Method::BoundCard => pb::PaymentMethodType::BoundCard,
        Method::MerchantQr => pb::PaymentMethodType::MerchantQr,
        Method::PaymentCode => pb::PaymentMethodType::PaymentCode,
        Method::Credit => pb::PaymentMethodType::Credit,
    }
}

fn factors_of(values: &[i32]) -> Result<Vec<AuthFactor>, Status> {
    if values.len() > 8 {
        return Err(CashierError::invalid("verified_factors", "at most 8").into());
    }
    values
        .iter()
        .map(|v| {
            Ok(match pb::AuthFactor::try_from(*v) {
                Ok(pb::AuthFactor::Password) => AuthFactor::Password,
                Ok(pb::AuthFactor::SmsOtp) => AuthFactor::SmsOtp,
                Ok(pb::AuthFactor::Biometric) => AuthFactor::Biometric,
                Ok(pb::AuthFactor::Device) => AuthFactor::Device,
                Ok(pb::AuthFactor::DigitalCertificate) => AuthFactor::DigitalCertificate,
                Ok(pb::AuthFactor::ElectronicSignature) => AuthFactor::ElectronicSignature,
                Ok(pb::AuthFactor::Unspecified) | Err(_) => {
                    return Err(Status::from(CashierError::invalid(
                        "verified_factors",
                        "unknown factor",
                    )));
                }
            })
        })
        .collect()
}

fn risk_pb(r: RiskLevel) -> pb::BarcodeRiskLevel {
    match r {
        RiskLevel::A => pb::BarcodeRiskLevel::A,
        RiskLevel::B => pb::BarcodeRiskLevel::B,
        RiskLevel::C => pb::BarcodeRiskLevel::C,
    }
}

fn money(currency: &str, minor: i64) -> pb::Money {
    match Currency::from_code(currency) {
        Ok(c) => money_pb(Money::new(c, minor)),
        Err(_) => pb::Money {
            currency: currency.to_owned(),
            amount: minor.to_string(),
        },
    }
}

fn merchant_pb(m: &crate::cashier::Merchant) -> pb::Merchant {
    pb::Merchant {
        merchant_id: m.merchant_id.clone(),
        name: m.name.clone(),
        merchant_type: match m.merchant_type {
            MerchantType::Normal => pb::MerchantType::Normal,
            MerchantType::ServiceProvider => pb::MerchantType::ServiceProvider,
            MerchantType::SubMerchant => pb::MerchantType::SubMerchant,
        } as i32,
        service_provider_id: m.service_provider_id.clone().unwrap_or_default(),
        settlement_account_id: m.settlement_account_id.to_string(),
        products: m
            .products
            .iter()
            .map(|p| pb::PaymentProduct {
                method: method_pb(p.method) as i32,
                scenario: scenario_pb(p.scenario) as i32,
                fee_rate: p.fee_rate.to_string(),
            })
            .collect(),
        allowed_callers: m.allowed_callers.clone(),
        static_qr_payload: m.static_qr_payload.clone(),
        create_time: Some(timestamp(m.created_at_ms)),
    }
}

fn order_pb(o: &crate::cashier::Order) -> pb::Order {
    let status = match o.status {
        OrderStatus::Created => pb::OrderStatus::Created,
        OrderStatus::Processing => pb::OrderStatus::Processing,
        OrderStatus::Succeeded => pb::OrderStatus::Succeeded,
        OrderStatus::Failed => pb::OrderStatus::Failed,
        OrderStatus::Closed => pb::OrderStatus::Closed,
    };
    pb::Order {
        order_id: o.order_id.clone(),
        merchant_id: o.merchant_id.clone(),
        merchant_order_no: o.merchant_order_no.clone(),
        amount: Some(money(&o.currency, o.amount_minor)),
        subject: o.subject.clone(),
        scenario: scenario_pb(o.scenario) as i32,
        business_class: match o.scenario.business_class() {
            BusinessClass::Online => pb::BusinessClass::Online,
            BusinessClass::Offline => pb::BusinessClass::Offline,
        } as i32,
        status: status as i32,
        cashier_token: o.cashier_token.clone(),
        qr_payload: o.qr_payload.clone(),
        payment: o.payment.as_ref().map(|p| pb::PaymentInfo {
            method: method_pb(p.method) as i32,
            payer_account_id: p.payer_account_id.to_string(),
            masked_card_number: p.masked_card_number.clone(),
            yield_product_id: p
                .yield_funding
                .as_ref()
                .map(|f| f.product_id.clone())
                .unwrap_or_default(),
            fee: Some(money(&o.currency, p.fee_minor)),
            net_amount: Some(money(&o.currency, p.net_minor)),
            network: p
                .network
                .map_or(pb::ClearingNetwork::Unspecified, network_pb) as i32,
            network_reference: p.network_reference.clone(),
            transaction_id: p.transaction_id.clone(),
            risk_level: p
                .risk_level
                .map_or(pb::BarcodeRiskLevel::Unspecified, risk_pb) as i32,
            failure_reason: p.failure_reason.clone(),
            yield_redeemed: p
                .yield_funding
                .as_ref()
                .map(|f| money(&o.currency, f.redeemed_minor)),
            yield_redemption_id: p
                .yield_funding
                .as_ref()
                .map(|f| f.redemption_id.clone())
                .unwrap_or_default(),
            credit_line_id: p
                .credit_funding
                .as_ref()
                .map(|d| d.line_id.clone())
                .unwrap_or_default(),
            credit_drawdown_id: p
                .credit_funding
                .as_ref()
                .map(|d| d.drawdown_id.clone())
                .unwrap_or_default(),
        }),
        refunded_amount: Some(money(&o.currency, o.refunded_minor)),
        close_reason: o.close_reason.clone(),
        create_time: Some(timestamp(o.created_at_ms)),
        expire_time: Some(timestamp(o.expires_at_ms)),
        pay_time: o
            .paid_at_ms
            .filter(|_| o.status == OrderStatus::Succeeded)
            .map(timestamp),
        close_time: o.closed_at_ms.map(timestamp),
    }
}

fn refund_pb(r: &crate::cashier::Refund) -> pb::Refund {
    pb::Refund {
        refund_id: r.refund_id.clone(),
        order_id: r.order_id.clone(),
        merchant_id: r.merchant_id.clone(),
        merchant_refund_no: r.merchant_refund_no.clone(),
        amount: Some(money(&r.currency, r.amount_minor)),
        fee_refunded: Some(money(&r.currency, r.fee_refunded_minor)),
        status: match r.status {
            RefundStatus::Processing => pb::RefundStatus::Processing,
            RefundStatus::Succeeded => pb::RefundStatus::Succeeded,
            RefundStatus::Failed => pb::RefundStatus::Failed,
        } as i32,
        reason: r.reason.clone(),
        failure_reason: r.failure_reason.clone(),
        transaction_id: r.transaction_id.clone(),
        create_time: Some(timestamp(r.created_at_ms)),
        complete_time: r.completed_at_ms.map(timestamp),
    }
}

fn option_pb(o: &MethodOption) -> pb::PaymentMethodOption {
    pb::PaymentMethodOption {
        method: method_pb(o.method) as i32,
        available: o.available,
        unavailable_reason: o.unavailable_reason.clone(),
        unavailable_message: o.unavailable_message.clone(),
        spendable: o.spendable_minor.map(|m| money(&o.currency, m)),
        agreement_id: o.agreement_id.clone(),
        masked_card_number: o.masked_card_number.clone(),
        yield_product_id: o.yield_product_id.clone(),
        credit_line_id: o.credit_line_id.clone(),
    }
}

fn event_pb(e: &Event, cursor: String) -> pb::SubscribeEventsResponse {
    let event_type = match e.event_type {
        EventType::OrderCreated => pb::OrderEventType::OrderCreated,
        EventType::PaymentProcessing => pb::OrderEventType::PaymentProcessing,
        EventType::PaymentSucceeded => pb::OrderEventType::PaymentSucceeded,
        EventType::PaymentFailed => pb::OrderEventType::PaymentFailed,
        EventType::OrderClosed => pb::OrderEventType::OrderClosed,
        EventType::RefundProcessing => pb::OrderEventType::RefundProcessing,
        EventType::RefundSucceeded => pb::OrderEventType::RefundSucceeded,
        EventType::RefundFailed => pb::OrderEventType::RefundFailed,
    };
    pb::SubscribeEventsResponse {
        event_id: e.event_id.clone(),
        cursor,
        order_id: e.order.order_id.clone(),
        merchant_id: e.order.merchant_id.clone(),
        merchant_order_no: e.order.merchant_order_no.clone(),
        event_type: event_type as i32,
        order_sequence: e.order_sequence,
        order: Some(order_pb(&e.order)),
        refund: e.refund.as_ref().map(refund_pb),
        event_time: Some(timestamp(e.event_time_ms)),
    }
}
