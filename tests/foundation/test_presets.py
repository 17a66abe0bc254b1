"""The job presets shipped with detectctl: each validates, the four published configurations hold
the published settings (checked here against the announcement's values, not the files), a dry run
of each produces them, `detectctl presets` shows the cost bound train shows, and a preset, then
--config, then flags and --hp override one another in that order."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path

import pytest

from detectctl import costs, instances, presets, training
from detectctl.cli import main
from detectctl.errors import UsageError
from detectctl.hyperparameters import validate
from tests.aws.support import fake_weights

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/detectctl-sagemaker"

# SageMaker's built-in Object Detection algorithm, as published: SSD512 on VOC07+12 for 240
# epochs of sgd (momentum 0.9, weight decay 0.0005), lr x0.1 after epochs 80 and 160, from
# ImageNet weights; VOC2007 + VOC2012 trainval is 5,011 + 11,540 = 16,551 images.
VOC07_12_AT_512 = {
    "num_classes": "20", "num_training_samples": "16551", "use_pretrained_model": "1",
    "image_shape": "512", "epochs": "240", "optimizer": "sgd", "momentum": "0.9",
    "weight_decay": "0.0005", "lr_scheduler_step": "80,160", "lr_scheduler_factor": "0.1",
}
# name -> (instance type, base network, mini_batch_size, learning_rate)
PUBLISHED = {
    "voc07-vgg16-512-p3.8xlarge": ("ml.p3.8xlarge", "vgg-16", "64", "0.004"),
    "voc07-vgg16-512-p3.2xlarge": ("ml.p3.2xlarge", "vgg-16", "16", "0.0005"),
    "voc07-resnet50-512-p3.8xlarge": ("ml.p3.8xlarge", "resnet-50", "64", "0.002"),
    "voc07-resnet50-512-p3.2xlarge": ("ml.p3.2xlarge", "resnet-50", "16", "0.0005"),
}
QUICK_STARTS = ("voc07-resnet50-300-g4dn.xlarge", "synthetic-mobilenet-192-local")


def published(name: str) -> dict[str, str]:
    _, network, batch, learning_rate = PUBLISHED[name]
    return {**VOC07_12_AT_512, "base_network": network, "mini_batch_size": batch,
            "learning_rate": learning_rate}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No AWS account or detectctl settings from this machine; torchvision's weights stood in
    for, nothing downloaded."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "DETECTCTL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "detectctl.toml"))
    monkeypatch.setenv("DETECTCTL_HOME", str(tmp_path / "detectctl-home"))
    fake_weights(monkeypatch, tmp_path / "torch")


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def dry_run(capsys, *args: str) -> dict:
    code, out, err = run(capsys, "train", *args, "--role", ROLE, "--bucket", "B",
                         "--region", "us-east-1", "--dry-run")
    assert code == 0, err
    return json.loads(out)


def ours(request: dict) -> dict[str, str]:
    """The request's hyperparameters without those SageMaker's toolkit adds."""
    return {k: v for k, v in request["HyperParameters"].items() if not k.startswith("sagemaker_")}


def test_the_shipped_presets():
    assert sorted(presets.names()) == sorted([*PUBLISHED, *QUICK_STARTS])


@pytest.mark.parametrize("name", sorted([*PUBLISHED, *QUICK_STARTS]))
def test_every_preset_validates(name):
    preset = presets.get(name)
    validate(preset.hyperparameters, source=f"preset {name}")
    assert preset.description and "\n" not in preset.description
    if preset.local:
        assert preset.max_run_seconds is None and preset.cost() is None
    else:
        assert instances.get(preset.instance_type).can_train
        assert preset.cost().bound == costs.training(
            preset.instance_type, preset.instance_count, preset.max_run_seconds).bound


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_published_presets_hold_the_published_settings(name):
    preset = presets.get(name)
    assert (preset.instance_type, preset.instance_count) == (PUBLISHED[name][0], 1)
    strings = validate(preset.hyperparameters).to_sagemaker()
    assert {key: strings[key] for key in preset.hyperparameters} == published(name)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_a_dry_run_of_each_published_preset_requests_the_published_settings(name, capsys):
    request = dry_run(capsys, "--preset", name, "--train", "s3://b/t.rec")
    assert ours(request) == published(name)
    assert request["ResourceConfig"]["InstanceType"] == PUBLISHED[name][0]
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": presets.get(name).max_run_seconds}
    assert request["InputDataConfig"][-1]["ChannelName"] == "pretrained"


def test_a_dry_run_of_the_gpu_quick_start(capsys):
    request = dry_run(capsys, "--preset", "voc07-resnet50-300-g4dn.xlarge", "--train",
                      "s3://b/t.rec")
    assert ours(request) == {
        "num_classes": "20", "base_network": "resnet-50", "use_pretrained_model": "1",
        "image_shape": "300", "epochs": "30", "optimizer": "sgd", "learning_rate": "0.001",
        "momentum": "0.9", "weight_decay": "0.0005", "lr_scheduler_step": "10,20",
        "lr_scheduler_factor": "0.1", "mini_batch_size": "32", "amp": "True"}
    assert request["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3 * 3600}


def test_a_dry_run_of_the_cpu_quick_start_plans_a_local_job(capsys, tmp_path):
    data = tmp_path / "train.rec"
    data.write_bytes(b"")
    code, out, err = run(capsys, "train", "--preset", "synthetic-mobilenet-192-local",
                         "--train", str(data), "--dry-run")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["Hosts"] == ["algo-1"]
    assert plan["HyperParameters"] == {
        "num_classes": "3", "base_network": "mobilenet-v3-large", "use_pretrained_model": "0",
        "image_shape": "192", "epochs": "20", "optimizer": "adam", "learning_rate": "0.002",
        "mini_batch_size": "16", "lr_scheduler_step": "19", "num_workers": "1", "seed": "0"}


def test_a_sagemaker_preset_runs_locally_without_its_sagemaker_only_settings(capsys, tmp_path):
    """--instance local over a published preset: its hyperparameters are kept, its max-run
    (which bounds a SageMaker bill) is left out with a note instead of refusing the run."""
    data = tmp_path / "train.rec"
    data.write_bytes(b"")
    code, out, err = run(capsys, "train", "--preset", "voc07-vgg16-512-p3.2xlarge", "--instance",
                         "local", "--train", str(data), "--dry-run")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["Hosts"] == ["algo-1"]
    assert {k: plan["HyperParameters"][k] for k in published("voc07-vgg16-512-p3.2xlarge")} == \
        published("voc07-vgg16-512-p3.2xlarge")
    assert "note: left out preset voc07-vgg16-512-p3.2xlarge's max-run (110h 0m): a " \
        "SageMaker-only setting, and this job runs on the local backend" in err


def test_a_job_files_sagemaker_only_settings_are_left_out_locally_by_name(capsys, tmp_path):
    data = tmp_path / "train.rec"
    data.write_bytes(b"")
    config = tmp_path / "job.yaml"
    config.write_text("instance: ml.p3.2xlarge\nspot: true\nmax-run: 2h\n"
                      "hyperparameters:\n  num_classes: 3\n")
    code, _, err = run(capsys, "train", "--config", str(config), "--instance", "local",
                         "--train", str(data), "--dry-run")
    assert code == 0, err
    assert f"left out --config {config}'s spot (true)" in err
    assert f"left out --config {config}'s max-run (2h)" in err


def test_a_bad_hyperparameter_of_a_job_file_run_locally_still_names_the_file(capsys, tmp_path):
    data = tmp_path / "train.rec"
    data.write_bytes(b"")
    config = tmp_path / "job.yaml"
    config.write_text("max-run: 2h\nhyperparameters:\n  num_classes: 0\n")
    code, _, err = run(capsys, "train", "--config", str(config), "--instance", "local",
                       "--train", str(data), "--dry-run")
    assert code == 2
    assert err.splitlines()[-1] == (f"error: {config}: 1 invalid hyperparameter: num_classes=0: "
                                    "must be an integer >= 1")


def test_a_sagemaker_only_option_given_with_the_local_instance_is_still_refused(capsys, tmp_path):
    data = tmp_path / "train.rec"
    data.write_bytes(b"")
    code, _, err = run(capsys, "train", "--preset", "voc07-vgg16-512-p3.2xlarge", "--instance",
                         "local", "--max-run", "2h", "--train", str(data), "--dry-run")
    assert code == 2
    assert "--max-run does not apply to the local backend" in err
    assert "left out" not in err


def test_preset_then_config_then_flags_and_hp(capsys, tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text("count: 2\nmax-run: 10h\nhyperparameters:\n  epochs: 100\n"
                      "  learning_rate: 0.008\n")
    request = dry_run(capsys, "--preset", "voc07-vgg16-512-p3.8xlarge", "--config", str(config),
                      "--count", "3", "--hp", "epochs=50", "--train", "s3://b/t.rec")
    assert ours(request) == {**published("voc07-vgg16-512-p3.8xlarge"),
                             "learning_rate": "0.008",  # --config over the preset
                             "epochs": "50"}  # --hp over --config
    assert request["ResourceConfig"]["InstanceCount"] == 3  # --count over --config
    assert request["ResourceConfig"]["InstanceType"] == "ml.p3.8xlarge"  # the preset's
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 36000}  # --config's


def test_flags_override_the_preset(capsys):
    request = dry_run(capsys, "--preset", "voc07-resnet50-512-p3.2xlarge", "--instance",
                      "ml.g5.xlarge", "--max-run", "2h", "--hp", "use_pretrained_model=0",
                      "--train", "s3://b/t.rec")
    assert request["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert ours(request)["use_pretrained_model"] == "0"
    assert request["InputDataConfig"][-1]["ChannelName"] == "train"  # no weights needed


def test_a_preset_file_is_a_config_file(capsys, tmp_path):
    """A shipped preset copied out (description and all) works as --config."""
    copy = tmp_path / "mine.yaml"
    source = ROOT / "detectctl" / "data" / "presets" / "voc07-vgg16-512-p3.2xlarge.yaml"
    copy.write_text(source.read_text(encoding="utf-8"))
    from_config = dry_run(capsys, "--config", str(copy), "--train", "s3://b/t.rec",
                          "--name", "job-a")
    from_preset = dry_run(capsys, "--preset", "voc07-vgg16-512-p3.2xlarge", "--train",
                          "s3://b/t.rec", "--name", "job-a")
    assert from_config == from_preset


def test_an_unknown_preset_exits_2_naming_the_known_ones(capsys):
    code, out, err = run(capsys, "train", "--preset", "voc07-vgg16-512-p3.8xlarg",
                         "--train", "s3://b/t.rec", "--dry-run")
    assert (code, out) == (2, "")
    assert err == ("error: unknown preset 'voc07-vgg16-512-p3.8xlarg'; the presets are "
                   + ", ".join(presets.names()) + " (did you mean voc07-vgg16-512-p3.8xlarge?)\n")


def test_presets_lists_instance_count_price_and_the_cost_bound(capsys):
    code, out, err = run(capsys, "presets")
    assert (code, err) == (0, "")
    costs_table, descriptions = out.split("what it trains")
    rows = {line.split()[0]: line.split()[1:] for line in costs_table.splitlines()
            if line.strip() and line.split()[0] in presets.names()}
    assert rows["voc07-vgg16-512-p3.8xlarge"][:6] == [
        "ml.p3.8xlarge", "1", "$14.688", "28", "h", "$411.26"]
    assert rows["voc07-resnet50-300-g4dn.xlarge"][:6] == [
        "ml.g4dn.xlarge", "1", "$0.736", "3", "h", "$2.21"]
    assert rows["synthetic-mobilenet-192-local"][:5] == ["local", "1", "-", "-", "no"]
    for preset in presets.catalog():
        assert re.search(rf"^  {re.escape(preset.name)} +{re.escape(preset.description[:40])}",
                         descriptions, flags=re.M), preset.name


def test_presets_json(capsys):
    code, out, _ = run(capsys, "presets", "--json")
    assert code == 0
    listed = {entry["name"]: entry for entry in json.loads(out)}
    assert sorted(listed) == sorted(presets.names())
    bound = costs.training("ml.p3.8xlarge", 1, 28 * 3600).bound
    assert listed["voc07-vgg16-512-p3.8xlarge"] == {
        "name": "voc07-vgg16-512-p3.8xlarge",
        "description": presets.get("voc07-vgg16-512-p3.8xlarge").description,
        "instance_type": "ml.p3.8xlarge", "instance_count": 1, "max_run_seconds": 100800,
        "price_per_hour": 14.688, "cost_per_hour": 14.688, "cost_bound": round(bound, 2),
        "hyperparameters": {
            "num_classes": 20, "num_training_samples": 16551, "base_network": "vgg-16",
            "use_pretrained_model": 1, "image_shape": 512, "epochs": 240, "optimizer": "sgd",
            "learning_rate": 0.004, "momentum": 0.9, "weight_decay": 0.0005,
            "lr_scheduler_step": "80,160", "lr_scheduler_factor": 0.1, "mini_batch_size": 64}}
    local = listed["synthetic-mobilenet-192-local"]
    assert (local["instance_type"], local["max_run_seconds"], local["cost_bound"]) == (
        "local", None, None)


def test_the_sdk_plans_a_preset_as_the_cli_does(capsys):
    from detectctl.session import Session

    options = presets.get("voc07-resnet50-512-p3.8xlarge").training_options()
    session = Session(region="us-east-1", role=ROLE, bucket="B")
    planned = session.plan(offline=True, train="s3://b/t.rec", name="job-b", **options).request
    assert planned == dry_run(capsys, "--preset", "voc07-resnet50-512-p3.8xlarge", "--train",
                              "s3://b/t.rec", "--name", "job-b")


def test_the_presets_ship_in_the_package():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["detectctl"]
    folder = ROOT / "detectctl" / "data" / "presets"
    files = sorted(p.relative_to(ROOT / "detectctl").as_posix() for p in folder.iterdir())
    assert files == sorted(f"data/presets/{name}.yaml" for name in presets.names())
    for file in files:
        assert any(fnmatch.fnmatch(file, pattern) for pattern in patterns), file


def test_merge_job_files_layers_options_and_hyperparameters():
    merged = training.merge_job_files(
        {"instance": "ml.p3.2xlarge", "max_run": 3600, "hyperparameters": {"a": 1, "b": 2}},
        {"max-run": "2h", "description": "x", "hyperparameters": {"b": 3}})
    assert merged == {"instance": "ml.p3.2xlarge", "max_run": "2h", "description": "x",
                      "hyperparameters": {"a": 1, "b": 3}}


@pytest.mark.parametrize("text, problem", [
    ("description: x\ninstance: local\ncount: 1\nhyperparameters: {}\nspot: true\n",
     "unknown key 'spot'"),
    ("description: x\ninstance: local\ncount: 1\nmax-run: 1h\nhyperparameters: {}\n",
     "max-run is required for a SageMaker instance type, and refused for local"),
    ("description: x\ninstance: ml.g5.xlarge\ncount: 1\nhyperparameters: {}\n",
     "max-run is required"),
    ("description: |\n  two\n  lines\ninstance: local\ncount: 1\nhyperparameters: {}\n",
     "description must be one line"),
    ("description: x\ninstance: local\ncount: 0\nhyperparameters: {}\n",
     "count must be an integer >= 1"),
    ("description: x\ninstance: local\ncount: 1\n", "hyperparameters is required"),
    ("[a", "not valid YAML"),
])
def test_a_malformed_preset_file_is_named_with_its_problem(text, problem):
    with pytest.raises(UsageError, match=re.escape("preset bad: ") + ".*" + re.escape(problem)):
        presets.parse("bad", text)
