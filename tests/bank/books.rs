//! The bank test's books: the total at a read, and every operation against the statements, the
//! balances and the orders at the end.

use std::collections::{HashMap, HashSet};

use super::*;

/// The balance views of every account that counts, in [`World::books`] order.
async fn balances(world: &World, conn: &mut Conn) -> Vec<(String, pb::Balance)> {
    let mut out = Vec::new();
    for id in world.books() {
        let req = pb::GetBalanceRequest {
            account_id: id.clone(),
        };
        match send!(conn, world, true, accounts.get_balance(req)) {
            Reply::Answered(a) => out.push((id, a.balance.expect("balance"))),
            other => panic!("balance of {id}: {other:?}"),
        }
    }
    out
}

/// The total of the books is the top-ups, and no account is negative (book or available).
pub(super) async fn check_total(world: &World, conn: &mut Conn) {
    let mut total = 0;
    for (id, b) in balances(world, conn).await {
        let (book, available) = (amount_of(b.book.clone()), amount_of(b.available.clone()));
        assert!(
            book >= 0 && available >= 0,
            "account {id} is negative: {b:?}"
        );
        total += book;
    }
    assert_eq!(
        total,
        TOP_UP_MINOR * CUSTOMERS as i64,
        "the customers, the merchants and the fees hold what was topped up"
    );
}

/// Every statement line of `id`.
async fn statement(world: &World, conn: &mut Conn, id: &str) -> Vec<pb::Entry> {
    let (mut entries, mut token) = (Vec::new(), String::new());
    loop {
        let req = pb::ListEntriesRequest {
            account_id: id.to_owned(),
            page_size: 500,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = match send!(conn, world, true, accounts.list_entries(req)) {
            Reply::Answered(page) => page,
            other => panic!("statement of {id}: {other:?}"),
        };
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return entries;
        }
        token = page.next_page_token;
    }
}

async fn order(world: &World, conn: &mut Conn, id: &str) -> pb::Order {
    let req = pb::GetOrderRequest {
        lookup: Some(pb::get_order_request::Lookup::OrderId(id.to_owned())),
    };
    match send!(conn, world, true, cashier.get_order(req)) {
        Reply::Answered(a) => a.order.expect("order"),
        other => panic!("order {id}: {other:?}"),
    }
}

/// What the statements say: lines per (account, transaction), and the (account, transaction)
/// of the lines of each memo.
struct Statements {
    lines: HashMap<(String, String), usize>,
    by_memo: HashMap<String, Vec<(String, String)>>,
    /// Every line: (account, transaction, entry type).
    all: Vec<(String, String, i32)>,
}

async fn statements(world: &World, conn: &mut Conn) -> Statements {
    let mut s = Statements {
        lines: HashMap::new(),
        by_memo: HashMap::new(),
        all: Vec::new(),
    };
    for id in world.books() {
        for e in statement(world, conn, &id).await {
            *s.lines
                .entry((id.clone(), e.transaction_id.clone()))
                .or_default() += 1;
            s.by_memo
                .entry(e.memo.clone())
                .or_default()
                .push((id.clone(), e.transaction_id.clone()));
            s.all.push((id.clone(), e.transaction_id, e.entry_type));
        }
    }
    s
}

