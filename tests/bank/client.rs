//! The bank test's clients: each loops over transfers, payments, refunds and holds until told
//! to stop, recording every request's outcome.

use super::*;

/// An order a client paid: (order, payer, merchant index, amount, acknowledged refunds).
pub(super) type Paid = (String, String, usize, i64, i64);

pub(super) struct Client {
    pub(super) n: usize,
    pub(super) world: Arc<World>,
    pub(super) bank: Conn,
    pub(super) shop: Conn,
    pub(super) seq: u64,
    pub(super) records: Vec<Record>,
    /// Holds placed and not resolved: (hold, account, amount).
    pub(super) holds: Vec<(String, String, i64)>,
    pub(super) paid: Vec<Paid>,
}

impl Client {
    fn rid(&mut self) -> String {
        self.seq += 1;
        format!("bank-{}-{}", self.n, self.seq)
    }

    pub(super) fn new(n: usize, world: Arc<World>) -> Client {
        Client {
            n,
            bank: Conn::new(world.bank_tls.clone()),
            shop: Conn::new(world.shop_tls.clone()),
            world,
            seq: 0,
            records: Vec::new(),
            holds: Vec::new(),
            paid: Vec::new(),
        }
    }

    pub(super) async fn run(mut self) -> Client {
        let world = self.world.clone();
        while !world.stop.load(Ordering::Relaxed) {
            let _open = world.gate.read().await;
            match rand::random_range(0..100) {
                0..40 => self.transfer(false).await,
                40..50 => self.transfer(true).await,
                75..85 if self.paid.iter().any(|p| p.4 < p.3) => self.refund().await,
                50..85 => self.payment().await,
                _ if !self.holds.is_empty() && rand::random_bool(0.5) => self.resolve().await,
                _ => self.place_hold().await,
            }
        }
        self
    }

    /// A customer pays a hot account (4 in 5) or another customer; a payout goes from a hot
    /// account to a customer.
    async fn transfer(&mut self, payout: bool) {
        let w = self.world.clone();
        let (from, to, fen) = if payout {
            let amount = rand::random_range(100..20_000);
            (pick(&w.hot), pick(&w.customers), amount)
        } else {
            let from = pick(&w.customers);
            let mut to = pick(if rand::random_bool(0.8) {
                &w.hot
            } else {
                &w.customers
            });
            while to == from {
                to = pick(&w.customers);
            }
            (from, to, rand::random_range(1..5_000))
        };
        let rid = self.rid();
        let req = pb::TransferRequest {
            request_id: rid.clone(),
            from_account_id: from.clone(),
            to_account_id: to.clone(),
            amount: money(fen),
            memo: rid,
        };
        let patient = !rand::random_bool(0.25);
        let outcome = match send!(self.bank, w, patient, accounts.transfer(req)) {
            Reply::Answered(a) => Outcome::Acked {
                tx: a.transaction_id,
                moves: vec![(from, -fen), (to, fen)],
            },
            Reply::Refused(_) => Outcome::Refused,
            Reply::Unknown => Outcome::Unknown,
        };
        self.push(Kind::Transfer, outcome, Some(req), None);
    }

    fn push(
        &mut self,
        kind: Kind,
        outcome: Outcome,
        transfer: Option<pb::TransferRequest>,
        order: Option<String>,
    ) {
        self.records.push(Record {
            kind,
            outcome,
            transfer,
            order,
        });
    }

    /// A hot merchant's order, paid from a customer's balance.
    async fn payment(&mut self) {
        let w = self.world.clone();
        let m = rand::random_range(0..HOT);
        let payer = pick(&w.customers);
        let fen = rand::random_range(1..5_000);
        let rid = self.rid();
        let create = pb::CreateOrderRequest {
            request_id: format!("{rid}-order"),
            merchant_id: w.merchants[m].clone(),
            merchant_order_no: rid.clone(),
            amount: money(fen),
            subject: "bank test".to_owned(),
            scenario: pb::Scenario::App as i32,
            expire_time: None,
        };
        let order = match send!(self.shop, w, true, cashier.create_order(create)) {
            Reply::Answered(a) => a.order.expect("order").order_id,
            other => panic!("order not created: {other:?}"),
        };
        let pay = pb::PayRequest {
            request_id: rid,
            order_id: order.clone(),
            payer_account_id: payer.clone(),
            method: Some(pb::pay_request::Method::Balance(pb::BalancePayment {})),
        };
        let outcome = match send!(self.bank, w, true, cashier.pay(pay)) {
            Reply::Answered(a) => {
                let o = a.order.expect("order");
                assert_eq!(o.status, pb::OrderStatus::Succeeded as i32, "{o:?}");
                let p = o.payment.expect("payment");
                let (fee, net) = (amount_of(p.fee), amount_of(p.net_amount));
                assert_eq!(fee + net, fen);
                self.paid.push((order.clone(), payer.clone(), m, fen, 0));
                let moves = vec![
                    (payer, -fen),
                    (w.hot[m].clone(), net),
                    (w.fee_income.clone(), fee),
                ];
                Outcome::Acked {
                    tx: p.transaction_id,
                    moves,
                }
            }
            Reply::Refused(_) => Outcome::Refused,
            Reply::Unknown => unreachable!("a patient client waits"),
        };
        self.push(Kind::Payment, outcome, None, Some(order));
    }

