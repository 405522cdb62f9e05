#!/usr/bin/env python3
"""Seed corpora for the fuzz harnesses (scripts/fuzz), from packets real NTP
implementations sent: testdata/vectors/real-implementations.json (hex; the same packets
as the pcapng captures in testdata/vectors/pcap). Plus a few hand-made hostile shapes.

Usage: Fuzz/make-seeds.py OUTDIR   -> OUTDIR/{codec,server,client}/seed-*
"""
import hashlib, json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "testdata", "vectors", "real-implementations.json")
# The client harness's outstanding request carries this transmit timestamp (ClientFuzz.swift):
# server responses are rewritten to echo it, so seeds start past the origin check.
CLIENT_TRANSMIT = bytes.fromhex("f2f0575db12a642b")


def real_packets():
    """(direction, bytes) of every captured packet."""
    return [(item["direction"], bytes.fromhex(item["hex"])) for item in json.load(open(VECTORS))]


def hostile_shapes(base):
    """Hand-made inputs a hostile sender would try, built on a real request."""
    shapes = [b"", b"\x1b", base[:47], bytes(48)]
    for mode in range(8):
        for version in range(8):
            shapes.append(bytes([version << 3 | mode]) + base[1:48])
    head = base[:48]
    field = lambda t, n: struct.pack(">HH", t, n) + bytes(max(0, n - 4))
    shapes += [
        head + field(0x0104, 16) + field(0x0204, 28),       # two fields, last ≥ 28
        head + field(0x0104, 15) + bytes(12),               # length not a multiple of 4
        head + field(0x0104, 12) + bytes(16),               # shorter than 16
        head + struct.pack(">HH", 0x0104, 400) + bytes(60), # overruns the packet
        head + field(0x0104, 16),                           # last field < 28 without MAC
        head + bytes(4), head + bytes(20), head + bytes(24),  # MAC-like trailers
        head + field(0x0104, 28) + bytes(20),               # field then MAC
        head + bytes(1500 - 48),
    ]
    return shapes


def write(directory, blobs):
    os.makedirs(directory, exist_ok=True)
    for blob in blobs:
        name = "seed-" + hashlib.sha1(blob).hexdigest()[:16]
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(blob)


def main():
    out = sys.argv[1]
    packets = real_packets()
    requests = [p for d, p in packets if d == "client->server"]
    responses = [p for d, p in packets if d == "server->client"]
    all_packets = [p for _, p in packets]
    hostile = hostile_shapes(requests[0] if requests else bytes([0x23]) + bytes(47))
    write(os.path.join(out, "codec"), all_packets + hostile)
    write(os.path.join(out, "server"), requests + responses + hostile)
    rewritten = [r[:24] + CLIENT_TRANSMIT + r[32:] for r in responses if len(r) >= 48]
    write(os.path.join(out, "client"), rewritten + responses + hostile)
    # Inputs that once broke a harness (Fuzz/regressions/HARNESS/*): run again every time.
    for harness in ("codec", "server", "client"):
        directory = os.path.join(HERE, "regressions", harness)
        if os.path.isdir(directory):
            write(os.path.join(out, harness), [open(os.path.join(directory, n), "rb").read() for n in sorted(os.listdir(directory))])
    print("seeds: %d captured packets -> codec %d, server %d, client %d files in %s" % (
        len(packets), len(os.listdir(os.path.join(out, "codec"))), len(os.listdir(os.path.join(out, "server"))),
        len(os.listdir(os.path.join(out, "client"))), out))


if __name__ == "__main__":
    main()
