//! Reconciliation (对账): a network's file matched against our own record of the calls we sent
//! it. Pure: the caller brings both sides.
//!
//! A line on both sides matches when both say it moved money (our SUCCEEDED, their SUCCEEDED)
//! with the same amount, or both say it did not (our FAILED, their FAILED or REVERSED). Breaks:
//! - **theirs only** (长款): the network booked money we have no call for;
//! - **ours only** (短款): we booked money the network has no line for;
//! - **amount differs**: both booked it, for different amounts;
//! - **status differs**: one side moved money and the other did not.
//!
//! A line that moved nothing on the one side it appears on (a call refused or never received)
//! is not a break. Our calls still unsettled are counted apart: the recovery worker has not
//! finished them, so they are neither matched nor broken yet. A call we sent just before the
//! period ended that the file lacks is **carried** to the next period, not broken: the network
//! may have received it after its cutover; the next period's reconciliation takes it as its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Network, ReconFile, ReconStatus, recon::ReconKind};

/// Where one of our calls stands, for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OurStatus {
    Succeeded,
    Failed,
    /// Sent, not yet settled.
    Unsettled,
}

impl OurStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OurStatus::Succeeded => "SUCCEEDED",
            OurStatus::Failed => "FAILED",
            OurStatus::Unsettled => "UNSETTLED",
        }
    }
}

/// One of our calls to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurLine {
    pub reference: String,
    pub amount_minor: i64,
    pub status: OurStatus,
    /// Whether it was sent within the file's period (calls just outside it are brought too, so
    /// a call the network booked across the boundary still matches; they are never "ours
    /// only").
    pub in_period: bool,
    /// Sent so close before the period ended that the network may book it in the next one.
    pub near_end: bool,
}

/// The kinds of break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakKind {
    /// 长款: on the network's file only.
    TheirsOnly,
    /// 短款: in our records only.
    OursOnly,
    AmountDiffers,
    StatusDiffers,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::TheirsOnly => "THEIRS_ONLY",
            BreakKind::OursOnly => "OURS_ONLY",
            BreakKind::AmountDiffers => "AMOUNT_DIFFERS",
            BreakKind::StatusDiffers => "STATUS_DIFFERS",
        }
    }
}

/// One break, with both sides as far as they exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    pub kind: BreakKind,
    pub reference: String,
    pub ours_amount_minor: Option<i64>,
    pub theirs_amount_minor: Option<i64>,
    pub ours_status: Option<OurStatus>,
    pub theirs_status: Option<ReconStatus>,
    /// What the network's line moved (a debit of the card, a credit, a refund), when it has one.
    #[serde(default)]
    pub theirs_movement: Option<ReconKind>,
}

/// The result of one reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconReport {
    pub network: Network,
    pub period: String,
    pub their_lines: usize,
    pub our_lines: usize,
    pub matched: usize,
    pub unsettled: usize,
    pub breaks: Vec<Break>,
    /// Our references sent just before the period ended that the file lacks: the next
    /// period's reconciliation takes them as its own.
    pub carried: Vec<String>,
    /// Our references sent outside the period that the file holds (booked across a
    /// boundary): matched here, so the next period's reconciliation leaves them out.
    pub across: Vec<String>,
}

/// Matches `file` against `ours`.
pub fn reconcile(file: &ReconFile, ours: &[OurLine]) -> ReconReport {
    let by_reference: BTreeMap<&str, &OurLine> =
        ours.iter().map(|o| (o.reference.as_str(), o)).collect();
    let mut seen = BTreeMap::new();
    let mut report = ReconReport {
        network: file.network,
        period: file.period.as_text(),
        their_lines: file.lines.len(),
        our_lines: ours.iter().filter(|o| o.in_period).count(),
        matched: 0,
        unsettled: 0,
        breaks: Vec::new(),
        carried: Vec::new(),
        across: Vec::new(),
    };
    for line in &file.lines {
        let theirs_moved = line.status == ReconStatus::Succeeded;
        let ours = by_reference.get(line.reference.as_str()).copied();
        seen.insert(line.reference.as_str(), ());
        if let Some(o) = ours.filter(|o| !o.in_period) {
            report.across.push(o.reference.clone());
        }
        let kind = match ours {
            None if theirs_moved => Some(BreakKind::TheirsOnly),
            None => None,
            Some(o) if o.status == OurStatus::Unsettled => {
                report.unsettled += 1;
                continue;
            }
            Some(o) if (o.status == OurStatus::Succeeded) != theirs_moved => {
                Some(BreakKind::StatusDiffers)
            }
            Some(o) if theirs_moved && o.amount_minor != line.amount.minor => {
                Some(BreakKind::AmountDiffers)
            }
            Some(_) => None,
        };
        match kind {
            None => report.matched += 1,
            Some(kind) => report.breaks.push(Break {
                kind,
                reference: line.reference.clone(),
                ours_amount_minor: ours.map(|o| o.amount_minor),
                theirs_amount_minor: Some(line.amount.minor),
                ours_status: ours.map(|o| o.status),
                theirs_status: Some(line.status),
                theirs_movement: Some(line.kind),
            }),
        }
    }
    for o in ours.iter().filter(|o| o.in_period) {
        if seen.contains_key(o.reference.as_str()) {
            continue;
        }
        match o.status {
            OurStatus::Unsettled => report.unsettled += 1,
            OurStatus::Failed => report.matched += 1,
            OurStatus::Succeeded if o.near_end => report.carried.push(o.reference.clone()),
            OurStatus::Succeeded => report.breaks.push(Break {
                kind: BreakKind::OursOnly,
                reference: o.reference.clone(),
                ours_amount_minor: Some(o.amount_minor),
                theirs_amount_minor: None,
                ours_status: Some(o.status),
                theirs_status: None,
                theirs_movement: None,
            }),
        }
    }
    report
        .breaks
        .sort_by(|a, b| (a.kind, &a.reference).cmp(&(b.kind, &b.reference)));
    report
}

