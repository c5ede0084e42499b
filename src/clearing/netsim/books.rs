//! The simulator's own books: every instruction it accepted, keyed by network and our
//! reference, so a duplicate submit books once, a query after a lost answer finds what was
//! booked, a reversal voids once, and the reconciliation files list exactly the books.
//! Kept in memory, written as a JSON snapshot (and the files) by [`super::Netsim`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    clearing::{
        CardDirection, CardInstruction, Network, Outcome, QueryOutcome, ReconFile, ReconLine,
        ReconPeriod, RefundInstruction, ReversalOutcome,
        recon::{ReconKind, ReconStatus, batch_id, business_date, in_period},
    },
    money::Money,
};

/// Most entries the books hold (a simulator run is bounded).
pub const ENTRIES_MAX: usize = 1_000_000;

/// One booked instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub network: Network,
    pub reference: String,
    pub network_reference: String,
    pub kind: ReconKind,
    pub amount: Money,
    pub status: ReconStatus,
    /// NetsUnion's presumed success or failure (异常成功 / 异常失败).
    pub presumed: bool,
    pub failure_code: String,
    pub failure_reason: String,
    /// The debit a refund refunds.
    pub original_reference: Option<String>,
    pub booked_at_ms: i64,
    /// How many times the same reference was submitted again (each answered from the books).
    pub resubmits: u32,
    /// How many reversal requests it received (only the first voids).
    pub reversal_requests: u32,
    /// The W3C `traceparent` the first request carried, if any.
    pub traceparent: Option<String>,
}

impl Entry {
    pub fn outcome(&self) -> Outcome {
        let network_reference = self.network_reference.clone();
        let (code, reason) = (self.failure_code.clone(), self.failure_reason.clone());
        match (self.status, self.presumed) {
            (ReconStatus::Failed, false) => Outcome::Failed { code, reason },
            (ReconStatus::Failed, true) => Outcome::PresumedFailed { code, reason },
            (_, false) => Outcome::Succeeded { network_reference },
            (_, true) => Outcome::PresumedSucceeded { network_reference },
        }
    }

    /// The entry as a reconciliation file lists it.
    pub fn line(&self) -> ReconLine {
        ReconLine {
            reference: self.reference.clone(),
            network_reference: self.network_reference.clone(),
            kind: self.kind,
            amount: self.amount,
            status: self.status,
            booked_at_ms: self.booked_at_ms,
        }
    }
}

/// How the simulator decided to answer a new instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub reject: bool,
    pub presumed: bool,
}

