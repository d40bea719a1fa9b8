#!/usr/bin/env python3
"""A second implementation of the BLAKE2b constructions of proto/PROTOCOL.md, written from the
specification alone, checked against tests/vectors/hashes.kat: key id, settlement content and
body hashes, channel entry hash, channel digest, journal row hash, a return's content and channel
entry hashes (3.9), an FX leg's content and channel entry hashes (3.10), a settlement cycle's
statement hash (H9, 3.11.7), a multilateral set-off's terms hash (H13, 3.12.8); and its Ed25519
domain signatures (message, checkpoint, the cycle statement signature H8, and the set-off's terms,
vote and verdict signatures H10, H11, H12), signed again here from the seed. The cycle statement
of those two vectors, and the set-off's terms, ballot and verdict, are also encoded here from
their fields (3.11.1, 3.12.1) and must be the bytes the file gives.

And a second sealer of the Envelopes of tests/vectors/envelope.kat (1.13): from the fixed keys
alone it encodes every layer, signs (Ed25519, RFC 8032), boxes (X25519, RFC 7748, and the
XSalsa20-Poly1305 crypto_box of NaCl) and must reproduce each vector byte for byte; the real
bodies (the Hello, KeyAnnounce, KeySwitch, and the Settlement, StatusReport PDNG, CancelRequest
and CancelAnswer of 3.8, the Return of 3.9 and the StatusReport accepting it, the FxProposal of
3.10 with its rate text and the StatusReport accepting it, the CycleProposal, CycleAnswer and
NetSettlement of 3.11 with their cycle statements, H8 signatures and H9 hash, the SetoffRelay and
SetoffDecision of 3.12 with their terms, ballots, verdict, H10 to H13) are encoded here from
their fields. The standard library only: the primitives are written out below, slow and not
constant-time, for checking only.

usage: tests/vectors/check.py [hashes.kat [envelope.kat]]   exit 0 when every vector matches
"""
import hashlib
import os
import struct
import sys


def blake2b(data, size=32):
    return hashlib.blake2b(data, digest_size=size).digest()


def tag(name):  # a domain tag is hashed with its terminating NUL
    return name.encode() + b"\0"


def u8_text(s):
    b = s.encode()
    return struct.pack("<B", len(b)) + b


