#!/usr/bin/env python3
"""The expected figures of tests/yields_scenario.rs, computed apart from the Rust code.

Run it from the repository root and it writes tests/yields_scenario/table.rs:

    python3 tests/yields_scenario_table.py > tests/yields_scenario/table.rs

It knows nothing of paygate's code: it implements the rules as docs/DOMAIN.md (yield section)
and the header of src/yields/income.rs state them, in exact decimal arithmetic:

- business dates: Monday to Friday less the holidays;
- subscribe: cash -> shares at 1.00; shares bought on D earn from the next business date;
- eligible(D) = shares held at the end of the previous day - shares redeemed on D (first in,
  first out), never below 0: shares redeemed on D do not earn on D;
- income = trunc_fen(eligible x R / 10,000), reinvested as shares on D;
- fund_total = trunc_fen(sum of eligible x R / 10,000) (full precision, truncated once);
  rounding = fund_total - sum of incomes;
- FAST: cash now; NORMAL: shares now, cash credited by the end-of-day run of D (its credit
  date is the next business date after D);
- end of day D: first each enabled auto-sweep subscribes the cash above its kept balance
  (nothing below the 1.00 minimum), as a subscription of D (held at the end of D), then the
  NORMAL redemptions due by the next business date are credited;
- 7-day annualised yields of the last seven rates, rounded half-even to 6 decimals:
  simple = (sum R / 7) x 365 / 10,000, compound = prod(1 + R / 10,000)^(365/7) - 1.

Days are calendar offsets from the scenario's first Monday (offset % 7 == 0 is a Monday), so
the table holds whatever Monday the test starts on.
"""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, getcontext

getcontext().prec = 60

HOLDERS = "ABCDE"
# A Monday (week 3) and a Wednesday (week 4).
HOLIDAYS = {14, 23}
MIN_SUBSCRIPTION = 100  # fen
FAST_CAP = 1_000_000  # fen, per holder per day
# Cash each holder tops up on the first morning, before any business.
OPENING_CASH = ["30000.00", "8000.00", "6000.00", "3000.00", "2000.00"]

# The business of each business date, in order. Holders by letter; amounts in yuan.
#   sub: subscribe   normal/fast: redeem shares   sweep: set (or change) the kept balance
#   nosweep: disable the auto-sweep   topup: cash in from the bound card
OPS = [
    [("sub", "A", "10000.00"), ("sub", "B", "3333.33"), ("sweep", "C", "100.00"),
     ("sub", "E", "12.34")],
    [("sub", "A", "1234.56"), ("sweep", "D", "500.00")],
    [("normal", "B", "1000.00"), ("fast", "A", "2000.00")],
    [("normal", "C", "500.00"), ("sub", "B", "500.00"), ("normal", "B", "700.00")],
    # Friday: the NORMAL redemption is credited on Monday; D's top-up is swept tonight.
    [("normal", "A", "1500.00"), ("topup", "D", "2000.00"), ("sub", "E", "987.65")],
    [("sub", "B", "777.77"), ("sweep", "C", "1000.00")],
    [("fast", "A", "500.00"), ("topup", "C", "1000.00")],
    [("normal", "A", "3000.00"), ("sweep", "E", "0.00")],
    [("sub", "B", "1000.00"), ("nosweep", "D")],
    # Friday before the Monday holiday: NORMAL is credited on Tuesday.
    [("normal", "C", "800.00"), ("fast", "B", "100.00"), ("topup", "D", "700.00"),
     ("topup", "E", "300.00")],
    [("sub", "A", "2500.00"), ("normal", "D", "1000.00")],
    [("fast", "C", "1200.00"), ("sweep", "E", "100.00")],
    [("normal", "B", "2000.00"), ("sweep", "D", "200.00")],
    [("fast", "A", "3000.00"), ("topup", "E", "50.00")],
    [("sub", "C", "300.00"), ("fast", "D", "150.00")],
    # Tuesday before the Wednesday holiday: NORMAL is credited on Thursday.
    [("normal", "A", "3000.00"), ("sub", "B", "600.00"), ("topup", "D", "1500.00")],
    [("normal", "E", "500.00"), ("nosweep", "C")],
    [("fast", "B", "300.00"), ("sub", "A", "600.00")],
    [("fast", "D", "800.00"), ("topup", "C", "400.00")],
    [("sub", "A", "5000.00"), ("nosweep", "E")],
    [("sub", "B", "200.00"), ("normal", "B", "1500.00"), ("normal", "C", "100.00")],
    [("normal", "D", "2000.00"), ("fast", "A", "1000.00")],
    [("normal", "E", "100.00"), ("topup", "B", "2500.00"), ("sweep", "B", "300.00")],
    [("sub", "C", "500.00"), ("normal", "A", "2000.00")],
    [("sweep", "B", "1000.00"), ("sub", "D", "150.00")],
    [("fast", "A", "2500.00"), ("sub", "E", "50.00")],
    [("fast", "C", "700.00"), ("nosweep", "B")],
    [("normal", "D", "1000.00"), ("sub", "A", "1234.00")],
    [("normal", "B", "500.00")],
    [],
]

