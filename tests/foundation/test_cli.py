"""The CLI skeleton, driven through its real entry point: exit codes and exact output."""

import json
import subprocess
import sys

import pytest

from detectctl import __version__
from detectctl.cli import main


@pytest.fixture
def run(capsys, monkeypatch):
    monkeypatch.delenv("DETECTCTL_DEBUG", raising=False)

    def invoke(*args):
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = capsys.readouterr()
        return exited.value.code, out, err

    return invoke


def test_version(run):
    assert run("--version") == (0, f"detectctl {__version__}\n", "")


def test_help_lists_commands(run):
    code, out, _ = run("--help")
    assert code == 0
    assert "Usage: detectctl [OPTIONS] COMMAND [ARGS]..." in out
    for command in ("hyperparameters", "instances"):
        assert f"  {command} " in out


def test_the_root_lists_each_command_with_the_help_it_gives_itself():
    from detectctl.cli.app import COMMANDS, load

    for name, (_, one_line) in COMMANDS.items():
        command = load(name)
        assert command.help.split("\n\n")[0].split() == one_line.split(), name
        for limit in (40, 60, 200):
            listed = type(command)(name=name, help=one_line)
            assert listed.get_short_help_str(limit) == command.get_short_help_str(limit), name


def test_a_run_imports_only_the_command_it_invokes():
    code = ("import sys\n"
            "from detectctl.cli import main\n"
            "try:\n"
            "    main(sys.argv[1:])\n"
            "except SystemExit:\n"
            "    pass\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('detectctl.cli.'))\n"
            "sys.stderr.write(' '.join(loaded))\n")

    def loaded(*args: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, check=True)
        return done.stderr.split()

    shared = ["detectctl.cli.app", "detectctl.cli.options", "detectctl.cli.output"]
    assert loaded("--help") == shared
    assert loaded("logs", "--help") == sorted([*shared, "detectctl.cli.follow",
                                               "detectctl.cli.logs", "detectctl.cli.session"])


def test_unknown_command_is_a_usage_error(run):
    code, _, err = run("bogus")
    assert code == 2
    assert "No such command 'bogus'" in err
    assert "Did you mean 'train'?" in run("trian")[2]


def test_hyperparameters_table(run):
    code, out, _ = run("hyperparameters")
    assert code == 0
    lines = out.splitlines()
    row = next(line for line in lines if line.split()[:1] == ["learning_rate"])
    assert row.split()[:2] == ["learning_rate", "0.001"]
    assert "a number in (0, 1]" in row
    assert "Initial learning rate." in row
    seed = next(line for line in lines if line.split()[:1] == ["seed"])
    assert " ours " in seed
    num_classes = next(line for line in lines if line.split()[:1] == ["num_classes"])
    assert "(required)" in num_classes


def test_hyperparameters_json_schema(run):
    code, out, _ = run("hyperparameters", "--json")
    assert code == 0
    js = json.loads(out)
    assert js["title"] == "Hyperparameters"
    assert js["required"] == ["num_classes"]
    assert js["properties"]["mini_batch_size"]["default"] == 32


def test_validate_valid_file(run, tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("num_classes: 20\nimage_shape: 512\nlr_scheduler_step: 80,160\n")
    assert run("hyperparameters", "validate", str(path)) == (
        0, f"{path}: valid (num_classes=20, image_shape=512, lr_scheduler_step=80,160)\n", "")


def test_validate_invalid_file_one_line_per_problem(run, tmp_path):
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({"num_classes": "0", "optimiser": "adam", "epochs": "ten"}))
    code, out, err = run("hyperparameters", "validate", str(path))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"error: {path}: optimiser='adam': unknown hyperparameter; did you mean 'optimizer'?",
        f"error: {path}: num_classes='0': must be an integer >= 1",
        f"error: {path}: epochs='ten': must be an integer >= 1",
    ]


def test_validate_json_output(run, tmp_path):
    path = tmp_path / "hp.yaml"
    path.write_text("num_classes: 3\nmomentum: 2\n")
    code, out, _ = run("hyperparameters", "validate", str(path), "--json")
    assert code == 2
    assert json.loads(out) == {"valid": False, "file": str(path),
                               "problems": ["momentum=2: must be a number in (0, 1]"]}
    path.write_text("num_classes: 3\n")
    code, out, _ = run("hyperparameters", "validate", str(path), "--json")
    assert code == 0
    assert json.loads(out)["hyperparameters"]["num_classes"] == "3"


def test_validate_missing_file(run, tmp_path):
    assert run("hyperparameters", "validate", str(tmp_path / "nope.yaml")) == (
        2, "", f"error: {tmp_path / 'nope.yaml'}: no such file\n")


def test_debug_shows_the_traceback(run, tmp_path):
    from detectctl.errors import UsageError

    with pytest.raises(UsageError):
        main(["hyperparameters", "validate", str(tmp_path / "nope.yaml"), "--debug"])


def test_instances_table(run):
    code, out, _ = run("instances")
    assert code == 0
    row = next(line for line in out.splitlines() if line.split()[:1] == ["ml.p3.8xlarge"])
    assert row.split() == ["ml.p3.8xlarge", "32", "244", "4", "x", "V100", "16", "GiB", "7.0",
                           "$14.688", "train,", "host"]
    c5 = next(line for line in out.splitlines() if line.split()[:1] == ["ml.c5.xlarge"])
    assert c5.split()[-1] == "host"
    assert "an estimate, not a bill" in out


def test_instances_json(run):
    code, out, _ = run("instances", "--json", "--gpu")
    assert code == 0
    rows = json.loads(out)
    assert all(r["gpus"] > 0 and r["training"] for r in rows)
    p2 = next(r for r in rows if r["name"] == "ml.p2.xlarge")
    assert p2 == {
        "name": "ml.p2.xlarge", "family": "p2", "vcpus": 4, "memory_gib": 61, "gpus": 1,
        "gpu_model": "K80", "gpu_memory_gib": 12, "compute_capability": "3.7",
        "price_per_hour": 1.125, "price_region": "us-east-1", "price_as_of": "2026-11",
        "training": True, "hosting": True,
    }


def test_instances_with_region_show_images(run):
    code, out, _ = run("instances", "--gpu", "--region", "eu-west-1", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["ml.p2.xlarge"]["training_image"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:1.12.1-gpu-py38")
    assert rows["ml.p3.2xlarge"]["inference_image"].endswith("pytorch-inference:2.6.0-gpu-py312")
    code, out, _ = run("instances", "--region", "eu-west-1")
    row = next(line for line in out.splitlines() if line.split()[:1] == ["ml.c5.xlarge"])
    assert row.split()[-2:] == ["-", "pytorch-inference:2.6.0-cpu-py312"]


def test_instances_unknown_region(run):
    assert run("instances", "--region", "eu-wset-1") == (
        2, "", "error: no SageMaker PyTorch images are published in region 'eu-wset-1' "
               "(did you mean eu-west-1?)\n")