def u32_text(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


def u64_bytes(b):
    return struct.pack("<Q", len(b)) + b


def read_vectors(path):
    vectors, current = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("vector "):
            current = vectors.setdefault(line[7:], {"in": []})
        elif line.startswith("in "):
            field, _, value = line[3:].partition(" ")
            current["in"].append((field, "" if value == "-" else value))
        elif line.startswith("out "):
            current["out"] = line[4:]
    return vectors


def field(v, name):
    return next(value for f, value in v["in"] if f == name)


def key_id(v):
    return blake2b(tag("corridor.key-id.v1") + bytes.fromhex(field(v, "sign_public")), 16)


def content_hash(v):
    data = tag("corridor.settlement-content.v1")
    data += struct.pack("<qB", int(field(v, "amount_minor")), int(field(v, "direction")))
    for name in ("peer", "currency", "end_to_end_id", "debtor_name", "debtor_account",
                 "creditor_name", "creditor_account", "remittance"):
        data += u32_text(field(v, name))
    return blake2b(data)


def return_content_hash(v):  # 3.9: a sibling of 3.7.1 under its own tag
    data = tag("corridor.return-content.v1")
    data += struct.pack("<qB", int(field(v, "amount_minor")), int(field(v, "direction")))
    for name in ("peer", "currency", "original_uetr", "return_reason"):
        data += u32_text(field(v, name))
    return blake2b(data)


def body_hash(v):
    return blake2b(tag("corridor.settlement-body.v2") + bytes.fromhex(field(v, "body")))


def entry_hash(v):
    data = tag("corridor.channel-entry.v1")
    data += u8_text(field(v, "uetr")) + u8_text(field(v, "payer")) + u8_text(field(v, "payee"))
    data += struct.pack("<q", int(field(v, "amount_minor")))
    for name in ("currency", "status", "reason"):
        data += u8_text(field(v, name))
    return blake2b(data)


def return_entry_hash(v):  # 3.9: a sibling of 4.1; payer is the returner
    data = tag("corridor.channel-return.v1")
    for name in ("return_id", "original_uetr", "payer", "payee"):
        data += u8_text(field(v, name))
    data += struct.pack("<q", int(field(v, "amount_minor")))
    for name in ("currency", "status", "reason", "return_reason"):
        data += u8_text(field(v, name))
    return blake2b(data)


def fx_leg_content_hash(v):  # 3.10: a sibling of 3.7.1; the trade's id and the leg's number
    data = tag("corridor.fx-leg-content.v1")
    data += struct.pack("<qB", int(field(v, "amount_minor")), int(field(v, "direction")))
    for name in ("peer", "currency", "fx_id"):
        data += u32_text(field(v, name))
    data += struct.pack("<B", int(field(v, "fx_leg")))
    return blake2b(data)


def fx_leg_entry_hash(v):  # 3.10: a sibling of 4.1; payer is who pays the leg, the trade's id next
    data = tag("corridor.channel-fx-leg.v1")
    for name in ("uetr", "fx_id", "payer", "payee"):
        data += u8_text(field(v, name))
    data += struct.pack("<q", int(field(v, "amount_minor")))
    for name in ("currency", "status", "reason"):
        data += u8_text(field(v, name))
    return blake2b(data)


def digest(v):
    total = sum(int.from_bytes(bytes.fromhex(value), "little") for f, value in v["in"] if f == "entry")
    return (total % 2**256).to_bytes(32, "little")


def row_hash(v):
    data = tag("corridor.journal-row.v1") + bytes.fromhex(field(v, "prev"))
    data += struct.pack("<qq", int(field(v, "seq")), int(field(v, "kind")))
    for name in ("peer", "uetr", "currency"):
        data += u64_bytes(field(v, name).encode())
    data += struct.pack("<q", int(field(v, "amount_minor")))
    data += u64_bytes(field(v, "reason").encode())
    data += bytes.fromhex(field(v, "content_hash"))
    data += u64_bytes(bytes.fromhex(field(v, "evidence")))
    data += struct.pack("<q", int(field(v, "created_unix_ms")))
    reply = bytes.fromhex(field(v, "reply"))
    if reply:  # hashed only when present: rows written before schema 4 keep their hash
        data += u64_bytes(reply)
    return blake2b(data)


def domain_signature(v):  # 1.14 S2 (H8 of 3.11.7 with corridor.cycle.v1): Ed25519, deterministic
    seed = bytes.fromhex(field(v, "seed"))
    if ed_public(seed).hex() != field(v, "sign_public"):
        return b"sign_public is not the seed's key"
    return ed_sign(seed, tag(field(v, "domain")) + bytes.fromhex(field(v, "bytes")))


def cycle_statement_hash(v):  # H9 (3.11.7)
    return blake2b(tag("corridor.cycle-statement.v1") + bytes.fromhex(field(v, "statement")))


def setoff_terms_hash(v):  # H13 (3.12.8)
    return blake2b(tag("corridor.setoff-terms.v1") + bytes.fromhex(field(v, "terms")))


CONSTRUCTIONS = {
    "key_id": key_id,
    "settlement_content_hash_out": content_hash,
    "settlement_content_hash_in": content_hash,
    "settlement_body_hash": body_hash,
    "channel_entry_hash_1": entry_hash,
    "channel_entry_hash_2": entry_hash,
    "channel_digest": digest,
    "channel_digest_wraps": digest,
    "journal_row_hash": row_hash,
    "journal_row_hash_with_reply": row_hash,
    "return_content_hash_out": return_content_hash,
    "return_content_hash_in": return_content_hash,
    "channel_return_entry_hash_1": return_entry_hash,
    "channel_return_entry_hash_2": return_entry_hash,
    "fx_leg_content_hash_1_out": fx_leg_content_hash,
    "fx_leg_content_hash_2_in": fx_leg_content_hash,
    "channel_fx_leg_entry_hash_1": fx_leg_entry_hash,
    "channel_fx_leg_entry_hash_2": fx_leg_entry_hash,
    "message_signature": domain_signature,
    "checkpoint_signature": domain_signature,
    "cycle_statement_signature": domain_signature,
    "cycle_statement_hash": cycle_statement_hash,
    "setoff_terms_signature": domain_signature,
    "setoff_terms_hash": setoff_terms_hash,
    "setoff_vote_signature": domain_signature,
    "setoff_verdict_signature": domain_signature,
}

# ---- primitives for the envelope vectors -------------------------------------------------------

P25519 = 2**255 - 19


def x25519(scalar, u):  # RFC 7748, section 5
    k = bytearray(scalar)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & (2**255 - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        if swap ^ bit:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb, da, cb = a * a, b * b, d * a, c * b
        e = aa - bb
        x3, z3 = (da + cb) ** 2 % P25519, x1 * (da - cb) ** 2 % P25519
        x2, z2 = aa * bb % P25519, e * (aa + 121665 * e) % P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P25519 - 2, P25519) % P25519).to_bytes(32, "little")