# Income per 10,000 shares (yuan) of each business date.
RATES = [
    "0.6543", "0.6421", "0.6600", "0.6389", "0.6712", "0.6500", "0.6455", "0.6601", "0.6333",
    "0.6480", "0.7012", "0.6897", "0.5999", "0.6123", "0.6250", "0.6777", "0.6404", "0.6318",
    "0.5876", "0.6001", "0.6150", "0.6249", "0.7101", "0.6666", "0.6035", "0.5912", "0.6189",
    "0.6420", "0.6502", "0.6377",
]


def fen(text):
    units, _, cents = text.partition(".")
    assert len(cents) == 2, text
    return int(units) * 100 + int(cents)


def trunc_fen(shares_fen, rate):
    """Income in fen of shares (in fen) at a rate per 10,000 shares, truncated."""
    exact = Decimal(shares_fen) * Decimal(rate) / Decimal(10_000)
    return int(exact.to_integral_value(rounding=ROUND_DOWN))


def is_business(offset):
    return offset % 7 < 5 and offset not in HOLIDAYS


def next_business(offset):
    offset += 1
    while not is_business(offset):
        offset += 1
    return offset


def business_dates(count):
    out, offset = [], 0
    while len(out) < count:
        if is_business(offset):
            out.append(offset)
        offset += 1
    return out


def seven_day(rates):
    r = [Decimal(x) for x in rates[-7:]]
    q = Decimal("0.000001")
    simple = (sum(r) / 7 * 365 / 10_000).quantize(q, rounding=ROUND_HALF_EVEN)
    growth = Decimal(1)
    for x in r:
        growth *= 1 + x / 10_000
    compound = (growth ** (Decimal(365) / 7) - 1).quantize(q, rounding=ROUND_HALF_EVEN)
    return str(simple), str(compound)


def run():
    dates = business_dates(len(OPS))
    n = len(HOLDERS)
    cash = [fen(c) for c in OPENING_CASH]
    shares = [0] * n
    sweeps = {}  # holder -> kept balance in fen (enabled only)
    rows, normals = [], []
    for day, date in enumerate(dates):
        held = list(shares)  # held at the end of the previous day
        redeemed = [0] * n
        fast_today = [0] * n
        due = []  # NORMAL cash owed tonight: (holder, fen)
        for op in OPS[day]:
            kind, h = op[0], HOLDERS.index(op[1])
            amount = fen(op[2]) if len(op) > 2 else 0
            if kind == "sub":
                assert amount >= MIN_SUBSCRIPTION and cash[h] >= amount, (day, op)
                cash[h] -= amount
                shares[h] += amount
            elif kind in ("normal", "fast"):
                assert shares[h] >= amount, (day, op, shares[h])
                shares[h] -= amount
                redeemed[h] += amount
                if kind == "fast":
                    fast_today[h] += amount
                    assert fast_today[h] <= FAST_CAP, (day, op)
                    cash[h] += amount
                else:
                    due.append((h, amount))
                    normals.append((day, next_business(date)))
            elif kind == "sweep":
                sweeps[h] = amount
            elif kind == "nosweep":
                sweeps.pop(h, None)
            elif kind == "topup":
                cash[h] += amount
            else:
                raise ValueError(op)
        # The night: sweeps (subscriptions of today), then today's NORMAL cash.
        for h, keep in sorted(sweeps.items()):
            excess = cash[h] - keep
            if excess >= MIN_SUBSCRIPTION:
                cash[h] -= excess
                shares[h] += excess
        for h, amount in due:
            cash[h] += amount
        # The accrual of the date.
        rate = RATES[day]
        eligible = [max(0, held[h] - redeemed[h]) for h in range(n)]
        income = [trunc_fen(e, rate) for e in eligible]
        fund = trunc_fen(sum(eligible), rate)
        rounding = fund - sum(income)
        assert 0 <= rounding < n, (day, rounding)
        for h in range(n):
            shares[h] += income[h]
        rows.append((date, eligible, income, fund, rounding, list(shares), list(cash)))
    return rows, normals


