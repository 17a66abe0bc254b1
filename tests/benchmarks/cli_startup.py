"""CLI start-up time: `detectctl ... --help` against `python -c "import boto3"`, same run.

Each command is run as a fresh process, interleaved with the boto3 import so that both see the
same machine load; the figure is the ratio of medians. Goal: <= 0.6 for every command. A
measured command that fails (any run) ends the benchmark with exit 2 and its output: a figure
is never reported without it.

    python tests/benchmarks/cli_startup.py [--runs 21] [--json results/cli_startup.json]
        [--cli PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import result_files  # noqa: E402

GOAL = 0.6
COMMANDS = [
    ["--help"],
    ["train", "--help"],
    ["logs", "--help"],
]
RESULT_FILES = ["cli_startup.json"]
RESULT_KEYS = {
    "runs": "int",
    "goal": "number",
    "results": [{"command": "str", "median_s": "number", "ratio_to_boto3": "number",
                 "runs": "int"}],
}


class CommandFailed(Exception):
    """A measured command exited with an error."""


def _time(argv: List[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise CommandFailed(f"`{' '.join(argv)}` failed (exit {done.returncode}); nothing was "
                            f"reported. Its error output:\n{done.stderr.strip()}")
    return elapsed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    parser.add_argument("--json", type=Path, default=result_files.RESULTS / "cli_startup.json",
                        help="where to write the figures (default: %(default)s)")
    parser.add_argument("--cli", help="the detectctl executable (default: the one beside this "
                                      "Python, else on the PATH)")
    args = parser.parse_args(argv)

    cli = args.cli or shutil.which("detectctl", path=str(Path(sys.executable).parent)) \
        or shutil.which("detectctl")
    if cli is None:
        sys.exit("detectctl is not installed in this environment (pip install -e .)")
    peer = [sys.executable, "-c", "import boto3"]
    names = ["import boto3"] + ["detectctl " + " ".join(c) for c in COMMANDS]
    argvs = [peer] + [[cli, *c] for c in COMMANDS]
    samples: dict[str, list[float]] = {name: [] for name in names}
    try:
        for command in argvs:  # warm the OS file cache
            _time(command)
        for _ in range(args.runs):
            for name, command in zip(names, argvs):
                samples[name].append(_time(command))
    except CommandFailed as failed:
        print(f"cli_startup: {failed}", file=sys.stderr)
        return 2

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
    result_files.write(args.json, {"runs": args.runs, "goal": GOAL, "results": rows},
                       RESULT_KEYS)
    return 0 if all(r["ratio_to_boto3"] <= GOAL for r in rows[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
