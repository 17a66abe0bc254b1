"""The container-side schema (algorithm/hyperparameters.py): defaults, bounds, string parsing."""

import pytest

from algorithm.hyperparameters import (
    HyperparameterError,
    Hyperparameters,
    format_value,
    schema,
)

BUILTIN_DEFAULTS = {
    "num_training_samples": None,
    "base_network": "vgg-16",
    "use_pretrained_model": 1,
    "epochs": 30,
    "learning_rate": 0.001,
    "lr_scheduler_step": (),
    "lr_scheduler_factor": 0.1,
    "mini_batch_size": 32,
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "image_shape": 300,
    "label_width": 350,
    "nms_threshold": 0.45,
    "overlap_threshold": 0.5,
    "freeze_layer_pattern": None,
    "kv_store": None,
    "early_stopping": False,
    "early_stopping_min_epochs": 10,
    "early_stopping_patience": 5,
    "early_stopping_tolerance": 0.0,
}
OUR_DEFAULTS = {"seed": None, "amp": False, "checkpoint_frequency": 1, "num_workers": None,
                "max_zoom_out": 4.0}

# (name, accepted raw value, parsed value) -- strings as SageMaker passes them.
ACCEPTED = [
    ("num_classes", "1", 1),
    ("num_classes", "20", 20),
    ("num_classes", 20, 20),
    ("num_classes", '"20"', 20),
    ("num_training_samples", "16551", 16551),
    ("num_training_samples", "", None),
    ("base_network", "vgg-16", "vgg-16"),
    ("base_network", '"resnet-50"', "resnet-50"),
    ("base_network", "ResNet-50", "resnet-50"),
    ("base_network", "mobilenet-v3-large", "mobilenet-v3-large"),
    ("use_pretrained_model", "0", 0),
    ("use_pretrained_model", 1, 1),
    ("epochs", "240", 240),
    ("epochs", "1", 1),
    ("learning_rate", "1", 1.0),
    ("learning_rate", "1e-3", 0.001),
    ("learning_rate", 0.004, 0.004),
    ("lr_scheduler_step", "80,160", (80, 160)),
    ("lr_scheduler_step", "10, 20", (10, 20)),
    ("lr_scheduler_step", '"80,160"', (80, 160)),
    ("lr_scheduler_step", "", ()),
    ("lr_scheduler_step", [3, 6], (3, 6)),
    ("lr_scheduler_factor", "0.5", 0.5),
    ("mini_batch_size", "64", 64),
    ("optimizer", "adam", "adam"),
    ("optimizer", "rmsprop", "rmsprop"),
    ("optimizer", "adadelta", "adadelta"),
    ("momentum", "1", 1.0),
    ("weight_decay", "0.0001", 0.0001),
    ("image_shape", "512", 512),
    ("image_shape", "300", 300),
    ("image_shape", "333", 333),
    ("label_width", "60", 60),
    ("nms_threshold", "1", 1.0),
    ("overlap_threshold", "0.7", 0.7),
    ("freeze_layer_pattern", "^(conv1_|conv2_).*", "^(conv1_|conv2_).*"),
    ("freeze_layer_pattern", "", None),
    ("kv_store", "dist_sync", "dist_sync"),
    ("kv_store", "dist_async", "dist_async"),
    ("early_stopping", "True", True),
    ("early_stopping", "true", True),
    ("early_stopping", "1", True),
    ("early_stopping", "False", False),
    ("early_stopping", "false", False),
    ("early_stopping", "0", False),
    ("early_stopping", True, True),
    ("early_stopping_min_epochs", "3", 3),
    ("early_stopping_patience", "2", 2),
    ("early_stopping_tolerance", "0", 0.0),
    ("early_stopping_tolerance", "1", 1.0),
    ("seed", "7", 7),
    ("amp", "true", True),
    ("checkpoint_frequency", "5", 5),
    ("num_workers", "0", 0),
    ("max_zoom_out", "1", 1.0),
    ("max_zoom_out", "2.5", 2.5),
]

# (name, rejected raw value, words the message must contain)
REJECTED = [
    ("num_classes", "0", ">= 1"),
    ("num_classes", "-3", ">= 1"),
    ("num_classes", "2.5", "integer"),
    ("num_classes", "twenty", "integer"),
    ("num_classes", True, "integer"),
    ("num_training_samples", "0", ">= 1"),
    ("base_network", "vgg-19", "one of: vgg-16, resnet-50, mobilenet-v3-large"),
    ("use_pretrained_model", "2", "one of: 0, 1"),
    ("use_pretrained_model", "yes", "one of: 0, 1"),
    ("epochs", "0", ">= 1"),
    ("learning_rate", "0", "(0, 1]"),
    ("learning_rate", "1.5", "(0, 1]"),
    ("learning_rate", "-0.1", "(0, 1]"),
    ("learning_rate", "nan", "(0, 1]"),
    ("learning_rate", "inf", "(0, 1]"),
    ("learning_rate", "fast", "number"),
    ("lr_scheduler_step", "20,10", "strictly increasing"),
    ("lr_scheduler_step", "10,10", "strictly increasing"),
    ("lr_scheduler_step", "0,10", "epochs start at 1"),
    ("lr_scheduler_step", "10,x", "'x'"),
    ("lr_scheduler_factor", "0", "(0, 1)"),
    ("lr_scheduler_factor", "1", "(0, 1)"),
    ("mini_batch_size", "0", ">= 1"),
    ("optimizer", "sdg", "one of: sgd, adam, rmsprop, adadelta"),
    ("momentum", "0", "(0, 1]"),
    ("momentum", "1.01", "(0, 1]"),
    ("weight_decay", "0", "(0, 1)"),
    ("weight_decay", "1", "(0, 1)"),
    ("image_shape", "299", ">= 300 for base_network=vgg-16"),
    ("image_shape", "big", "integer"),
    ("label_width", "6", ">= 7"),
    ("nms_threshold", "0", "(0, 1]"),
    ("nms_threshold", "1.1", "(0, 1]"),
    ("overlap_threshold", "0", "(0, 1]"),
    ("freeze_layer_pattern", "conv(", "regular expression"),
    ("kv_store", "local", "one of: dist_sync, dist_async"),
    ("early_stopping", "maybe", "True or False"),
    ("early_stopping", "2", "True or False"),
    ("early_stopping_min_epochs", "0", ">= 1"),
    ("early_stopping_patience", "0", ">= 1"),
    ("early_stopping_tolerance", "-0.1", "[0, 1]"),
    ("early_stopping_tolerance", "1.1", "[0, 1]"),
    ("seed", "-1", ">= 0"),
    ("amp", "fp16", "True or False"),
    ("checkpoint_frequency", "0", ">= 1"),
    ("num_workers", "-1", ">= 0"),
    ("max_zoom_out", "0.5", "[1, 16]"),
]


