#!/usr/bin/env python3
"""Prepares a fresh `paygate serve` for the ghz profiles in this folder (run from anywhere):

- opens eight funded Class II payers (the first two are accounts 5 and 6 on a fresh database,
  which get-balance.json and transfer.json name),
- opens eight merchant settlement accounts and registers a merchant on each, signed for balance
  payments in apps,
- creates unpaid orders and writes the Pay bodies that pay them: data/pay.json (orders spread
  over the eight merchants) and data/hot-merchant-pay.json (every order on merchant 1).

Every call carries a fixed request id, so running it again opens and funds nothing twice; the
orders are new at each run (a paid order cannot be paid again), so run it before each Pay run.
Needs grpcurl on PATH and the development PKI in certs/ (the gateway writes it on first start).
"""

import argparse
import concurrent.futures
import json
import sys
import time

from common import PROFILES, grpcurl

PAYERS = 8
MERCHANTS = 8
# The accounts get-balance.json and transfer.json name: the first two payers on a fresh database.
PROFILE_ACCOUNTS = ("5", "6")
ORDERS_DEFAULT = 1000


def resident_id(n):
    """A valid resident id (GB 11643 check character), distinct per n below 1000."""
    body = f"11010119800101{n:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(body, weights))
    return body + "10X98765432"[total % 11]


def card_number(n):
    """A Luhn-valid 19-digit Class I card number, distinct per n."""
    body = f"622202{n:012d}"
    total = 0
    for i, d in enumerate(reversed(body)):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return body + str((10 - total % 10) % 10)


def cny(amount):
    return {"currency": "CNY", "amount": amount}


def call(host, method, body):
    ok, answer = grpcurl(host, method, body)
    if not ok:
        sys.exit(f"setup: {method} {json.dumps(body)} failed:\n{answer}")
    return answer


def open_account(host, owner, kind, more):
    """Opens (or, run again, finds) the account of ghz-`owner`; returns its id."""
    return call(host, "paygate.v1.AccountService/OpenAccount", {
        "request_id": f"ghz-open-{owner}", "kind": kind, "owner_id": f"ghz-{owner}",
        "display_name": f"ghz {owner}", **more})["account"]["accountId"]


def open_payers(host):
    ids = []
    for n in range(1, PAYERS + 1):
        account = open_account(host, f"payer-{n}", "ACCOUNT_KIND_CLASS_II", {
            "identity": {"full_name": f"Payer {n}",
                         "document_type": "ID_DOCUMENT_TYPE_RESIDENT_ID_CARD",
                         "document_number": resident_id(n)},
            "bound_card_number": card_number(n)})
        call(host, "paygate.v1.AccountService/TopUp", {
            "request_id": f"ghz-topup-payer-{n}", "account_id": account,
            "amount": cny("100000.00")})
        ids.append(account)
    return ids


def register_merchants(host):
    ids = []
    for n in range(1, MERCHANTS + 1):
        account = open_account(host, f"shop-{n}", "ACCOUNT_KIND_MERCHANT_SETTLEMENT", {})
        merchant = call(host, "paygate.v1.CashierService/RegisterMerchant", {
            "request_id": f"ghz-merchant-{n}", "name": f"ghz shop {n}",
            "merchant_type": "MERCHANT_TYPE_NORMAL", "settlement_account_id": account,
            "allowed_callers": ["loadtest"],
            "products": [{"method": "PAYMENT_METHOD_TYPE_BALANCE", "scenario": "SCENARIO_APP",
                          "fee_rate": "0.0060"}]})["merchant"]["merchantId"]
        ids.append(merchant)
    return ids


def pay_bodies(host, label, orders, merchants, payers):
    """Creates `orders` orders, the i-th on merchants[i % len], and returns the Pay bodies."""
    def one(i):
        order = call(host, "paygate.v1.CashierService/CreateOrder", {
            "request_id": f"ghz-o-{label}-{i}", "merchant_id": merchants[i % len(merchants)],
            "merchant_order_no": f"GHZ-{label}-{i}", "amount": cny("1.00"),
            "subject": "ghz", "scenario": "SCENARIO_APP"})["order"]["orderId"]
        # A ghz template: a new request id at every call (a repeated order is then refused, not
        # replayed, so a run longer than its orders shows errors instead of cheap replays).
        return {"request_id": "ghz-pay-{{newUUID}}", "order_id": order,
                "payer_account_id": payers[i % len(payers)], "balance": {}}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(orders)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost:50051")
    parser.add_argument("--orders", type=int, default=ORDERS_DEFAULT,
                        help=f"orders per Pay profile (default {ORDERS_DEFAULT}, its `total`)")
    args = parser.parse_args()

    payers = open_payers(args.host)
    if tuple(payers[:2]) != PROFILE_ACCOUNTS:
        sys.exit(f"setup: the first payers are accounts {payers[:2]}, but get-balance.json and "
                 f"transfer.json name {list(PROFILE_ACCOUNTS)}: start the gateway on a fresh "
                 "database (see README.md here)")
    merchants = register_merchants(args.host)
    label = time.strftime("%Y%m%d%H%M%S")
    data = PROFILES / "data"
    data.mkdir(exist_ok=True)
    for name, on in (("pay.json", merchants), ("hot-merchant-pay.json", merchants[:1])):
        bodies = pay_bodies(args.host, f"{label}-{name[0]}", args.orders, on, payers)
        (data / name).write_text(json.dumps(bodies, indent=1) + "\n")
        print(f"wrote {len(bodies)} Pay bodies to {(data / name).relative_to(PROFILES)} "
              f"({len(on)} merchant{'s' if len(on) > 1 else ''})")
    print(f"payers {', '.join(payers)}; merchants {', '.join(merchants)} (hot: {merchants[0]})")


if __name__ == "__main__":
    main()
