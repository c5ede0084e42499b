#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/<target>/ (protobuf encoded by hand: strings,
varints and nested messages are all these requests use). Run from fuzz/: python3 seeds/make_seeds.py
"""
import os, struct

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def s(field, text):
    data = text.encode() if isinstance(text, str) else text
    return varint(field << 3 | 2) + varint(len(data)) + data

def v(field, n):
    return varint(field << 3) + varint(n)

def money(field, cur, amount):
    return s(field, s(1, cur) + s(2, amount))

def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)

# money: currency pick (0 CNY, 1 USD, 2 JPY, 3 KWD, 4 BHD, 5 EUR, 6 = 3-byte code), sign pick, text
for name, cur, sign, text in [
    ("cny_positive", 0, 0, b"12.34"), ("cny_trailing_zero", 0, 2, b"12.340"),
    ("cny_negative", 0, 2, b"-0.01"), ("jpy_fraction", 2, 2, b"1.5"),
    ("kwd_three", 3, 1, b"0.001"), ("max", 0, 2, b"92233720368547758.07"),
    ("overflow", 0, 2, b"92233720368547758.08"), ("exponent", 1, 2, b"1e5"),
    ("plus", 0, 2, b"+1"), ("lone_dot", 0, 2, b"1."), ("long", 0, 2, b"1" * 40),
    ("minus_zero", 0, 0, b"-0"), ("unknown_code", 6, 2, b"\x03XXX1"),
]:
    write("money", name, bytes([cur, sign]) + text)

# wire: message pick, then the encoding
rid = s(1, "req-1")
write("wire", "open_account", b"\x00" + rid + v(2, 1) + s(3, "CNY") + s(4, "owner-1"))
write("wire", "place_hold", b"\x01" + rid + s(2, "42") + money(3, "CNY", "10.00") + v(4, 1))
write("wire", "register_merchant", b"\x02" + rid + s(2, "Shop") + v(3, 1) + s(5, "7")
      + s(6, v(1, 1) + v(2, 1) + s(3, "0.006")))
write("wire", "create_order", b"\x03" + rid + s(2, "M1") + s(3, "no-1") + money(4, "CNY", "9.99")
      + s(5, "tea") + v(6, 1) + s(7, v(1, 1_800_000_000)))
write("wire", "close_order", b"\x04" + rid + s(2, "O1") + s(3, "gone"))
write("wire", "pay_balance", b"\x05" + rid + s(2, "O1") + s(3, "5") + s(4, b""))
write("wire", "pay_qr", b"\x05" + rid + s(3, "5") + s(7, s(1, "paygate:qr:merchant:M1") + money(2, "CNY", "3")))
write("wire", "issue_code", b"\x06" + rid + s(2, "5") + v(3, 1))
write("wire", "scan_pay", b"\x07" + rid + s(2, "M1") + s(3, "no-2") + s(4, "281234567890123456")
      + money(5, "CNY", "1.00") + s(6, "pos") + v(7, 4))
write("wire", "refund", b"\x08" + rid + s(2, "O1") + s(3, "r-1") + money(4, "CNY", "0.01"))
write("wire", "bad_request_id", b"\x04" + s(1, "a#b") + s(2, "O1"))
write("wire", "negative_amount", b"\x08" + rid + s(2, "O1") + s(3, "r-1") + money(4, "CNY", "-1"))
write("wire", "huge_timestamp", b"\x03" + rid + money(4, "JPY", "1") + v(6, 1)
      + s(7, v(1, (1 << 64) - 1) + v(2, (1 << 64) - 1)))

# payment codes and QR payloads: mode 0/1 text, 2 ScanPay, 3 Pay
for name, text in [("code", "281234567890123456"), ("code_too_long", "1" * 33), ("code_letters", "28abc"),
                   ("qr_order", "paygate:qr:order:O1234"), ("qr_merchant", "paygate:qr:merchant:M1"),
                   ("qr_empty_id", "paygate:qr:order:"), ("qr_foreign", "https://example.com/pay"),
                   ("fullwidth_digits", "２８１２")]:
    write("payment_code_qr", name, b"\x00" + text.encode())
write("payment_code_qr", "scan_pay", b"\x02" + rid + s(2, "M1") + s(3, "no-2") + s(4, "281234567890123456")
      + money(5, "CNY", "1.00") + s(6, "pos") + v(7, 4))
write("payment_code_qr", "pay_qr", b"\x03" + rid + s(3, "5") + s(7, s(1, "paygate:qr:order:O1")))

# page tokens: a position byte, then the text
for name, text in [("account_listing", b"accounts:owner:42"), ("statement", b"entries:7:0:9223372036854775807:12_1"),
                   ("forged", b"accounts:owner:42.00000000000000000000000000000000"), ("dots", b"a.b.c"),
                   ("empty", b""), ("non_ascii", "账户:1".encode())]:
    write("page_token", name, b"\x05" + text)

# journal: even mode byte = consistent journal + an edit, odd = arbitrary rows
write("journal_verify", "consistent_clean", bytes([0, 3, 0, 1, 0, 5, 0, 1, 50, 7, 1, 2, 20, 9, 1, 1, 0, 30, 1, 1, 40, 2, 0]))
write("journal_verify", "edit_amount", bytes([0, 3, 0, 1, 0, 5, 0, 1, 50, 7, 1, 2, 20, 9, 0, 0, 1, 0]))
write("journal_verify", "edit_remove", bytes([0, 2, 1, 0, 3, 0, 1, 9, 1, 1, 0, 5, 2, 0, 0, 0, 2, 1]))
write("journal_verify", "edit_balance", bytes([0, 1, 0, 1, 2, 0, 1, 9, 1, 0, 0, 3, 0]))
write("journal_verify", "edit_head", bytes([0, 0, 0, 0, 1, 0, 1, 9, 1, 0, 0, 4]))
write("journal_verify", "arbitrary_small", bytes([1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 2, 1, 2,
                                                 1, 0, 0, 26, 17, 2, 0, 1, 0, 26, 17, 0, 0, 0, 0, 1, 1, 1, 0, 1]))
write("journal_verify", "arbitrary_max_seq", bytes([1, 0, 1, 0xfe, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0xfe, 1]))
