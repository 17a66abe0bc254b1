"""The tiny training job under Python 3.8 / torch 1.12.1 / torchvision 0.13.1 (the P2 image's
stack), on one host and on two hosts as the local backend runs them; no warnings."""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest

from algorithm import artifact
from algorithm.metrics import METRIC_REGEXES
from tests.compat.support import assert_no_warnings, environment
from tests.training.jobs import make_job

pytestmark = pytest.mark.compat


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_one_host(one_host_job):
    root, result = one_host_job
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert_no_warnings(output)
    maps = re.findall(METRIC_REGEXES["validation:mAP"], result.stdout)
    assert len(maps) == 2, output
    assert "epoch 2/2: cross_entropy" in result.stdout
    assert not (root / "output" / "failure").exists()
    # What a P2 job writes loads in this (newer) stack too, as a newer serving image loads it.
    model, hp, classes = artifact.load(root / "model")
    assert (model.num_classes, hp.image_shape, classes) == (3, 128,
                                                            ["circle", "square", "triangle"])


def test_two_hosts(compat_python, tmp_path):
    """Two hosts as the local backend starts them: one tree and one process each, algo-1 the
    master on 127.0.0.1; each host's train.py launches its worker through torch.distributed.run
    and the two train with DDP over gloo."""
    hosts = ["algo-1", "algo-2"]
    port = str(_free_port())
    processes = {}
    for host in hosts:
        root = make_job(tmp_path / host, images=24, epochs="2")
        (root / "input" / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": host, "hosts": hosts}))
        processes[host] = subprocess.Popen(
            [str(compat_python), "-m", "algorithm.train"], cwd=root,
            env=environment(DETECTCTL_OPT_ML=str(root), DETECTCTL_MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=port, DETECTCTL_PROCS_PER_HOST="1"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = {}
    try:
        for host, process in processes.items():
            outputs[host] = process.communicate(timeout=300)[0]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    for host, process in processes.items():
        assert process.returncode == 0, f"{host}:\n{outputs[host]}"
        assert_no_warnings(outputs[host], host)
    first = outputs["algo-1"]
    assert "hosts ['algo-1', 'algo-2'], 1 process(es) per host" in first
    assert "all 2 model replicas are identical" in first
    assert len(re.findall(METRIC_REGEXES["validation:mAP"], first)) == 2, first
    artifact.load(tmp_path / "algo-1" / "model")
    assert not (tmp_path / "algo-2" / "model" / "model.pt").exists()
