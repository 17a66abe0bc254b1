"""The /opt/ml contract, relocated under a temporary root."""

import json
import os

import pytest

from algorithm import checkpoints
from algorithm.container import (
    ContractError,
    Paths,
    ResourceConfig,
    read_hyperparameters,
    read_input_data_config,
    read_resource_config,
    write_failure,
)
from algorithm.distributed import (
    cpu_threads,
    from_environ,
    launch_command,
    needs_launch,
    procs_per_host,
)


@pytest.fixture
def paths(tmp_path):
    paths = Paths.from_environ({"DETECTCTL_OPT_ML": str(tmp_path)})
    paths.config_dir.mkdir(parents=True)
    return paths


def test_paths_default_to_opt_ml():
    paths = Paths.from_environ({})
    assert str(paths.hyperparameters_file) == "/opt/ml/input/config/hyperparameters.json"
    assert str(paths.channel("train")) == "/opt/ml/input/data/train"
    assert str(paths.pipe("train", 3)) == "/opt/ml/input/data/train_3"
    assert str(paths.failure_file) == "/opt/ml/output/failure"
    assert str(paths.checkpoints_dir) == "/opt/ml/checkpoints"
    assert str(paths.model_dir) == "/opt/ml/model"


def test_reads_the_three_config_files(paths):
    paths.hyperparameters_file.write_text(json.dumps({"num_classes": "3", "epochs": '"2"'}))
    paths.resource_config_file.write_text(json.dumps(
        {"current_host": "algo-2", "hosts": ["algo-10", "algo-2", "algo-1"],
         "network_interface_name": "eth0"}))
    paths.input_data_config_file.write_text(json.dumps({
        "train": {"ContentType": "application/x-recordio", "TrainingInputMode": "Pipe",
                  "RecordWrapperType": "RecordIO"},
        "validation": {"TrainingInputMode": "File"}}))
    assert read_hyperparameters(paths) == {"num_classes": "3", "epochs": '"2"'}
    resource = read_resource_config(paths)
    assert resource.hosts == ["algo-1", "algo-2", "algo-10"]
    assert (resource.host_rank, resource.master_host) == (1, "algo-1")
    channels = read_input_data_config(paths)
    assert channels["train"].input_mode == "Pipe"
    assert channels["train"].content_type == "application/x-recordio"
    assert channels["validation"].input_mode == "File"


def test_missing_files_mean_a_plain_single_host_run(paths):
    (paths.channel("train")).mkdir(parents=True)
    assert read_hyperparameters(paths) == {}
    assert read_resource_config(paths) == ResourceConfig()
    assert list(read_input_data_config(paths)) == ["train"]


def test_malformed_config_is_named(paths):
    paths.resource_config_file.write_text("{not json")
    with pytest.raises(ContractError, match=r"resourceconfig\.json: not valid JSON"):
        read_resource_config(paths)
    paths.resource_config_file.write_text(json.dumps({"current_host": "algo-3",
                                                      "hosts": ["algo-1"]}))
    with pytest.raises(ContractError, match="current_host 'algo-3' is not in hosts"):
        read_resource_config(paths)


def test_failure_file_is_bounded(paths):
    write_failure(paths, "x" * 5000)
    text = paths.failure_file.read_text()
    assert len(text) == 1025 and text.endswith("...\n")


def test_checkpoint_round_trip_is_atomic(paths):
    import torch

    state = {"epoch": 3, "model": {"w": torch.ones(2)}, "hyperparameters": {"epochs": "5"}}
    path = checkpoints.save(paths.checkpoints_dir, state)
    assert path.name == "checkpoint.pt"
    assert not list(paths.checkpoints_dir.glob("*.partial"))
    loaded = checkpoints.load(paths.checkpoints_dir)
    assert loaded["epoch"] == 3 and loaded["hyperparameters"] == {"epochs": "5"}
    assert torch.equal(loaded["model"]["w"], torch.ones(2))
    assert checkpoints.load(paths.root / "nowhere") is None


def test_distributed_context_and_launch_command():
    assert from_environ({}).world_size == 1
    ctx = from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                        "LOCAL_WORLD_SIZE": "2"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main) == (3, 4, 1, False)
    resource = ResourceConfig("algo-2", ["algo-1", "algo-2"])
    assert needs_launch(resource, 1, {})
    assert not needs_launch(resource, 1, {"RANK": "0", "WORLD_SIZE": "2"})
    assert not needs_launch(ResourceConfig(), 1, {})
    assert needs_launch(ResourceConfig(), 2, {})
    command = launch_command("algorithm.train", resource, 8, {})
    assert command[1:] == ["-m", "torch.distributed.run", "--nnodes=2", "--node_rank=1",
                           "--nproc_per_node=8", "--master_addr=algo-1", "--master_port=29500",
                           "-m", "algorithm.train"]
    local = launch_command("algorithm.train", resource, 2,
                           {"DETECTCTL_MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "4000"})
    assert "--master_addr=127.0.0.1" in local and "--master_port=4000" in local
    assert procs_per_host({"DETECTCTL_PROCS_PER_HOST": "2"}) == 2


def test_cpu_workers_share_the_hosts_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert cpu_threads(2, {}) == 8
    assert cpu_threads(32, {}) == 1
    assert cpu_threads(2, {"OMP_NUM_THREADS": "3"}) is None  # the user's choice stands
