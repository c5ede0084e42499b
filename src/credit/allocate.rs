//! How a repayment is allocated (还款冲抵顺序). Pure arithmetic: no I/O.
//!
//! ```text
//! 1. penalty due (罚息)
//! 2. interest due — attributed to the instalments whose interest has fallen due, oldest first
//! 3. principal of the oldest instalment (due date order, across plans), then the next …
//! 4. principal not in a plan
//! ```
//!
//! A repayment that leaves nothing owed (no penalty, interest or principal) is an early full
//! repayment: it closes every plan, and the interest of each instalment not yet fallen due (its
//! due date not accrued) is waived.

use time::Date;

use super::{CreditLine, InstalmentPlan};

/// What one repayment pays, part by part, and the plans it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub penalty_minor: i64,
    pub interest_minor: i64,
    /// Principal in all (instalments' and not planned).
    pub principal_minor: i64,
    /// The part of `principal_minor` paid on instalments (lowers the `planned` counter).
    pub planned_principal_minor: i64,
    /// The plans that changed (with the version they were read at).
    pub plans: Vec<(InstalmentPlan, u64)>,
    /// Principal of instalments due on or before the line's accrued-through date still unpaid.
    pub overdue_principal_minor: i64,
}

/// Allocates `amount_minor` (at most what is owed: the caller checks) on `line`, whose
/// principal outstanding is `principal_minor`, with its `plans` (any order).
pub fn allocate(
    line: &CreditLine,
    principal_minor: i64,
    plans: Vec<(InstalmentPlan, u64)>,
    amount_minor: i64,
) -> Allocation {
    let mut rest = amount_minor.max(0);
    let penalty = rest.min(line.penalty_due_minor.max(0));
    rest -= penalty;
    let interest = rest.min(line.interest_due_minor.max(0));
    rest -= interest;
    allocate_parts(line, principal_minor, plans, (penalty, interest, rest))
}

/// Principal only (a refund restoring the line): to the instalments oldest first, then to
/// principal not in a plan, like a repayment's principal.
pub fn allocate_principal(
    line: &CreditLine,
    principal_minor: i64,
    plans: Vec<(InstalmentPlan, u64)>,
    amount_minor: i64,
) -> Allocation {
    allocate_parts(line, principal_minor, plans, (0, 0, amount_minor.max(0)))
}

/// The allocation of (penalty, interest, principal) parts already split.
fn allocate_parts(
    line: &CreditLine,
    principal_minor: i64,
    mut plans: Vec<(InstalmentPlan, u64)>,
    (penalty, interest, principal): (i64, i64, i64),
) -> Allocation {
    let through = line.accrued_through;
    let fallen_due = |due: Date| through.is_some_and(|t| due <= t);
    let mut changed = vec![false; plans.len()];

    // Instalments, oldest first: (due, plan index, instalment index).
    let mut order: Vec<(Date, usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(p, (plan, _))| {
            plan.instalments
                .iter()
                .enumerate()
                .map(move |(i, inst)| (inst.due, p, i))
        })
        .collect();
    order.sort();

    let mut interest_left = interest;
    let mut principal_left = principal;
    for &(due, p, i) in &order {
        let inst = &mut plans[p].0.instalments[i];
        if fallen_due(due) && interest_left > 0 {
            let pay = interest_left.min(inst.interest_left_minor());
            if pay > 0 {
                inst.paid_minor += pay;
                interest_left -= pay;
                changed[p] = true;
            }
        }
    }
    for &(_, p, i) in &order {
        let inst = &mut plans[p].0.instalments[i];
        let pay = principal_left.min(inst.principal_left_minor());
        if pay > 0 {
            inst.paid_minor += pay;
            inst.principal_paid_minor += pay;
            principal_left -= pay;
            changed[p] = true;
        }
    }
    let planned_principal = principal - principal_left;

    let paid_off = penalty == line.penalty_due_minor
        && interest == line.interest_due_minor
        && principal >= principal_minor;
    if paid_off {
        for (p, (plan, _)) in plans.iter_mut().enumerate() {
            for inst in &mut plan.instalments {
                if !fallen_due(inst.due) && inst.interest_left_minor() > 0 {
                    inst.interest_waived_minor += inst.interest_left_minor();
                    changed[p] = true;
                }
            }
        }
    }
    let overdue = overdue_principal(plans.iter().map(|(p, _)| p), through);
    Allocation {
        penalty_minor: penalty,
        interest_minor: interest,
        principal_minor: principal,
        planned_principal_minor: planned_principal,
        plans: plans
            .into_iter()
            .zip(changed)
            .filter_map(|(plan, c)| c.then_some(plan))
            .collect(),
        overdue_principal_minor: overdue,
    }
}