/// Checks everything at the end; returns how many unknown transfers turned out to be present.
pub(super) async fn check_end(world: &World, conn: &mut Conn, ended: &[Client]) -> usize {
    check_total(world, conn).await;
    let s = statements(world, conn).await;
    let mut expected: HashMap<String, i64> = world.books().into_iter().map(|a| (a, 0)).collect();
    for c in &world.customers {
        expected.insert(c.clone(), TOP_UP_MINOR);
    }
    let mut known: HashSet<String> = HashSet::new();
    let mut present = 0;
    let mut unpaid = Vec::new();
    for r in ended.iter().flat_map(|c| &c.records) {
        let memo = r
            .transfer
            .as_ref()
            .map(|t| t.memo.clone())
            .unwrap_or_default();
        let lines = s.by_memo.get(&memo).map_or(0, Vec::len);
        let moves = match &r.outcome {
            Outcome::Acked { tx, moves } => {
                if !tx.is_empty() {
                    assert!(known.insert(tx.clone()), "{r:?}: its transaction twice");
                }
                for (account, _) in moves.iter().filter(|(_, c)| *c != 0) {
                    let key = (account.clone(), tx.clone());
                    assert_eq!(s.lines.get(&key), Some(&1), "{r:?} on {account}");
                }
                if r.kind == Kind::Transfer {
                    assert_eq!(lines, 2, "{r:?}: its two lines");
                }
                moves.clone()
            }
            Outcome::Refused => {
                if r.kind == Kind::Transfer {
                    assert_eq!(lines, 0, "refused yet posted: {r:?}");
                }
                if r.kind == Kind::Payment {
                    unpaid.push(r.order.clone().expect("order"));
                }
                Vec::new()
            }
            Outcome::Unknown => {
                let t = r.transfer.as_ref().expect("only transfers go unknown");
                if lines == 0 {
                    continue;
                }
                assert_eq!(lines, 2, "an unknown transfer at most once: {r:?}");
                let sides = &s.by_memo[&memo];
                assert_eq!(sides[0].1, sides[1].1, "{r:?}: one transaction");
                assert!(known.insert(sides[0].1.clone()), "{r:?}");
                present += 1;
                let fen = amount_of(t.amount.clone());
                vec![
                    (t.from_account_id.clone(), -fen),
                    (t.to_account_id.clone(), fen),
                ]
            }
        };
        for (account, change) in moves {
            *expected.get_mut(&account).expect("a counted account") += change;
        }
    }
    // Nothing else is on any statement but each customer's one top-up.
    let mut top_ups: HashMap<&str, usize> = HashMap::new();
    for (account, tx, kind) in &s.all {
        if *kind == pb::EntryType::TopUp as i32 {
            *top_ups.entry(account).or_default() += 1;
        } else {
            assert!(
                known.contains(tx),
                "{account}: a line of no operation: {tx}"
            );
        }
    }
    assert_eq!(top_ups.len(), CUSTOMERS);
    assert!(top_ups.values().all(|n| *n == 1), "one top-up each");

    // Each balance is what the operations present moved; held, the open holds.
    let mut held: HashMap<&str, i64> = HashMap::new();
    for (_, account, fen) in ended.iter().flat_map(|c| &c.holds) {
        *held.entry(account).or_default() += fen;
    }
    for (id, b) in balances(world, conn).await {
        assert_eq!(amount_of(b.book), expected[&id], "book balance of {id}");
        let on_hold = held.get(id.as_str()).copied().unwrap_or(0);
        assert_eq!(amount_of(b.held), on_hold, "held on {id}");
    }
    // A refused payment left its order unpaid; each order refunded what its refunds said.
    for id in &unpaid {
        let o = order(world, conn, id).await;
        assert_eq!(o.status, pb::OrderStatus::Created as i32, "{o:?}");
        assert!(o.payment.is_none(), "{o:?}");
    }
    for (id, _, _, fen, refunded) in ended.iter().flat_map(|c| &c.paid) {
        let o = order(world, conn, id).await;
        assert_eq!(o.status, pb::OrderStatus::Succeeded as i32, "{o:?}");
        assert_eq!(amount_of(o.amount), *fen, "{id}");
        assert_eq!(amount_of(o.refunded_amount), *refunded, "refunded of {id}");
    }
    replay(world, conn, ended).await;
    present
}

/// Transfers answered or refused answer the same when sent again.
async fn replay(world: &World, conn: &mut Conn, ended: &[Client]) {
    let sent = ended
        .iter()
        .flat_map(|c| &c.records)
        .filter(|r| r.kind == Kind::Transfer && !matches!(r.outcome, Outcome::Unknown));
    for r in sent.take(REPLAYS_MAX) {
        let req = r.transfer.clone().expect("transfer");
        match (&r.outcome, send!(conn, world, true, accounts.transfer(req))) {
            (Outcome::Acked { tx, .. }, Reply::Answered(again)) => {
                assert_eq!(&again.transaction_id, tx, "{r:?}");
            }
            (Outcome::Refused, Reply::Refused(_)) => {}
            (_, again) => panic!("{r:?} answered {again:?} when sent again"),
        }
    }
}
