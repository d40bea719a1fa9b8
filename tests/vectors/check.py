#!/usr/bin/env python3
"""A second implementation of the BLAKE2b constructions of proto/PROTOCOL.md, written from the
specification alone, checked against tests/vectors/hashes.kat: key id, settlement content and
body hashes, channel entry hash, channel digest, journal row hash. (Ed25519 signatures need a
library the standard one lacks; tests/test_vectors.c checks those.)

usage: tests/vectors/check.py [tests/vectors/hashes.kat]   exit 0 when every vector matches
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


def body_hash(v):
    return blake2b(tag("corridor.settlement-body.v2") + bytes.fromhex(field(v, "body")))


def entry_hash(v):
    data = tag("corridor.channel-entry.v1")
    data += u8_text(field(v, "uetr")) + u8_text(field(v, "payer")) + u8_text(field(v, "payee"))
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
}

path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "hashes.kat")
vectors = read_vectors(path)
failed = [name for name, fn in CONSTRUCTIONS.items() if fn(vectors[name]).hex() != vectors[name]["out"]]
for name in failed:
    print(f"check.py: {name}: computed {CONSTRUCTIONS[name](vectors[name]).hex()}, "
          f"the file says {vectors[name]['out']}", file=sys.stderr)
print(f"check.py: {len(CONSTRUCTIONS) - len(failed)} of {len(CONSTRUCTIONS)} vectors match")
sys.exit(1 if failed else 0)