/// Principal of the instalments due on or before `through` not yet repaid.
pub fn overdue_principal<'a>(
    plans: impl IntoIterator<Item = &'a InstalmentPlan>,
    through: Option<Date>,
) -> i64 {
    let Some(through) = through else {
        return 0;
    };
    plans
        .into_iter()
        .flat_map(|p| &p.instalments)
        .filter(|i| i.due <= through)
        .map(|i| i.principal_left_minor())
        .fold(0, i64::saturating_add)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rust_decimal::Decimal;
    use time::macros::date;

    use super::*;
    use crate::{
        credit::{InstalmentMethod, LineStatus, PlanInstalment},
        ledger::AccountId,
        money::{Currency, Money},
    };

    fn line(penalty: i64, interest: i64, through: Date) -> CreditLine {
        CreditLine {
            line_id: "CL1".into(),
            account: AccountId(1),
            receivable: AccountId(2),
            status: LineStatus::Active,
            limit: Money::new(Currency::CNY, 500_000),
            annual_rate: Decimal::new(18, 2),
            grace_days: 0,
            repayment_day: 10,
            base_minor: 500_000,
            opened_at_ms: 0,
            opened_on: date!(2026 - 01 - 01),
            freeze_reason: String::new(),
            interest_due_minor: interest,
            interest_carry_minor: Decimal::ZERO,
            accrued_through: Some(through),
            penalty_due_minor: penalty,
            penalty_carry_minor: Decimal::ZERO,
            overdue_principal_minor: 0,
            auto_repay: false,
        }
    }

    /// 300.00 in 3: 100.00 + 3.00 interest due 02-10, 03-10, 04-10.
    fn plan() -> (InstalmentPlan, u64) {
        let inst = |number, due| PlanInstalment {
            number,
            due,
            principal_minor: 10_000,
            interest_minor: 300,
            paid_minor: 0,
            principal_paid_minor: 0,
            interest_waived_minor: 0,
        };
        let plan = InstalmentPlan {
            line_id: "CL1".into(),
            drawdown_id: "D1".into(),
            method: InstalmentMethod::EqualPrincipal,
            principal: Money::new(Currency::CNY, 30_000),
            made_on: date!(2026 - 01 - 05),
            instalments: vec![
                inst(1, date!(2026 - 02 - 10)),
                inst(2, date!(2026 - 03 - 10)),
                inst(3, date!(2026 - 04 - 10)),
            ],
        };
        (plan, 0)
    }

    #[test]
    fn penalty_then_interest_then_the_oldest_instalment_then_principal_not_planned() {
        // Owed: penalty 0.50, interest 3.00 (instalment 1's) + 1.20 daily, principal 300.00 in
        // the plan + 50.00 not planned. 110.00 pays 0.50, 4.20, then 100.00 of instalment 1
        // and 5.30 of instalment 2.
        let l = line(50, 420, date!(2026 - 02 - 20));
        let a = allocate(&l, 35_000, vec![plan()], 11_000);
        assert_eq!(
            (a.penalty_minor, a.interest_minor, a.principal_minor),
            (50, 420, 10_530)
        );
        assert_eq!(a.planned_principal_minor, 10_530);
        let i = &a.plans[0].0.instalments;
        assert_eq!(
            (i[0].paid_minor, i[0].principal_paid_minor),
            (10_300, 10_000)
        );
        assert_eq!((i[1].paid_minor, i[1].principal_paid_minor), (530, 530));
        assert_eq!(a.overdue_principal_minor, 0);
    }

    #[test]
    fn a_partial_repayment_leaves_the_rest_of_an_instalment_overdue() {
        let l = line(0, 300, date!(2026 - 02 - 20));
        let a = allocate(&l, 30_000, vec![plan()], 4_300);
        assert_eq!(a.overdue_principal_minor, 6_000);
    }

    #[test]
    fn an_early_full_repayment_waives_the_interest_not_yet_fallen_due() {
        let l = line(0, 300, date!(2026 - 02 - 20));
        let a = allocate(&l, 32_000, vec![plan()], 32_300);
        assert_eq!(a.principal_minor, 32_000);
        assert_eq!(a.planned_principal_minor, 30_000);
        let i = &a.plans[0].0.instalments;
        assert_eq!(
            i.iter()
                .map(|i| i.interest_waived_minor)
                .collect::<Vec<_>>(),
            vec![0, 300, 300]
        );
        assert!(
            i.iter()
                .all(|i| i.state(date!(2026 - 02 - 21)) == crate::credit::InstalmentState::Paid)
        );
    }
}