    /// Part or all of what is left of one of this client's paid orders, back to the payer.
    async fn refund(&mut self) {
        let w = self.world.clone();
        let open: Vec<usize> = (0..self.paid.len())
            .filter(|&i| self.paid[i].4 < self.paid[i].3)
            .collect();
        let i = *open.choose(&mut rand::rng()).expect("a refundable order");
        let (order, payer, m, fen, refunded) = self.paid[i].clone();
        let amount = rand::random_range(1..=fen - refunded);
        let req = pb::RefundRequest {
            request_id: self.rid(),
            order_id: order.clone(),
            merchant_refund_no: String::new(),
            amount: money(amount),
            reason: "returned".to_owned(),
        };
        let outcome = match send!(self.shop, w, true, cashier.refund(req)) {
            Reply::Answered(a) => {
                let r = a.refund.expect("refund");
                assert_eq!(r.status, pb::RefundStatus::Succeeded as i32, "{r:?}");
                self.paid[i].4 += amount;
                Outcome::Acked {
                    tx: r.transaction_id,
                    moves: vec![(w.hot[m].clone(), -amount), (payer, amount)],
                }
            }
            Reply::Refused(_) => Outcome::Refused,
            Reply::Unknown => unreachable!("a patient client waits"),
        };
        self.push(Kind::Refund, outcome, None, Some(order));
    }

    /// A pre-authorisation on a customer's balance.
    async fn place_hold(&mut self) {
        let w = self.world.clone();
        let account = pick(&w.customers);
        let fen = rand::random_range(1..3_000);
        let req = pb::PlaceHoldRequest {
            request_id: self.rid(),
            account_id: account.clone(),
            amount: money(fen),
            kind: pb::HoldKind::PreAuthorization as i32,
            reason: "bank test".to_owned(),
            external_reference: String::new(),
            expire_time: None,
        };
        let outcome = match send!(self.bank, w, true, accounts.place_hold(req)) {
            Reply::Answered(a) => {
                self.holds
                    .push((a.hold.expect("hold").hold_id, account, fen));
                Outcome::Acked {
                    tx: String::new(),
                    moves: Vec::new(),
                }
            }
            Reply::Refused(_) => Outcome::Refused,
            Reply::Unknown => unreachable!("a patient client waits"),
        };
        self.push(Kind::PlaceHold, outcome, None, None);
    }

    /// One of this client's holds released, or captured in full into a hot account.
    async fn resolve(&mut self) {
        let w = self.world.clone();
        let i = rand::random_range(0..self.holds.len());
        let (hold, account, fen) = self.holds.swap_remove(i);
        let request_id = self.rid();
        let (kind, reply) = if rand::random_bool(0.5) {
            let to = pick(&w.hot);
            let req = pb::CaptureHoldRequest {
                request_id,
                hold_id: hold.clone(),
                amount: None,
                to_account_id: to.clone(),
                memo: "captured".to_owned(),
            };
            let reply = match send!(self.bank, w, true, accounts.capture_hold(req)) {
                Reply::Answered(a) => {
                    Reply::Answered((a.transaction_id, vec![(account.clone(), -fen), (to, fen)]))
                }
                Reply::Refused(s) => Reply::Refused(s),
                Reply::Unknown => Reply::Unknown,
            };
            (Kind::CaptureHold, reply)
        } else {
            let req = pb::ReleaseHoldRequest {
                request_id,
                hold_id: hold.clone(),
                reason: "released".to_owned(),
            };
            let reply = match send!(self.bank, w, true, accounts.release_hold(req)) {
                Reply::Answered(_) => Reply::Answered((String::new(), Vec::new())),
                Reply::Refused(s) => Reply::Refused(s),
                Reply::Unknown => Reply::Unknown,
            };
            (Kind::ReleaseHold, reply)
        };
        let outcome = match reply {
            Reply::Answered((tx, moves)) => Outcome::Acked { tx, moves },
            Reply::Refused(_) => {
                self.holds.push((hold, account, fen));
                Outcome::Refused
            }
            Reply::Unknown => unreachable!("a patient client waits"),
        };
        self.push(kind, outcome, None, None);
    }
}