def rust_op(op):
    kind, h = op[0], HOLDERS.index(op[1])
    name = {"sub": "Sub", "normal": "Normal", "fast": "Fast", "sweep": "Sweep",
            "nosweep": "NoSweep", "topup": "TopUp"}[kind]
    if kind == "nosweep":
        return f"{name}({op[1]})"
    return f'{name}({op[1]}, "{op[2]}")'


def main():
    rows, normals = run()
    print("//! The scenario of tests/yields_scenario.rs and its expected figures: GENERATED by")
    print("//! `python3 tests/yields_scenario_table.py > tests/yields_scenario/table.rs` (exact")
    print("//! decimal arithmetic on the rules of docs/DOMAIN.md); do not edit by hand.")
    print()
    print("use super::{A, B, C, D, E, Op, Op::*};")
    print()
    print(f"/// Holidays, as calendar days after the first Monday: {sorted(HOLIDAYS)}.")
    print(f"pub const HOLIDAYS: [i64; {len(HOLIDAYS)}] = {sorted(HOLIDAYS)};")
    print()
    print("/// Cash each holder tops up on the first morning.")
    cash = ", ".join(f'"{c}"' for c in OPENING_CASH)
    print(f"pub const OPENING_CASH: [&str; {len(OPENING_CASH)}] = [{cash}];")
    print()
    print("/// Income per 10,000 shares of each business date.")
    print("#[rustfmt::skip]")
    print(f"pub const RATES: [&str; {len(RATES)}] = [")
    for i in range(0, len(RATES), 10):
        print("    " + " ".join(f'"{r}",' for r in RATES[i:i + 10]))
    print("];")
    print()
    print("/// The business of each business date, in order.")
    print("#[rustfmt::skip]")
    print(f"pub const OPS: [&[Op]; {len(OPS)}] = [")
    for day, ops in enumerate(OPS):
        print(f"    /* {day:2} */ &[{', '.join(rust_op(o) for o in ops)}],")
    print("];")
    print()
    print("/// Each NORMAL redemption: (business day index, credit date as days after the first")
    print("/// Monday), in order.")
    print("#[rustfmt::skip]")
    print(f"pub const NORMAL_CREDIT: [(usize, i64); {len(normals)}] = [")
    print("    " + " ".join(f"({d}, {c})," for d, c in normals))
    print("];")
    print()
    print("/// One business date: its offset from the first Monday; per holder (eligible shares,")
    print("/// income); fund total; rounding; per holder shares and cash after the night. Fen.")
    print("pub struct Row {")
    print("    pub date: i64,")
    print("    pub holders: [(i64, i64); 5],")
    print("    pub fund_total: i64,")
    print("    pub rounding: i64,")
    print("    pub shares: [i64; 5],")
    print("    pub cash: [i64; 5],")
    print("}")
    print()
    fields = [("date", "i64"), ("holders", "[(i64, i64); 5]"), ("fund_total", "i64"),
              ("rounding", "i64"), ("shares", "[i64; 5]"), ("cash", "[i64; 5]")]
    print("const fn row(")
    for name, kind in fields:
        print(f"    {name}: {kind},")
    print(") -> Row {")
    print("    Row {")
    for name, _ in fields:
        print(f"        {name},")
    print("    }")
    print("}")
    print()
    print("#[rustfmt::skip]")
    print(f"pub const TABLE: [Row; {len(rows)}] = [")
    for date, eligible, income, fund, rounding, shares, cash in rows:
        pairs = ", ".join(f"({e}, {i})" for e, i in zip(eligible, income))
        print(f"    row({date}, [{pairs}], {fund}, {rounding},")
        print(f"        {shares}, {cash}),")
    print("];")
    print()
    simple, compound = seven_day(RATES)
    print("/// The 7-day annualised yields (simple, compound) after the last date.")
    print(f'pub const SEVEN_DAY: (&str, &str) = ("{simple}", "{compound}");')


if __name__ == "__main__":
    main()
