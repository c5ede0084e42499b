//! Card refunds whose network declines or never answers. The on-us client always succeeds, so
//! these run the services in-process over a real ledger, on both back ends, with a scripted
//! clearing client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{Backend, db::FreshDatabase};
use paygate::{
    account::{AccountKind, AccountService, Caller, OpenAccount, PersonIdentity},
    cashier::{
        CashierService, CreateOrder, PayOrder, PayWith, RefundOrder, RegisterMerchant,
        model::{EventType, MerchantType, Method, OrderStatus, Product, RefundStatus, Scenario},
    },
    clearing::{
        CardDirection, CardInstruction, ClearingClient, ClearingError, ClearingOutcome, Network,
        Outcome, QueryOutcome, ReconFile, ReconPeriod, RefundInstruction, ReversalOutcome,
    },
    config::{AccountScope, Config},
    ledger::{AccountId, Ledger, RequestId, verify},
    money::{Currency, Money, Sign},
    secrets::Secrets,
    storage,
    yields::YieldService,
};

/// Pulls from cards always succeed; pushes to cards answer what the test scripted.
struct ScriptedNetwork {
    credit_outcome: Mutex<ClearingOutcome>,
}

#[async_trait]
impl ClearingClient for ScriptedNetwork {
    fn network(&self) -> Network {
        Network::ON_US
    }

    async fn submit(&self, instruction: &CardInstruction) -> Outcome {
        match instruction.direction {
            CardDirection::DebitCard => Outcome::Succeeded {
                network_reference: format!("T-{}", instruction.reference),
            },
            CardDirection::CreditCard => self.scripted(),
        }
    }

    async fn query(&self, _reference: &str) -> QueryOutcome {
        match self.scripted() {
            Outcome::Unknown => QueryOutcome::Unknown,
            outcome => QueryOutcome::Found {
                outcome,
                reversed: false,
            },
        }
    }

    async fn reverse(&self, _reference: &str) -> ReversalOutcome {
        ReversalOutcome::Reversed
    }

    async fn refund(&self, _refund: &RefundInstruction) -> Outcome {
        self.scripted()
    }

    async fn reconciliation_file(&self, period: &ReconPeriod) -> Result<ReconFile, ClearingError> {
        Err(ClearingError::Refused(format!(
            "the scripted network has no file for {}",
            period.as_text()
        )))
    }
}

impl ScriptedNetwork {
    /// The scripted answer to a push to a card, as the network would give it.
    fn scripted(&self) -> Outcome {
        match self.credit_outcome.lock().expect("script").clone() {
            ClearingOutcome::Succeeded { network_reference } => {
                Outcome::Succeeded { network_reference }
            }
            ClearingOutcome::Failed { reason } => Outcome::Failed {
                code: String::new(),
                reason,
            },
            ClearingOutcome::Unknown => Outcome::Unknown,
        }
    }
}

struct World {
    _database: FreshDatabase,
    ledger: Ledger,
    accounts: AccountService,
    cashier: CashierService,
    bank: Caller,
    merchant_account: AccountId,
    merchant_id: String,
    agreement: String,
    payer: AccountId,
}

async fn world(backend: Backend, credit_outcome: ClearingOutcome) -> World {
    let database = FreshDatabase::new(backend).await;
    let mut config = Config::default();
    config.database.url = database.url.clone();
    let storage = storage::connect(&config.database).await.expect("storage");
    let ledger = Ledger::start(
        storage.clone(),
        &config.ledger,
        paygate::clock::Clock::system(),
    )
    .await
    .expect("ledger");
    let network = Arc::new(ScriptedNetwork {
        credit_outcome: Mutex::new(credit_outcome),
    });
    let accounts = AccountService::start(
        ledger.clone(),
        Arc::new(paygate::clearing::routing::Clearing::only(network)),
        Secrets::from_secret(&[9u8; 32]),
        &config.accounts,
    )
    .await
    .expect("accounts");
    let yields = YieldService::start(ledger.clone(), accounts.clone(), &config.yields)
        .await
        .expect("yields");
    let credit =
        paygate::credit::CreditService::start(ledger.clone(), accounts.clone(), &config.credit)
            .expect("credit");
    let cashier = CashierService::start(
        accounts.clone(),
        ledger.clone(),
        yields,
        credit,
        &config.cashier,
    )
    .expect("cashier");
    let bank = Caller {
        name: "core-banking".to_owned(),
        scope: AccountScope::All,
    };
    let open = |request_id: &str, kind, owner: &str| OpenAccount {
        request_id: request_id.try_into().expect("request id"),
        kind,
        currency: None,
        owner_id: owner.to_owned(),
        identity: None,
        card_number: None,
        parent: None,
        display_name: owner.to_owned(),
    };
    let shop = accounts
        .open(
            &bank,
            open("open-shop", AccountKind::MerchantSettlement, "m-1"),
        )
        .await
        .expect("merchant account");
    let mut person = open("open-payer", AccountKind::ClassIi, "c-1");
    person.identity = Some(PersonIdentity {
        full_name: "Li Si".to_owned(),
        document_type: Some(paygate::account::IdDocumentType::ResidentIdCard),
        document_number: "11010519491231002X".to_owned(),
    });
    person.card_number = Some("6222021234567890128".to_owned());
    let payer = accounts.open(&bank, person).await.expect("payer");
    let merchant = cashier
        .register_merchant(
            &bank,
            RegisterMerchant {
                request_id: rid("register"),
                name: "Card Shop".to_owned(),
                merchant_type: MerchantType::Normal,
                service_provider_id: String::new(),
                settlement_account_id: shop.id,
                products: vec![Product {
                    method: Method::BoundCard,
                    scenario: Scenario::App,
                    fee_rate: "0.0100".parse().expect("fee rate"),
                }],
                allowed_callers: vec!["core-banking".to_owned()],
            },
        )
        .await
        .expect("merchant");
    World {
        _database: database,
        ledger,
        accounts,
        cashier,
        bank,
        merchant_account: shop.id,
        merchant_id: merchant.merchant_id,
        agreement: payer
            .bound_card
            .as_ref()
            .expect("bound card")
            .agreement_id
            .clone(),
        payer: payer.id,
    }
}

