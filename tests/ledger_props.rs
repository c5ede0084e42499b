//! Property tests over random operation sequences, on both back ends: every transaction
//! balances; the sum of all balances per currency stays zero; no constrained account goes below
//! its floor; each balance equals the sum of its entries; replaying any request with its key
//! changes nothing. `PAYGATE_PROPTEST_CASES` raises the case count (default 12 per back end).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ledger::*;
use paygate::ledger::{
    AccountId, AccountStatus, Balance, Command, HoldId, IdempotencyKey, Ledger, LedgerError,
    Metadata, NewHold, NewPending, Outcome, PendingId, Side, TransactionId, verify,
};
use proptest::{prelude::*, test_runner::TestRunner};

const CUSTOMERS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        minor: i64,
    },
    Split {
        from: usize,
        to1: usize,
        to2: usize,
        m1: i64,
        m2: i64,
    },
    Linked {
        a: usize,
        b: usize,
        c: usize,
        minor: i64,
    },
    CreatePending {
        from: usize,
        to: usize,
        minor: i64,
    },
    PostPending {
        pick: usize,
        part: Option<i64>,
    },
    VoidPending {
        pick: usize,
    },
    PlaceHold {
        account: usize,
        minor: i64,
    },
    ReleaseHold {
        pick: usize,
    },
    CaptureHold {
        pick: usize,
        minor: i64,
        to: usize,
    },
    Reverse {
        pick: usize,
    },
    Freeze {
        account: usize,
        no_debit: bool,
        no_credit: bool,
    },
    Replay {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let acct = 0..CUSTOMERS;
    let amount = 1i64..2_000;
    prop_oneof![
        4 => (acct.clone(), acct.clone(), amount.clone())
            .prop_map(|(from, to, minor)| Op::Transfer { from, to, minor }),
        1 => (acct.clone(), acct.clone(), acct.clone(), amount.clone(), amount.clone())
            .prop_map(|(from, to1, to2, m1, m2)| Op::Split { from, to1, to2, m1, m2 }),
        1 => (acct.clone(), acct.clone(), acct.clone(), amount.clone())
            .prop_map(|(a, b, c, minor)| Op::Linked { a, b, c, minor }),
        2 => (acct.clone(), acct.clone(), amount.clone())
            .prop_map(|(from, to, minor)| Op::CreatePending { from, to, minor }),
        2 => (any::<usize>(), proptest::option::of(1i64..2_000))
            .prop_map(|(pick, part)| Op::PostPending { pick, part }),
        1 => any::<usize>().prop_map(|pick| Op::VoidPending { pick }),
        2 => (acct.clone(), amount.clone())
            .prop_map(|(account, minor)| Op::PlaceHold { account, minor }),
        1 => any::<usize>().prop_map(|pick| Op::ReleaseHold { pick }),
        1 => (any::<usize>(), amount.clone(), acct.clone())
            .prop_map(|(pick, minor, to)| Op::CaptureHold { pick, minor, to }),
        1 => any::<usize>().prop_map(|pick| Op::Reverse { pick }),
        1 => (acct.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(account, no_debit, no_credit)| Op::Freeze { account, no_debit, no_credit }),
        2 => any::<usize>().prop_map(|pick| Op::Replay { pick }),
    ]
}

struct Case {
    ledger: Ledger,
    source: AccountId,
    customers: Vec<AccountId>,
    pendings: Vec<PendingId>,
    holds: Vec<HoldId>,
    transactions: Vec<TransactionId>,
    /// Every request sent, with its first answer.
    history: Vec<(IdempotencyKey, Command, Result<Outcome, LedgerError>)>,
}

impl Case {
    async fn send(&mut self, command: Command) -> Result<Outcome, LedgerError> {
        let k = key();
        let answer = self.ledger.submit(k.clone(), command.clone()).await;
        if let Ok(outcome) = &answer {
            let posted: Vec<_> = match outcome {
                Outcome::Posted(p) => vec![p.clone()],
                Outcome::Linked(ps) => ps.clone(),
                Outcome::Pending(p) => {
                    self.pendings.push(p.id);
                    vec![]
                }
                Outcome::Hold(h) => {
                    self.holds.push(h.id);
                    vec![]
                }
                _ => vec![],
            };
            for p in posted {
                // Every transaction balances per currency.
                let net: i128 = p
                    .entries
                    .iter()
                    .map(|e| match e.side {
                        Side::Debit => i128::from(e.amount.minor),
                        Side::Credit => -i128::from(e.amount.minor),
                    })
                    .sum();
                assert_eq!(net, 0, "transaction {} does not balance", p.id);
                self.transactions.push(p.id);
            }
        }
        assert!(
            !matches!(answer, Err(LedgerError::Storage)),
            "storage failed on {command:?}"
        );
        self.history.push((k, command, answer.clone()));
        answer
    }

    async fn balances(&self) -> Vec<Balance> {
        let mut out = Vec::new();
        for id in std::iter::once(&self.source).chain(&self.customers) {
            out.push(self.ledger.account(*id).await.unwrap().1);
        }
        out
    }
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()])
}