def x25519_base(scalar):
    return x25519(scalar, (9).to_bytes(32, "little"))


def salsa20_rounds(state):  # 20 rounds (Bernstein, "The Salsa20 family of stream ciphers")
    x = list(state)

    def quarter(a, b, c, d):
        def rotl(v, n):
            v &= 0xFFFFFFFF
            return ((v << n) | (v >> (32 - n))) & 0xFFFFFFFF
        x[b] ^= rotl(x[a] + x[d], 7)
        x[c] ^= rotl(x[b] + x[a], 9)
        x[d] ^= rotl(x[c] + x[b], 13)
        x[a] ^= rotl(x[d] + x[c], 18)

    for _ in range(10):
        quarter(0, 4, 8, 12), quarter(5, 9, 13, 1), quarter(10, 14, 2, 6), quarter(15, 3, 7, 11)
        quarter(0, 1, 2, 3), quarter(5, 6, 7, 4), quarter(10, 11, 8, 9), quarter(15, 12, 13, 14)
    return x


def salsa20_state(key, words16):
    k = struct.unpack("<8I", key)
    i = struct.unpack("<4I", words16)
    c = struct.unpack("<4I", b"expand 32-byte k")
    return [c[0], *k[:4], c[1], *i, c[2], *k[4:], c[3]]


def hsalsa20(key, in16):
    x = salsa20_rounds(salsa20_state(key, in16))
    return struct.pack("<8I", *(x[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)))


def xsalsa20_stream(key, nonce, size):
    sub = hsalsa20(key, nonce[:16])
    out = b""
    for block in range((size + 63) // 64):
        state = salsa20_state(sub, nonce[16:] + struct.pack("<Q", block))
        x = salsa20_rounds(state)
        out += struct.pack("<16I", *((a + b) & 0xFFFFFFFF for a, b in zip(x, state)))
    return out[:size]


def poly1305(key, msg):  # RFC 8439, section 2.5
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    acc = 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\1", "little")) * r % (2**130 - 5)
    return ((acc + int.from_bytes(key[16:], "little")) % 2**128).to_bytes(16, "little")


def box_key(own_secret, peer_public):  # crypto_box_beforenm (1.7)
    return hsalsa20(x25519(own_secret, peer_public), bytes(16))


def secretbox(key, nonce, plain):  # crypto_box_easy_afternm: tag (16) || XSalsa20(plain)
    stream = xsalsa20_stream(key, nonce, 32 + len(plain))
    cipher = bytes(a ^ b for a, b in zip(plain, stream[32:]))
    return poly1305(stream[:32], cipher) + cipher


ED_Q = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, P25519 - 2, P25519) % P25519


def ed_add(p, q):  # extended coordinates (RFC 8032, section 5.1.4)
    a = (p[1] - p[0]) * (q[1] - q[0]) % P25519
    b = (p[1] + p[0]) * (q[1] + q[0]) % P25519
    c = 2 * p[3] * q[3] * ED_D % P25519
    d = 2 * p[2] * q[2] % P25519
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P25519, g * h % P25519, f * g % P25519, e * h % P25519)


