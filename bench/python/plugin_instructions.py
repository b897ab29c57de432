#!/usr/bin/env python3
"""Counts the instructions the ADX plugin's compiled wasm executes per message.

Timings on a shared machine move by more than most changes to the plugin; instruction counts
do not. This runs `dataflow-host demo --messages N` under valgrind's callgrind, keeps only the
code wasmtime compiled from the plugin (callgrind sees it as addresses outside any file), and
names it through the perf map the host writes with DATAFLOW_WASM_PROFILER=perfmap.

    python3 bench/python/plugin_instructions.py target/release/dataflow-host [--messages 20000]

Needs valgrind (`apt-get install valgrind`). Takes about a minute (Cranelift compiles the
plugin under valgrind first). Only the standard library is used.
"""

import argparse
import bisect
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

LINE = re.compile(r"\s*([\d,]+) \(.*?\)\s+(.*)")
JIT = re.compile(r"\?\?\?:0x([0-9a-f]+) \[\?\?\?\]")
HASH = re.compile(r"::h[0-9a-f]{16}")


def demangle(name):
    """`wasm[0]::function[141]::_ZN15adx_destination4scan11scan_objectE` → `adx_destination::scan::scan_object`
    (Rust's legacy mangling, which the perf map keeps; the hash is dropped)."""
    start = name.find("_ZN")
    if start < 0:
        return name
    rest, parts = name[start + 3:], []
    while rest and rest[0].isdigit():
        digits = len(rest) - len(rest.lstrip("0123456789"))
        size = int(rest[:digits])
        parts.append(rest[digits:digits + size])
        rest = rest[digits + size:]
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    text = "::".join(parts)
    for code, char in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("..", "::")):
        text = text.replace(code, char)
    return text or name


def perf_map(pid):
    """(start, size, name) of every function in /tmp/perf-<pid>.map, sorted by start."""
    entries = []
    with open(f"/tmp/perf-{pid}.map") as f:
        for line in f:
            start, size, name = line.rstrip("\n").split(" ", 2)
            entries.append((int(start, 16), int(size, 16), demangle(HASH.sub("", name))))
    entries.sort()
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", help="the dataflow-host binary")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--top", type=int, default=20, help="functions to list")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="plugin-instructions-") as work:
        out = os.path.join(work, "callgrind.out")
        before = set(glob.glob("/tmp/perf-*.map"))
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--smc-check=all-non-file",
             f"--callgrind-out-file={out}",
             args.host, "demo", "--messages", str(args.messages), "--rows", "1"],
            env={**os.environ, "DATAFLOW_WASM_PROFILER": "perfmap", "DATAFLOW_LOG": "warn"},
            capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"the demo under valgrind failed:\n{run.stderr[-2000:]}")
        if f"rows ingested      {args.messages}" not in run.stdout:
            sys.exit(f"the demo did not ingest {args.messages} rows:\n{run.stdout}")
        maps = sorted(set(glob.glob("/tmp/perf-*.map")) - before)
        if len(maps) != 1:
            sys.exit(f"expected one new perf map in /tmp, found {maps}")
        pid = maps[0].removeprefix("/tmp/perf-").removesuffix(".map")
        functions = perf_map(pid)
        os.remove(maps[0])
        starts = [f[0] for f in functions]
        annotated = subprocess.run(["callgrind_annotate", "--threshold=100", out],
                                   capture_output=True, text=True, check=True).stdout
        inclusive = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                                   capture_output=True, text=True, check=True).stdout
    # The plugin's bulk-memory instructions run in the host (wasmtime's libcalls), outside
    # the JIT code: counted with everything they call.
    in_host = 0
    for line in inclusive.splitlines():
        m = LINE.match(line)
        if m and re.search(r"libcalls::raw::memory_(copy|fill) ", m.group(2) + " "):
            in_host += int(m.group(1).replace(",", ""))

    by_function = collections.Counter()
    total = 0
    for line in annotated.splitlines():
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        jit = JIT.match(m.group(2))
        if not jit:
            continue
        count, address = int(m.group(1).replace(",", "")), int(jit.group(1), 16)
        i = bisect.bisect_right(starts, address) - 1
        inside = i >= 0 and address < functions[i][0] + functions[i][1]
        by_function[functions[i][2] if inside else "(outside the perf map)"] += count
        total += count

    print(f"{total:,} wasm instructions for {args.messages} messages: "
          f"{total // args.messages:,} per message")
    print(f"plus {in_host:,} in the host for its memory.copy and memory.fill: "
          f"{in_host // args.messages:,} per message")
    for name, count in by_function.most_common(args.top):
        print(f"{count:>14,} {100 * count / total:5.1f} %  {name[:110]}")


if __name__ == "__main__":
    main()