def test_required_num_classes_only():
    rows = {info.name: info for info in schema()}
    assert [name for name, info in rows.items() if info.required] == ["num_classes"]


def test_builtin_defaults():
    hp = Hyperparameters.from_sagemaker({"num_classes": "20"})
    for name, default in BUILTIN_DEFAULTS.items():
        assert getattr(hp, name) == default, name
    for name, default in OUR_DEFAULTS.items():
        assert getattr(hp, name) == default, name


def test_schema_lists_every_builtin_name_and_marks_ours():
    rows = {info.name: info for info in schema()}
    assert set(rows) == set(BUILTIN_DEFAULTS) | set(OUR_DEFAULTS) | {"num_classes"}
    assert {n for n, info in rows.items() if not info.rule.builtin} == set(OUR_DEFAULTS)
    assert all(info.rule.help for info in rows.values())


@pytest.mark.parametrize(("name", "raw", "expected"), ACCEPTED)
def test_accepts(name, raw, expected):
    values = {"num_classes": "3", name: raw}
    if name == "image_shape":
        values["base_network"] = "vgg-16"
    hp = Hyperparameters.from_sagemaker(values)
    assert getattr(hp, name) == expected


@pytest.mark.parametrize(("name", "raw", "words"), REJECTED)
def test_rejects_with_field_value_and_allowed(name, raw, words):
    values = {"num_classes": "3", name: raw}
    with pytest.raises(HyperparameterError) as caught:
        Hyperparameters.from_sagemaker(values)
    problems = caught.value.problems
    assert [p.name for p in problems] == [name]
    text = str(problems[0])
    assert text.startswith(f"{name}={raw!r}: ")
    assert words in text


def test_mobilenet_accepts_small_inputs_but_not_below_its_floor():
    hp = Hyperparameters.from_sagemaker(
        {"num_classes": "3", "base_network": "mobilenet-v3-large", "image_shape": "160"})
    assert hp.image_shape == 160
    with pytest.raises(HyperparameterError, match=r"image_shape='100': must be an integer >= 128"):
        Hyperparameters.from_sagemaker(
            {"num_classes": "3", "base_network": "mobilenet-v3-large", "image_shape": "100"})


def test_every_problem_reported_at_once():
    with pytest.raises(HyperparameterError) as caught:
        Hyperparameters.from_sagemaker({
            "learning_rate": "2", "optimizer": "sdg", "lerning_rate": "0.1",
            "early_stopping": "maybe",
        })
    names = [p.name for p in caught.value.problems]
    assert names == ["lerning_rate", "num_classes", "learning_rate", "optimizer",
                     "early_stopping"]
    assert "did you mean 'learning_rate'?" in str(caught.value.problems[0])
    assert str(caught.value).startswith("5 invalid hyperparameters: ")


def test_unknown_name_without_close_match():
    with pytest.raises(HyperparameterError, match="unknown hyperparameter \\(see"):
        Hyperparameters.from_sagemaker({"num_classes": "3", "zzzz": "1"})


def test_sagemaker_framework_names_are_ignored():
    hp = Hyperparameters.from_sagemaker({
        "num_classes": "3",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://bucket/source.tar.gz"',
        "sagemaker_torch_distributed_enabled": "true",
    })
    assert hp.num_classes == 3


def test_direct_construction_parses_and_checks():
    hp = Hyperparameters(num_classes="4", lr_scheduler_step="2,4")
    assert hp.num_classes == 4 and hp.lr_scheduler_step == (2, 4)
    with pytest.raises(HyperparameterError, match="num_classes=0"):
        Hyperparameters(num_classes=0)


def test_round_trip_through_sagemaker_strings():
    hp = Hyperparameters.from_sagemaker({
        "num_classes": "20", "base_network": "resnet-50", "lr_scheduler_step": "80,160",
        "early_stopping": "True", "freeze_layer_pattern": "^conv1", "image_shape": "512",
        "learning_rate": "0.004", "seed": "3", "amp": "true",
    })
    strings = hp.to_sagemaker()
    assert all(isinstance(v, str) for v in strings.values())
    assert strings["lr_scheduler_step"] == "80,160"
    assert strings["early_stopping"] == "True"
    assert "kv_store" not in strings  # unset values are left out
    assert Hyperparameters.from_sagemaker(strings) == hp


def test_format_value():
    assert format_value(True) == "True"
    assert format_value((80, 160)) == "80,160"
    assert format_value(0.001) == "0.001"