fn cny(amount: &str) -> Money {
    let currency = Currency::from_code("CNY").expect("CNY");
    Money::parse(currency, amount, Sign::Positive).expect("amount")
}

fn rid(text: &str) -> RequestId {
    RequestId::try_from(text).expect("request id")
}

/// An order of 100.00 paid by bound-card quick pay (the merchant receives 99.00 after the fee).
async fn paid_order(w: &World) -> String {
    let order = w
        .cashier
        .create_order(
            &w.bank,
            CreateOrder {
                request_id: rid("order"),
                merchant_id: w.merchant_id.clone(),
                merchant_order_no: "CARD-1".to_owned(),
                amount: cny("100.00"),
                subject: "shoes".to_owned(),
                scenario: Scenario::App,
                expires_at_ms: None,
            },
        )
        .await
        .expect("order");
    let paid = w
        .cashier
        .pay(
            &w.bank,
            PayOrder {
                request_id: rid("pay"),
                order_id: order.order_id.clone(),
                payer_account_id: w.payer,
                with: PayWith::BoundCard {
                    agreement_id: w.agreement.clone(),
                },
            },
        )
        .await
        .expect("paid by card");
    assert_eq!(paid.status, OrderStatus::Succeeded);
    order.order_id
}

async fn merchant_book(w: &World) -> String {
    w.accounts
        .balance(&w.bank, w.merchant_account)
        .await
        .expect("balance")
        .book
        .to_decimal_string()
}

async fn event_types(w: &World) -> Vec<EventType> {
    let mut events = w
        .cashier
        .subscribe(&w.bank, &w.merchant_id, false, "")
        .await
        .expect("subscribe");
    let mut types = Vec::new();
    while let Ok(Some(next)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), events.recv()).await
    {
        types.push(next.expect("event").event.event_type);
    }
    types
}

fn refund(order_id: &str, amount: &str) -> RefundOrder {
    RefundOrder {
        request_id: rid("refund"),
        order_id: order_id.to_owned(),
        merchant_refund_no: String::new(),
        amount: cny(amount),
        reason: "returned".to_owned(),
    }
}

both_backends!(a_card_refund_the_network_declines_fails_and_gives_the_merchant_its_money_back);
async fn a_card_refund_the_network_declines_fails_and_gives_the_merchant_its_money_back(
    backend: Backend,
) {
    let w = world(
        backend,
        ClearingOutcome::Failed {
            reason: "card closed".to_owned(),
        },
    )
    .await;
    let order_id = paid_order(&w).await;
    let before = merchant_book(&w).await;

    let refunded = w
        .cashier
        .refund(&w.bank, refund(&order_id, "40.00"))
        .await
        .expect("answered");
    let after = merchant_book(&w).await;
    let again = w
        .cashier
        .refund(&w.bank, refund(&order_id, "40.00"))
        .await
        .expect("a replay answers the first outcome");

    assert_eq!(refunded.status, RefundStatus::Failed);
    assert_eq!(refunded.failure_reason, "card closed");
    assert_eq!(again.status, RefundStatus::Failed);
    assert_eq!(before, "99.00");
    assert_eq!(
        after, "99.00",
        "the declined refund is returned to the merchant"
    );
    assert_eq!(
        event_types(&w).await,
        [
            EventType::OrderCreated,
            EventType::PaymentProcessing,
            EventType::PaymentSucceeded,
            EventType::RefundProcessing,
            EventType::RefundFailed
        ]
    );
    let report = verify(w.ledger.store().as_ref()).await.expect("verify");
    assert!(report.is_clean(), "{report}");
}

both_backends!(a_card_refund_the_network_never_answers_stays_processing_with_the_funds_in_suspense);
async fn a_card_refund_the_network_never_answers_stays_processing_with_the_funds_in_suspense(
    backend: Backend,
) {
    let w = world(backend, ClearingOutcome::Unknown).await;
    let order_id = paid_order(&w).await;

    let refunded = w
        .cashier
        .refund(&w.bank, refund(&order_id, "40.00"))
        .await
        .expect("answered");
    let after = merchant_book(&w).await;

    assert_eq!(refunded.status, RefundStatus::Processing);
    assert_eq!(refunded.completed_at_ms, None);
    assert_eq!(
        after, "59.00",
        "the merchant has paid; the card suspense owes the card"
    );
    assert_eq!(
        event_types(&w).await,
        [
            EventType::OrderCreated,
            EventType::PaymentProcessing,
            EventType::PaymentSucceeded,
            EventType::RefundProcessing
        ]
    );
    let report = verify(w.ledger.store().as_ref()).await.expect("verify");
    assert!(report.is_clean(), "{report}");
}
