"""Processes that outlive the command that starts them: a job's supervisor, an endpoint's server.

``spawn_detached(command, log=..., cwd=...)`` runs ``python -m detectctl.local.processes``,
which starts ``command`` in a session of its own (its own process group, no terminal; a Ctrl-C
in the caller's terminal does not reach it), its output appended to ``log``, prints the child's
pid and start time, and exits. The command is thus nobody's child here: it never lingers as a
zombie of the caller, and it runs on when the caller exits.

With ``block_stop_signals``, SIGTERM, SIGINT and SIGHUP reach the command blocked (a signal mask
is inherited across exec): the command unblocks them once it has its handlers, so a stop sent
right after the start is not lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from detectctl.errors import DetectctlError
from detectctl.local.state import process_start

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def spawn_detached(command: Sequence[str], *, log: Path, cwd: Path,
                   env: Optional[Mapping[str, str]] = None,
                   block_stop_signals: bool = False) -> dict[str, int]:
    """Start ``command`` detached; ``{"Pid", "Start"}`` of the process it runs in."""
    options = ["--block"] if block_stop_signals else []
    done = subprocess.run(
        [sys.executable, "-m", "detectctl.local.processes", *options, str(log), str(cwd), "--",
         *command], env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL,
        capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DetectctlError(f"could not start {command[0]}: {reason}")
    return json.loads(done.stdout)


def code_path() -> str:
    """The folders that hold the ``detectctl`` and ``algorithm`` packages this process runs,
    for the supervisor and the hosts to import the same code."""
    import algorithm
    import detectctl

    folders = dict.fromkeys(str(Path(m.__file__).resolve().parent.parent)
                            for m in (detectctl, algorithm))
    return os.pathsep.join([*folders, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def main(argv: list[str]) -> int:
    block = argv[:1] == ["--block"]
    if block:
        argv = argv[1:]
    log, cwd, separator, *command = argv
    if separator != "--" or not command:
        sys.stderr.write("usage: python -m detectctl.local.processes [--block] LOG CWD -- "
                         "COMMAND...\n")
        return 2
    if block:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    with open(log, "ab") as out:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 close_fds=True, cwd=cwd, env=os.environ)
    sys.stdout.write(json.dumps({"Pid": child.pid, "Start": process_start(child.pid) or 0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
