//! What a batch must load before its commands can be applied.

use super::command::{BatchItem, Command};
use crate::ledger::{model::CounterCheck, store::BatchNeeds};

/// What a batch must load for these commands.
pub fn needs_of<'a>(items: impl IntoIterator<Item = &'a BatchItem>) -> BatchNeeds {
    let mut n = BatchNeeds::default();
    for item in items {
        if let Some(k) = &item.key {
            n.idempotency.insert(k.clone());
        }
        command_needs(&mut n, &item.command);
        // What the request observes (bounded when it was submitted).
        n.accounts.extend(item.observe.accounts.iter().copied());
        n.counters.extend(item.observe.counters.iter().cloned());
    }
    n
}

fn command_needs(n: &mut BatchNeeds, command: &Command) {
    let counters = |n: &mut BatchNeeds, cs: &[CounterCheck]| {
        for c in cs {
            n.counters.insert(c.key.clone());
        }
    };
    {
        match command {
            Command::CreateAccount(_) => {}
            Command::Post(t) => {
                n.accounts.extend(t.entries.iter().map(|e| e.account));
                counters(n, &t.counters);
            }
            Command::PostLinked { transactions } => {
                for t in transactions {
                    n.accounts.extend(t.entries.iter().map(|e| e.account));
                    counters(n, &t.counters);
                }
            }
            Command::CreatePending(p) => {
                n.accounts.insert(p.debit_account);
                n.accounts.insert(p.credit_account);
                counters(n, &p.counters);
            }
            Command::PostPending { pending, .. }
            | Command::VoidPending { pending }
            | Command::ExpirePending { pending } => {
                n.pendings.insert(*pending);
            }
            Command::PlaceHold(h) => {
                n.accounts.insert(h.account);
            }
            Command::ReleaseHold { hold } | Command::ExpireHold { hold } => {
                n.holds.insert(*hold);
            }
            Command::CaptureHold { hold, to, .. } => {
                n.holds.insert(*hold);
                n.accounts.insert(*to);
            }
            Command::Reverse { transaction, .. } => {
                n.transactions.insert(*transaction);
            }
            Command::SetAccountStatus { account, .. } | Command::ChangeFreeze { account, .. } => {
                n.accounts.insert(*account);
            }
            Command::Guarded {
                inner,
                counters: checks,
                releases,
                caps,
                documents,
                events: _,
            } => {
                command_needs(n, inner);
                counters(n, checks);
                n.counters.extend(releases.iter().map(|r| r.key.clone()));
                n.accounts.extend(caps.iter().map(|c| c.account));
                n.documents
                    .extend(documents.iter().map(|d| (d.kind.clone(), d.id.clone())));
            }
            Command::NoOp | Command::Refuse(_) => {}
        }
    }
}