/// Why a new instruction is refused without being booked.
fn refusal(code: &str, reason: &str) -> Outcome {
    Outcome::Failed {
        code: code.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The books of every simulated network.
#[derive(Debug, Default)]
pub struct Books {
    entries: BTreeMap<(Network, String), Entry>,
    /// Periods whose files changed since they were last written.
    dirty: BTreeSet<(Network, String)>,
    changed: bool,
}

impl Books {
    /// Books loaded from a snapshot.
    pub fn from_entries(entries: Vec<Entry>) -> Books {
        let mut books = Books::default();
        for entry in entries {
            books.mark(&entry);
            books
                .entries
                .insert((entry.network, entry.reference.clone()), entry);
        }
        books
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries.values().cloned().collect()
    }

    pub fn get(&self, network: Network, reference: &str) -> Option<&Entry> {
        self.entries.get(&(network, reference.to_owned()))
    }

    fn mark(&mut self, entry: &Entry) {
        self.changed = true;
        let date = ReconPeriod::Date(business_date(entry.network, entry.booked_at_ms));
        self.dirty.insert((entry.network, date.as_text()));
        if entry.network.hourly_batches() {
            self.dirty
                .insert((entry.network, batch_id(entry.booked_at_ms)));
        }
    }

    /// The periods to write again, and whether the snapshot changed; both reset.
    pub fn take_dirty(&mut self) -> (Vec<(Network, ReconPeriod)>, bool) {
        let dirty = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|(n, p)| ReconPeriod::parse(&p).map(|p| (n, p)))
            .collect();
        (dirty, std::mem::replace(&mut self.changed, false))
    }

    fn network_reference(&self, network: Network) -> String {
        let prefix = network.spec().reference_prefix;
        format!("{prefix}{:012}", self.entries.len() + 1)
    }

    #[allow(clippy::too_many_arguments)]
    fn book(
        &mut self,
        network: Network,
        reference: &str,
        kind: ReconKind,
        amount: Money,
        original_reference: Option<String>,
        verdict: Verdict,
        refused: Option<Outcome>,
        at_ms: i64,
        traceparent: Option<String>,
    ) -> Outcome {
        assert!(
            self.entries.len() < ENTRIES_MAX,
            "the simulator's books are full"
        );
        let presumed = verdict.presumed && network.spec().presumed_outcomes && refused.is_none();
        let (status, code, reason) = match refused {
            Some(Outcome::Failed { code, reason }) => (ReconStatus::Failed, code, reason),
            _ if verdict.reject => (
                ReconStatus::Failed,
                network.spec().decline_code.to_owned(),
                "declined by the simulator".to_owned(),
            ),
            _ => (ReconStatus::Succeeded, String::new(), String::new()),
        };
        let entry = Entry {
            network,
            reference: reference.to_owned(),
            network_reference: self.network_reference(network),
            kind,
            amount,
            status,
            presumed,
            failure_code: code,
            failure_reason: reason,
            original_reference,
            booked_at_ms: at_ms,
            resubmits: 0,
            reversal_requests: 0,
            traceparent,
        };
        let outcome = entry.outcome();
        self.mark(&entry);
        self.entries.insert((network, reference.to_owned()), entry);
        outcome
    }

    /// Books a submit once; a resubmit of the same reference answers what was booked.
    pub fn submit(
        &mut self,
        network: Network,
        instruction: &CardInstruction,
        verdict: Verdict,
        at_ms: i64,
        traceparent: Option<String>,
    ) -> Outcome {
        if let Some(entry) = self
            .entries
            .get_mut(&(network, instruction.reference.clone()))
        {
            entry.resubmits += 1;
            self.changed = true;
            return entry.outcome();
        }
        let kind = match instruction.direction {
            CardDirection::DebitCard => ReconKind::Debit,
            CardDirection::CreditCard => ReconKind::Credit,
        };
        self.book(
            network,
            &instruction.reference,
            kind,
            instruction.amount,
            None,
            verdict,
            None,
            at_ms,
            traceparent,
        )
    }

    /// Books a refund once: of a succeeded, unreversed debit, and never past its amount.
    pub fn refund(
        &mut self,
        network: Network,
        refund: &RefundInstruction,
        verdict: Verdict,
        at_ms: i64,
        traceparent: Option<String>,
    ) -> Outcome {
        if let Some(entry) = self.entries.get_mut(&(network, refund.reference.clone())) {
            entry.resubmits += 1;
            self.changed = true;
            return entry.outcome();
        }
        let refused = match self.get(network, &refund.original_reference) {
            Some(o) if o.kind == ReconKind::Debit && o.status == ReconStatus::Succeeded => {
                let refunded: i64 = self
                    .entries
                    .values()
                    .filter(|e| {
                        e.network == network
                            && e.status == ReconStatus::Succeeded
                            && e.original_reference.as_deref() == Some(&refund.original_reference)
                    })
                    .map(|e| e.amount.minor)
                    .sum();
                (o.amount.currency != refund.amount.currency
                    || refunded + refund.amount.minor > o.amount.minor)
                    .then(|| refusal("REFUND_EXCEEDS", "more than the original amount"))
            }
            _ => Some(refusal("NO_ORIGINAL", "no succeeded original to refund")),
        };
        self.book(
            network,
            &refund.reference,
            ReconKind::Refund,
            refund.amount,
            Some(refund.original_reference.clone()),
            verdict,
            refused,
            at_ms,
            traceparent,
        )
    }

    pub fn query(&self, network: Network, reference: &str) -> QueryOutcome {
        match self.get(network, reference) {
            Some(entry) => QueryOutcome::Found {
                outcome: entry.outcome(),
                reversed: entry.status == ReconStatus::Reversed,
            },
            None => QueryOutcome::NotFound,
        }
    }

    /// Voids a succeeded instruction once; again is still `Reversed`, and changes nothing.
    pub fn reverse(&mut self, network: Network, reference: &str) -> ReversalOutcome {
        let Some(entry) = self.entries.get_mut(&(network, reference.to_owned())) else {
            return ReversalOutcome::NothingToReverse;
        };
        entry.reversal_requests += 1;
        self.changed = true;
        match entry.status {
            ReconStatus::Failed => ReversalOutcome::NothingToReverse,
            ReconStatus::Reversed => ReversalOutcome::Reversed,
            ReconStatus::Succeeded => {
                entry.status = ReconStatus::Reversed;
                let entry = entry.clone();
                self.mark(&entry);
                ReversalOutcome::Reversed
            }
        }
    }

    /// The reconciliation file of `period`: every entry of `network` booked in it, in booking
    /// order.
    pub fn recon(&self, network: Network, period: &ReconPeriod) -> ReconFile {
        let mut lines: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.network == network && in_period(network, period, e.booked_at_ms))
            .collect();
        lines.sort_by(|a, b| (a.booked_at_ms, &a.reference).cmp(&(b.booked_at_ms, &b.reference)));
        ReconFile {
            network,
            period: period.clone(),
            lines: lines.into_iter().map(Entry::line).collect(),
        }
    }
}
