#!/usr/bin/env python3
"""Reads `redis-cli SKU <sku>` output (RESP2, one element per line) on stdin and says whether any
stock row is oversold (held + sold + allotted > total). Usage: redis-cli … SKU s | rows_check.py s"""
import sys

words = sys.stdin.read().split()
rows, i = [], 0
while i < len(words):
    if words[i] == "allotted":
        rows.append(dict(zip(words[i:i + 12:2], words[i + 1:i + 12:2])))
        i += 12
    else:
        i += 1
bad = [r for r in rows if int(r["held"]) + int(r["sold"]) + int(r["allotted"]) > int(r["total"])]
held = sum(int(r["held"]) for r in rows)
print(f"  {sys.argv[1]}: {'OVERSOLD ' + repr(bad) if bad else 'nothing oversold'} ({held} held in {len(rows)} rows)")
sys.exit(1 if bad else 0)