async fn run_case(ledger: &Ledger, ops: Vec<Op>, overdrafts: Vec<i64>) {
    let source = internal(ledger).await;
    let mut customers = Vec::new();
    for o in &overdrafts {
        let c = customer(ledger, *o).await;
        fund(ledger, source, c, 3_000).await;
        customers.push(c);
    }
    let ids = customers.clone();
    let c = |i: usize| ids[i];
    let mut case = Case {
        ledger: ledger.clone(),
        source,
        customers,
        pendings: vec![],
        holds: vec![],
        transactions: vec![],
        history: vec![],
    };
    for op in ops {
        let command = match op {
            Op::Transfer { from, to, minor } => Command::Post(transfer(c(from), c(to), minor)),
            Op::Split {
                from,
                to1,
                to2,
                m1,
                m2,
            } => Command::Post(tx(vec![
                leg(c(from), Side::Debit, m1 + m2),
                leg(c(to1), Side::Credit, m1),
                leg(c(to2), Side::Credit, m2),
            ])),
            Op::Linked { a, b, c: cc, minor } => Command::PostLinked {
                transactions: vec![transfer(c(a), c(b), minor), transfer(c(b), c(cc), minor)],
            },
            Op::CreatePending { from, to, minor } => Command::CreatePending(NewPending {
                debit_account: c(from),
                credit_account: c(to),
                amount: cny(minor),
                timeout_ms: 600_000,
                metadata: Metadata::new(),
                counters: vec![],
            }),
            Op::PostPending { pick: i, part } => match pick(&case.pendings, i) {
                Some(p) => Command::PostPending {
                    pending: p,
                    amount: part.map(cny),
                },
                None => continue,
            },
            Op::VoidPending { pick: i } => match pick(&case.pendings, i) {
                Some(p) => Command::VoidPending { pending: p },
                None => continue,
            },
            Op::PlaceHold { account, minor } => Command::PlaceHold(NewHold {
                account: c(account),
                amount: cny(minor),
                timeout_ms: None,
                metadata: Metadata::new(),
            }),
            Op::ReleaseHold { pick: i } => match pick(&case.holds, i) {
                Some(h) => Command::ReleaseHold { hold: h },
                None => continue,
            },
            Op::CaptureHold { pick: i, minor, to } => match pick(&case.holds, i) {
                Some(h) => Command::CaptureHold {
                    hold: h,
                    amount: cny(minor),
                    to: c(to),
                    metadata: Metadata::new(),
                },
                None => continue,
            },
            Op::Reverse { pick: i } => match pick(&case.transactions, i) {
                Some(t) => Command::Reverse {
                    transaction: t,
                    reason: "property test".into(),
                },
                None => continue,
            },
            Op::Freeze {
                account,
                no_debit,
                no_credit,
            } => Command::SetAccountStatus {
                account: c(account),
                status: AccountStatus::Frozen {
                    no_debit,
                    no_credit,
                },
            },
            Op::Replay { pick: i } => {
                if case.history.is_empty() {
                    continue;
                }
                let (k, command, first) = case.history[i % case.history.len()].clone();
                let before = case.balances().await;
                let again = ledger.submit(k, command).await;
                assert_eq!(again, first, "a replay answers the first answer");
                assert_eq!(case.balances().await, before, "a replay changes nothing");
                continue;
            }
        };
        let _ = case.send(command).await;
        // No constrained account ever goes below its floor.
        for id in &case.customers {
            let (a, b) = ledger.account(*id).await.unwrap();
            let headroom = b.headroom_minor(a.constraint).unwrap();
            assert!(headroom >= 0, "account {id} below its floor: {b:?}");
        }
    }
    // The case's accounts only trade among themselves: their net is zero.
    let balances = case.balances().await;
    let net: i128 = balances
        .iter()
        .map(|b| i128::from(b.posted_debits_minor) - i128::from(b.posted_credits_minor))
        .sum();
    assert_eq!(net, 0);
    // Each balance equals the sum of its entries (and the last running balance).
    for id in std::iter::once(&case.source).chain(&case.customers) {
        let (a, b) = ledger.account(*id).await.unwrap();
        let mut after = None;
        let mut sum = 0i128;
        loop {
            let lines = ledger.entries(*id, after, 1_000).await.unwrap();
            let Some(last) = lines.last() else { break };
            after = Some(last.transaction.0);
            for l in &lines {
                let signed = i128::from(l.amount.minor);
                sum += match (l.side, a.normal_side) {
                    (Side::Debit, Side::Debit) | (Side::Credit, Side::Credit) => signed,
                    _ => -signed,
                };
                assert_eq!(i128::from(l.balance_after.minor), sum);
            }
        }
        assert_eq!(sum, b.posted_minor(a.normal_side));
    }
    // Replaying every request changes nothing and answers the same.
    let before = case.balances().await;
    for (k, command, first) in case.history.clone() {
        assert_eq!(ledger.submit(k, command).await, first);
    }
    assert_eq!(case.balances().await, before);
    // Chain, balances from entries, sums per currency: the whole ledger.
    let report = verify(ledger.store().as_ref()).await.unwrap();
    assert!(report.is_clean(), "{report}");
}

fn run_properties(backend: Backend) {
    let cases: u32 = std::env::var("PAYGATE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TestDb::new(backend));
    let ledger = rt.block_on(start(&db));
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::collection::vec(op(), 1..40),
        proptest::collection::vec(0i64..1_000, CUSTOMERS),
    );
    let result = runner.run(&strategy, |(ops, overdrafts)| {
        rt.block_on(run_case(&ledger, ops, overdrafts));
        Ok(())
    });
    rt.block_on(async {
        ledger.shutdown().await;
        db.cleanup().await;
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_operation_sequences_keep_the_invariants_on_sqlite() {
    run_properties(Backend::Sqlite);
}

#[test]
fn random_operation_sequences_keep_the_invariants_on_postgres() {
    let available = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(postgres_available());
    if available {
        run_properties(Backend::Postgres);
    }
}
