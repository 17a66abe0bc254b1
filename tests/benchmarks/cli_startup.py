"""CLI start-up time: `detectctl ... --help` against `python -c "import boto3"`, same run.

Each command is run as a fresh process, interleaved with the boto3 import so that both see the
same machine load; the figure is the ratio of medians. Goal: <= 0.6 for every command.

    python tests/benchmarks/cli_startup.py [--runs 21] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 0.6
# Commands measured; a command that this checkout does not have yet is reported and skipped.
COMMANDS = [
    ["--help"],
    ["train", "--help"],
    ["logs", "--help"],
]


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _available(cli: str, args: list[str]) -> bool:
    return subprocess.run([cli, *args], capture_output=True).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    cli = shutil.which("detectctl", path=str(Path(sys.executable).parent)) or shutil.which(
        "detectctl")
    if cli is None:
        sys.exit("detectctl is not installed in this environment (pip install -e .)")
    peer = [sys.executable, "-c", "import boto3"]
    commands = [c for c in COMMANDS if _available(cli, c)]
    skipped = [c for c in COMMANDS if c not in commands]

    for argv in [peer] + [[cli, *c] for c in commands]:  # warm the OS file cache
        _time(argv)
    samples: dict[str, list[float]] = {"import boto3": []}
    for command in commands:
        samples["detectctl " + " ".join(command)] = []
    for _ in range(args.runs):
        samples["import boto3"].append(_time(peer))
        for command in commands:
            samples["detectctl " + " ".join(command)].append(_time([cli, *command]))

    baseline = statistics.median(samples["import boto3"])
    rows = []
    print(f"{'command':<28} {'median ms':>10} {'ratio':>7}  goal <= {GOAL}")
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / baseline
        rows.append({"command": name, "median_s": median, "ratio_to_boto3": ratio,
                     "runs": len(values)})
        verdict = "" if name == "import boto3" else ("met" if ratio <= GOAL else "MISSED")
        print(f"{name:<28} {median * 1000:>10.1f} {ratio:>7.2f}  {verdict}")
    for command in skipped:
        print(f"detectctl {' '.join(command)}: not available in this checkout, skipped")
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version.split()[0], "results": rows},
                                        indent=2) + "\n")
    return 0 if all(r["ratio_to_boto3"] <= GOAL for r in rows[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