def ed_mul(s, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = ed_add(q, p)
        p, s = ed_add(p, p), s >> 1
    return q


def ed_encode(p):
    zi = pow(p[2], P25519 - 2, P25519)
    x, y = p[0] * zi % P25519, p[1] * zi % P25519
    return (y | (x & 1) << 255).to_bytes(32, "little")


def ed_base():  # y = 4/5, x the even root (RFC 8032, sections 5.1 and 5.1.3)
    y = 4 * pow(5, P25519 - 2, P25519) % P25519
    xx = (y * y - 1) * pow(ED_D * y * y + 1, P25519 - 2, P25519) % P25519
    x = pow(xx, (P25519 + 3) // 8, P25519)
    if (x * x - xx) % P25519:
        x = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    assert (x * x - xx) % P25519 == 0
    x = x if x % 2 == 0 else P25519 - x
    return (x, y, 1, x * y % P25519)


ED_B = ed_base()


def ed_expand(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & (2**254 - 8) | 2**254
    return a, h[32:]


def ed_public(seed):
    return ed_encode(ed_mul(ed_expand(seed)[0], ED_B))


def ed_sign(seed, msg):  # RFC 8032, section 5.1.6: deterministic
    a, prefix = ed_expand(seed)
    public = ed_encode(ed_mul(a, ED_B))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % ED_Q
    big_r = ed_encode(ed_mul(r, ED_B))
    k = int.from_bytes(hashlib.sha512(big_r + public + msg).digest(), "little") % ED_Q
    return big_r + ((r + k * a) % ED_Q).to_bytes(32, "little")


Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def z85(data):  # ZeroMQ RFC 32
    out = ""
    for i in range(0, len(data), 4):
        v = int.from_bytes(data[i:i + 4], "big")
        out += "".join(Z85[v // 85**k % 85] for k in range(4, -1, -1))
    return out


# ---- protobuf, as 1.5 and 3.2.2 say the reference encodes ---------------------------------------


class Embedded(bytes):
    """An embedded message: written even when empty (Settlement.debtor and creditor, 3.2.2)."""


def varint(v):
    v %= 2**64  # a negative int64 is a 10-byte varint
    out = b""
    while True:
        out += bytes([v & 0x7F | (0x80 if v > 0x7F else 0)])
        v >>= 7
        if not v:
            return out


def encode(*fields):
    """Fields in ascending number; 0, false and empty values left out (proto3)."""
    out = b""
    for number, value in fields:
        if isinstance(value, (bool, int)):
            if value:
                out += varint(number << 3) + varint(int(value))
        else:
            value = value.encode() if isinstance(value, str) else value
            if value or isinstance(value, Embedded):
                out += varint(number << 3 | 2) + varint(len(value)) + value
    return out


# ---- the vectors of 1.13 -------------------------------------------------------------------------

SEED_A, BOX_A, SEED_B, BOX_B = bytes([1] * 32), bytes([0x41] * 32), bytes([2] * 32), bytes([0x42] * 32)
KEY_ID_A = blake2b(tag("corridor.key-id.v1") + ed_public(SEED_A), 16)
KEY_ID_B = blake2b(tag("corridor.key-id.v1") + ed_public(SEED_B), 16)
NONCE = bytes(range(24))


def next_keys_curve():  # key_announce_v2's CURVE key: secret 32 x 5b, written in Z85
    return z85(x25519_base(bytes([0x5B] * 32)))


def key_announce_body():  # 2.14, with the CURVE proof of 2.16
    sign_public, box_public, curve = ed_public(bytes([0x5A] * 32)), x25519_base(BOX_A), next_keys_curve()
    possession = ed_sign(bytes([0x5A] * 32), tag("corridor.key-announce.v1") + KEY_ID_A + sign_public
                         + box_public + curve.encode())
    proof_key = x25519(bytes([0x5B] * 32), x25519_base(BOX_B))
    curve_possession = hashlib.blake2b(tag("corridor.curve-possession.v1") + KEY_ID_A + sign_public
                                       + curve.encode(), key=proof_key, digest_size=32).digest()
    return encode((1, sign_public), (2, box_public), (3, curve), (4, possession), (5, curve_possession))


UETR, CANCEL_ID = "0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
RETURN_ID = "16fd2706-8baf-433b-82eb-8c7fada847da"


def settlement_body():  # 3.2, 3.8.1: the payment the three vectors after settlement_expiry_v2 name
    return encode((1, UETR), (2, "KAT-E2E-0001"), (3, 125000), (4, "RUB"), (5, "2026-01-01"),
                  (6, Embedded(encode((1, "KAT Debtor"), (2, "40702810000000000001")))),
                  (7, Embedded(encode((1, "KAT Creditor"), (2, "40702810900000000002")))),
                  (8, "KAT expiry"), (9, 1767225600000), (10, 1767225600000 + 86400000))


def settlement_hash():  # H2 (1.14)
    return blake2b(tag("corridor.settlement-body.v2") + settlement_body())


def return_body():  # 3.9: 500.00 of that payment back for AC04, bound to its body (field 6)
    return encode((1, RETURN_ID), (2, UETR), (3, 50000), (4, "RUB"), (5, "AC04"), (6, settlement_hash()))


def return_report_body():  # the payer accepts it; settlement_hash over the Return body
    return encode((1, RETURN_ID), (2, "ACSC"), (3, ""), (4, "RUB"), (5, -75000),
                  (6, blake2b(tag("corridor.settlement-body.v2") + return_body())))


FX_ID = "9b2e4f6a-1c3d-4e5f-8a7b-6c5d4e3f2a1b"
FX_PAY_UETR, FX_RECEIVE_UETR = "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f70", "5e7a9c1b-3d5f-4b7d-8f1a-3c5e7a9c1b3d"


def fx_body():  # 3.10: 10 000.00 RUB for 4 500 000.00 IRR, rate "450", expiring a day on
    return encode((1, FX_ID), (2, Embedded(encode((1, FX_PAY_UETR), (2, 1000000), (3, "RUB")))),
                  (3, Embedded(encode((1, FX_RECEIVE_UETR), (2, 450000000), (3, "IRR")))),
                  (4, fx_rate(1000000, 2, 450000000, 2)), (5, 1767225600000),
                  (6, 1767225600000 + 86400000))


def fx_rate(pay, pay_exponent, receive, receive_exponent):  # receive per pay, 6 places, half up
    num, den = receive * 10**pay_exponent * 10**6, pay * 10**receive_exponent
    q = (2 * num + den) // (2 * den)
    whole, frac = divmod(q, 10**6)
    frac = f"{frac:06d}".rstrip("0")
    return f"{whole}.{frac}" if frac else f"{whole}"


def fx_report_body():  # the acceptor books both legs: the trade's id, the FxProposal's body
    return encode((1, FX_ID), (2, "ACSC"), (3, ""), (4, "RUB"), (5, 1000000),
                  (6, blake2b(tag("corridor.settlement-body.v2") + fx_body())))


def cycle_statement(cycle):  # 3.11.1: A (BKRURUMM) first; grosses, net_first, count per currency
    def currency(code, first_to_second, second_to_first, count):
        return (6, Embedded(encode((1, code), (2, first_to_second), (3, second_to_first),
                                   (4, second_to_first - first_to_second), (5, count))))
    if cycle == 1:  # cut (14, 9): the payment, the return and both FX legs above, settled
        return encode((1, "BKRURUMM"), (2, "BMJIIRTH"), (3, 1), (4, 14), (5, 9),
                      currency("IRR", 0, 450000000, 1), currency("RUB", 125000 + 1000000, 50000, 3),
                      (7, bytes(range(32))), (8, 4))
    return encode((1, "BKRURUMM"), (2, "BMJIIRTH"), (3, 2), (4, 15), (5, 20),  # B proposed it
                  currency("RUB", 0, 250000, 2), (7, bytes(range(0x20, 0x40))), (8, 2))


def cycle_signature(seed, statement):  # H8 (3.11.7)
    return ed_sign(seed, tag("corridor.cycle.v1") + statement)


def cycle_proposal_body():  # A proposes cycle 1: the statement and A's signature
    return encode((1, cycle_statement(1)), (2, cycle_signature(SEED_A, cycle_statement(1))))


def cycle_answer_body():  # A countersigns B's proposal of cycle 2: no statement, no error
    return encode((1, 2), (2, cycle_signature(SEED_A, cycle_statement(2))))


def net_settlement_body():  # 3.11.3: A, cycle 1's net debtor in RUB, paid 10 750.00 by CLRG
    return encode((1, "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"), (2, 1), (3, "RUB"), (4, 1075000),
                  (5, "KAT-NET-0001"), (6, "CLRG"), (7, "KAT RTGS"), (8, 1767225600000 + 86400000),
                  (9, blake2b(tag("corridor.cycle-statement.v1") + cycle_statement(1))))


# 3.12: a ring of A (BKRURUMM), B (BMJIIRTH) and C (KZKZKZKA, seed 03), 1 000.00 RUB, an hour to
# vote. SETOFF_1 runs A, B, C (A's relay to B); SETOFF_2 runs A, C, B (A's decision to B, its
# predecessor).
SEED_C = bytes([3] * 32)
SETOFF_1 = ("c56a4180-65aa-42ec-a945-5fd21dec0538", (("BKRURUMM", SEED_A), ("BMJIIRTH", SEED_B),
                                                      ("KZKZKZKA", SEED_C)))
SETOFF_2 = ("e2f8a1b4-7c3d-4e5f-9a6b-8c7d6e5f4a3b", (("BKRURUMM", SEED_A), ("KZKZKZKA", SEED_C),
                                                      ("BMJIIRTH", SEED_B)))


def setoff_terms(setoff):  # SetoffTerms (3.12.1): id, ring of (code, key id, key), the rest
    setoff_id, ring = setoff
    members = [(2, Embedded(encode((1, code), (2, blake2b(tag("corridor.key-id.v1") + ed_public(seed), 16)),
                                   (3, ed_public(seed))))) for code, seed in ring]
    return encode((1, setoff_id), *members, (3, "RUB"), (4, 100000), (5, 1767225600000),
                  (6, 1767225600000 + 3600000))


def setoff_hash(setoff):  # H13
    return blake2b(tag("corridor.setoff-terms.v1") + setoff_terms(setoff))


def setoff_ballot(setoff, position):  # SetoffBallot: a yes vote, not an asking round
    return encode((1, setoff_hash(setoff)), (2, position), (3, True), (4, ""), (5, 0))


def setoff_vote(setoff, position):  # SetoffVote: the ballot and H11 by the voter's key
    ballot = setoff_ballot(setoff, position)
    return Embedded(encode((1, ballot), (2, ed_sign(setoff[1][position][1],
                                                    tag("corridor.setoff-vote.v1") + ballot))))


def setoff_verdict(setoff):  # SetoffVerdict: commit
    return encode((1, setoff_hash(setoff)), (2, True), (3, ""))


def setoff_relay_body():  # 3.12.2: A proposes SETOFF_1 to B with its own yes vote
    terms = setoff_terms(SETOFF_1)
    return encode((1, terms), (2, ed_sign(SEED_A, tag("corridor.setoff.v1") + terms)),
                  (3, setoff_vote(SETOFF_1, 0)))


def setoff_decision_body():  # 3.12.3: A commits SETOFF_2 and tells B, with every yes vote
    terms, verdict = setoff_terms(SETOFF_2), setoff_verdict(SETOFF_2)
    return encode((1, terms), (2, ed_sign(SEED_A, tag("corridor.setoff.v1") + terms)),
                  (3, verdict), (4, ed_sign(SEED_A, tag("corridor.setoff-decision.v1") + verdict)),
                  *[(5, setoff_vote(SETOFF_2, i)) for i in range(3)])


ENVELOPES = {  # name: Inner.version, type, sequence, body, possible_duplicate
    "settlement": (1, 1, 1, lambda: b"KAT settlement body", False),
    "status_report": (1, 2, 2, lambda: b"KAT status", False),
    "retransmission": (1, 1, 1, lambda: b"KAT settlement body", True),
    "ack": (1, 6, 0, lambda: b"", False),
    "hello": (1, 7, 0, lambda: b"hello", False),
    "settlement_v2": (2, 1, 3, lambda: b"KAT settlement body", False),
    "status_report_v2": (2, 2, 4, lambda: b"KAT status v2", False),
    "hello_v2": (2, 7, 0, lambda: b"hello v2", False),
    "hello_echo_v2": (2, 7, 0, lambda: encode((1, 3), (2, 2), (3, 1), (6, 1000), (7, 7),
                                              (8, bytes([1, 2])), (9, 1), (10, 2000), (11, 5)), False),
    "key_announce_v2": (2, 8, 5, key_announce_body, False),
    "key_switch_v2": (2, 9, 6, lambda: encode((1, next_keys_curve()), (2, 3600)), False),
    "settlement_expiry_v2": (2, 1, 7, settlement_body, False),
    "status_report_pdng_v2": (2, 2, 8, lambda: encode((1, UETR), (2, "PDNG"), (3, ""), (4, "RUB"),
                                                      (5, 0), (6, settlement_hash())), False),
    "cancel_request_v2": (2, 10, 9, lambda: encode((1, CANCEL_ID), (2, UETR), (3, "CUST"),
                                                   (4, settlement_hash())), False),
    "cancel_answer_v2": (2, 11, 10, lambda: encode((1, CANCEL_ID), (2, UETR), (3, "CNCL"), (4, "CUST"),
                                                   (5, "RJCT"), (6, "CUST"), (7, settlement_hash())),
                         False),
    "return_v2": (2, 3, 11, return_body, False),
    "status_report_return_v2": (2, 2, 12, return_report_body, False),
    "fx_proposal_v2": (2, 12, 13, fx_body, False),
    "status_report_fx_v2": (2, 2, 14, fx_report_body, False),
    "cycle_proposal_v2": (2, 13, 15, cycle_proposal_body, False),
    "cycle_answer_v2": (2, 14, 16, cycle_answer_body, False),
    "net_settlement_v2": (2, 15, 17, net_settlement_body, False),
    "setoff_relay_v2": (2, 16, 18, setoff_relay_body, False),
    "setoff_decision_v2": (2, 17, 19, setoff_decision_body, False),
}


def seal(version, msg_type, sequence, body, duplicate):  # A to B, as 1.5 to 1.7 describe
    inner = encode((1, version), (2, KEY_ID_A), (3, KEY_ID_B), (4, msg_type), (5, sequence), (6, body))
    signed = encode((1, inner), (2, ed_sign(SEED_A, tag("corridor.message.v1") + inner)))
    transit = encode((1, signed), (2, duplicate))
    box = secretbox(box_key(BOX_A, x25519_base(BOX_B)), NONCE, transit)
    return encode((1, 1), (2, KEY_ID_A), (3, NONCE), (4, box))


def read_envelopes(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            name, _, wire = line.strip().partition(" ")
            out[name] = wire
    return out


here = os.path.dirname(__file__)
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "hashes.kat")
vectors = read_vectors(path)
failed = [name for name, fn in CONSTRUCTIONS.items() if fn(vectors[name]).hex() != vectors[name]["out"]]
for name in failed:
    print(f"check.py: {name}: computed {CONSTRUCTIONS[name](vectors[name]).hex()}, "
          f"the file says {vectors[name]['out']}", file=sys.stderr)
for name in ("cycle_statement_signature", "cycle_statement_hash"):  # the statement, from its fields
    given = field(vectors[name], "bytes" if name.endswith("signature") else "statement")
    if given != cycle_statement(1).hex():
        failed.append(name)
        print(f"check.py: {name}: the statement encodes as {cycle_statement(1).hex()}, the file "
              f"gives {given}", file=sys.stderr)
for name, given_field, want in (  # the set-off's bytes, from their fields (3.12.1)
        ("setoff_terms_signature", "bytes", setoff_terms(SETOFF_1)),
        ("setoff_terms_hash", "terms", setoff_terms(SETOFF_1)),
        ("setoff_vote_signature", "bytes", setoff_ballot(SETOFF_1, 1)),
        ("setoff_verdict_signature", "bytes", setoff_verdict(SETOFF_1))):
    if field(vectors[name], given_field) != want.hex():
        failed.append(name)
        print(f"check.py: {name}: the fields encode as {want.hex()}, the file gives "
              f"{field(vectors[name], given_field)}", file=sys.stderr)
print(f"check.py: {len(CONSTRUCTIONS) - len(set(failed))} of {len(CONSTRUCTIONS)} vectors match")

envelopes = read_envelopes(sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "envelope.kat"))
sealed_failed = []
for name, (version, msg_type, sequence, body, duplicate) in ENVELOPES.items():
    computed = seal(version, msg_type, sequence, body(), duplicate).hex()
    if envelopes.get(name) != computed:
        sealed_failed.append(name)
        print(f"check.py: envelope {name}: computed {computed}, the file says "
              f"{envelopes.get(name, '(nothing)')}", file=sys.stderr)
for name in sorted(set(envelopes) - set(ENVELOPES)):
    sealed_failed.append(name)
    print(f"check.py: envelope {name}: in the file but not checked here", file=sys.stderr)
every = set(ENVELOPES) | set(envelopes)
print(f"check.py: {len(every) - len(sealed_failed)} of {len(every)} envelopes reproduced")
sys.exit(1 if failed or sealed_failed else 0)