impl ReconReport {
    /// A readable table: a summary line, then one line per break.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} {}: {} lines theirs, {} ours; {} matched, {} unsettled, {} breaks\n",
            self.network.as_str(),
            self.period,
            self.their_lines,
            self.our_lines,
            self.matched,
            self.unsettled,
            self.breaks.len()
        );
        if !self.breaks.is_empty() {
            out.push_str(&format!(
                "{:<16} {:<32} {:>14} {:>14} {:<10} {:<10}\n",
                "break", "reference", "ours (minor)", "theirs (minor)", "ours", "theirs"
            ));
        }
        let text = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        for b in &self.breaks {
            out.push_str(&format!(
                "{:<16} {:<32} {:>14} {:>14} {:<10} {:<10}\n",
                b.kind.as_str(),
                b.reference,
                text(b.ours_amount_minor),
                text(b.theirs_amount_minor),
                b.ours_status.map_or("-", OurStatus::as_str),
                b.theirs_status.map_or("-", ReconStatus::as_str),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::{nets_union, union_pay_qr};
    use crate::{
        clearing::{ReconLine, ReconPeriod, recon::ReconKind},
        money::{Currency, Money},
    };

    fn theirs(reference: &str, minor: i64, status: ReconStatus) -> ReconLine {
        ReconLine {
            reference: reference.to_owned(),
            network_reference: format!("N{reference}"),
            kind: ReconKind::Debit,
            amount: Money::new(Currency::from_code("CNY").unwrap(), minor),
            status,
            booked_at_ms: 0,
        }
    }

    fn ours(reference: &str, minor: i64, status: OurStatus) -> OurLine {
        OurLine {
            reference: reference.to_owned(),
            amount_minor: minor,
            status,
            in_period: true,
            near_end: false,
        }
    }

    #[test]
    fn a_call_sent_just_before_the_end_that_the_file_lacks_is_carried_not_broken() {
        let file = ReconFile {
            network: union_pay_qr::NETWORK,
            period: ReconPeriod::parse("20261207").unwrap(),
            lines: vec![theirs("BOOKED", 100, ReconStatus::Succeeded)],
        };
        let mut late = ours("LATE", 100, OurStatus::Succeeded);
        late.near_end = true;
        let mut booked_late = ours("BOOKED", 100, OurStatus::Succeeded);
        booked_late.near_end = true;
        let report = reconcile(&file, &[late, booked_late]);
        assert!(report.breaks.is_empty(), "{report:?}");
        assert_eq!(report.carried, vec!["LATE".to_owned()]);
        let mut early = ours("EARLY", 100, OurStatus::Succeeded);
        early.in_period = false;
        let file = ReconFile {
            network: union_pay_qr::NETWORK,
            period: ReconPeriod::parse("20261207").unwrap(),
            lines: vec![theirs("EARLY", 100, ReconStatus::Succeeded)],
        };
        let report = reconcile(&file, &[early]);
        assert!(report.breaks.is_empty(), "{report:?}");
        assert_eq!(report.across, vec!["EARLY".to_owned()]);
        assert_eq!(report.matched, 1);
    }

    #[test]
    fn every_kind_of_break_is_found_and_nothing_else() {
        use OurStatus as O;
        use ReconStatus as T;
        let file = ReconFile {
            network: nets_union::NETWORK,
            period: ReconPeriod::parse("B202612070001").unwrap(),
            lines: vec![
                theirs("MATCHED", 100, T::Succeeded),
                theirs("BOTHFAILED", 100, T::Failed),
                theirs("REVERSED", 100, T::Reversed),
                theirs("THEIRS", 100, T::Succeeded),
                theirs("THEIRSFAILED", 100, T::Failed),
                theirs("AMOUNT", 100, T::Succeeded),
                theirs("STATUS", 100, T::Succeeded),
                theirs("PENDING", 100, T::Succeeded),
            ],
        };
        let mut outside = ours("OUTSIDE", 100, O::Succeeded);
        outside.in_period = false;
        let ours = vec![
            ours("MATCHED", 100, O::Succeeded),
            ours("BOTHFAILED", 100, O::Failed),
            ours("REVERSED", 100, O::Failed),
            ours("AMOUNT", 90, O::Succeeded),
            ours("STATUS", 100, O::Failed),
            ours("PENDING", 100, O::Unsettled),
            ours("OURS", 100, O::Succeeded),
            ours("NEVERSENT", 100, O::Failed),
            outside,
        ];
        let report = reconcile(&file, &ours);
        let breaks: Vec<(BreakKind, &str)> = report
            .breaks
            .iter()
            .map(|b| (b.kind, b.reference.as_str()))
            .collect();
        assert_eq!(
            breaks,
            vec![
                (BreakKind::TheirsOnly, "THEIRS"),
                (BreakKind::OursOnly, "OURS"),
                (BreakKind::AmountDiffers, "AMOUNT"),
                (BreakKind::StatusDiffers, "STATUS"),
            ]
        );
        assert_eq!(report.matched, 5, "{report:?}");
        assert_eq!(report.unsettled, 1);
        assert_eq!(report.our_lines, 8);
        assert!(
            report.table().contains("AMOUNT_DIFFERS"),
            "{}",
            report.table()
        );
    }
}
