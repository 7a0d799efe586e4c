#!/usr/bin/env python3
"""Drives a Stockade node's RESP port with the `redis` package from PyPI and with raw sockets.

Usage: resp_clients.py PORT ADMIN_TOKEN CHECKOUT_TOKEN
Prints one line per check and ends with "N passed, M failed"; exits 1 if any failed.
"""
import socket
import sys
import uuid

import redis

port, admin_token, checkout_token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
run = uuid.uuid4().hex[:8]
passed = failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def field(reply, key):
    """A field of a reply: a dict in RESP3, a flat key/value list in RESP2."""
    if isinstance(reply, dict):
        return reply.get(key)
    pairs = dict(zip(reply[0::2], reply[1::2]))
    return pairs.get(key)


def raw_exchange(payload):
    """Sends bytes on a fresh connection; returns everything the server sent until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


admin = redis.Redis(port=port, password=admin_token, protocol=2, decode_responses=True)
sku = f"py-{run}"
admin.execute_command("STOCK.SET", sku, "yiwu", 100000)

for protocol in (2, 3):
    client = redis.Redis(port=port, password=checkout_token, protocol=protocol, decode_responses=True)
    check(f"resp{protocol} ping", client.ping() is True)
    held = client.execute_command("RESERVE", f"{run}-c{protocol}", "o-1", "east", 60, 0, sku, 2)
    check(f"resp{protocol} reserve is a {'map' if protocol == 3 else 'flat array'}",
          isinstance(held, dict if protocol == 3 else list), repr(held))
    check(f"resp{protocol} reserve held", field(held, "status") == "held", repr(held))
    check(f"resp{protocol} reserve has a token", isinstance(field(held, "token"), int), repr(held))
    confirmed = client.execute_command("CONFIRM", f"{run}-c{protocol}")
    check(f"resp{protocol} reserve -> confirm", field(confirmed, "status") == "confirmed", repr(confirmed))
    client.execute_command("RESERVE", f"{run}-r{protocol}", "o-2", "east", 60, 0, sku, 1)
    released = client.execute_command("RELEASE", f"{run}-r{protocol}")
    check(f"resp{protocol} reserve -> release", field(released, "status") == "released", repr(released))
    try:
        client.execute_command("RESERVE", f"{run}-r{protocol}", "o-2", "east", 60, 0, sku, 5)
        check(f"resp{protocol} changed replay refused", False, "no error")
    except redis.ResponseError as error:
        check(f"resp{protocol} changed replay refused", str(error).startswith("IDEMPOTENCY_CONFLICT"), str(error))

    pipe = client.pipeline(transaction=False)
    ids = [f"{run}-p{protocol}-{number}" for number in range(1000)]
    for reservation_id in ids:
        pipe.execute_command("RESERVE", reservation_id, "o-p", "east", 60, 0, sku, 1)
    replies = pipe.execute()
    in_order = [field(reply, "reservationId") for reply in replies] == ids
    check(f"resp{protocol} 1,000 pipelined reserves answered in order", in_order and len(replies) == 1000)
    check(f"resp{protocol} every pipelined reserve held", all(field(reply, "status") == "held" for reply in replies))
    client.close()

# The node's own view agrees: 2 confirmed per protocol and 1,000 held per protocol.
rows = admin.execute_command("SKU", sku)
row = field(rows, "warehouses")[0]
check("stock row adds up", (field(row, "held"), field(row, "sold")) == (2000, 4), repr(row))

# Bad frames: each gets its protocol error and a closed connection; another connection serves on.
watcher = redis.Redis(port=port, password=checkout_token, decode_responses=True)
bad_frames = {
    "malformed bulk length": (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    "oversize bulk string": (b"*1\r\n$70000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    "over-long array": (b"*100000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    "not a bulk string": (b"*1\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
}
for name, (payload, expected) in bad_frames.items():
    answer = raw_exchange(b"PING\r\n" + payload + b"PING\r\n")
    check(f"{name} gets its error, then the connection closes", answer == b"+PONG\r\n" + expected, repr(answer))
    check(f"another connection serves after {name}", watcher.ping() is True)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
