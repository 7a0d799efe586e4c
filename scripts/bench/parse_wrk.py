"""Prints "requests/s<SEP>p50 ms<SEP>p99 ms<SEP>non-2xx" from one wrk --latency output file.

Usage: python3 scripts/bench/parse_wrk.py FILE [SEPARATOR]   (separator: a space by default)
"""
import re
import sys

text = open(sys.argv[1]).read()
separator = sys.argv[2] if len(sys.argv) > 2 else " "


def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
print(separator.join([f"{rps:.0f}", f"{ms('50%'):.2f}", f"{ms('99%'):.2f}", bad.group(1) if bad else "0"]))
