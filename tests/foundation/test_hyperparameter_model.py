"""The client-side pydantic model must agree with the container-side dataclass on every input."""

import re

import pytest
from pydantic import ValidationError

from algorithm.hyperparameters import HyperparameterError, schema
from algorithm.hyperparameters import Hyperparameters as Schema
from detectctl.errors import HyperparameterValidationError, UsageError
from detectctl.hyperparameters import Hyperparameters, load_file, validate
from tests.foundation.test_hyperparameter_schema import ACCEPTED, REJECTED


def _both(values):
    """(dataclass result or problem names, model result or problem names)."""
    try:
        left = Schema.from_sagemaker(values).to_dict()
    except HyperparameterError as exc:
        left = sorted(p.name for p in exc.problems)
    try:
        right = Hyperparameters.model_validate(values).model_dump()
    except ValidationError as exc:
        right = sorted(".".join(map(str, e["loc"])) for e in exc.errors())
    return left, right


CASES = [{"num_classes": "3", name: raw} for name, raw, _ in ACCEPTED + REJECTED] + [
    {},
    {"num_classes": "3", "base_network": "mobilenet-v3-large", "image_shape": "128"},
    {"num_classes": "3", "base_network": "mobilenet-v3-large", "image_shape": "127"},
    {"num_classes": "3", "base_network": "resnet-50", "image_shape": "200"},
    {"num_classes": "x", "learning_rate": "2", "optimizer": "sdg"},
    {"num_classes": "3", "lerning_rate": "0.1"},
]


@pytest.mark.parametrize("values", CASES)
def test_model_agrees_with_dataclass(values):
    left, right = _both(values)
    assert left == right


def test_fields_and_defaults_come_from_the_schema():
    fields = Hyperparameters.model_fields
    rows = schema()
    assert list(fields) == [info.name for info in rows]
    for info in rows:
        assert fields[info.name].is_required() == info.required
        if not info.required:
            assert fields[info.name].default == info.default
        assert fields[info.name].description == info.rule.help


def test_json_schema_carries_bounds_and_choices():
    js = Hyperparameters.model_json_schema()
    assert js["required"] == ["num_classes"]
    props = js["properties"]
    assert props["learning_rate"]["exclusiveMinimum"] == 0
    assert props["learning_rate"]["maximum"] == 1
    assert props["num_classes"]["minimum"] == 1
    assert props["base_network"]["enum"] == ["vgg-16", "resnet-50", "mobilenet-v3-large"]
    assert props["optimizer"]["default"] == "sgd"
    assert props["seed"]["x-builtin"] is False
    assert props["epochs"]["x-builtin"] is True
    assert js["additionalProperties"] is False


def test_unknown_name_gets_did_you_mean():
    with pytest.raises(ValidationError) as caught:
        Hyperparameters(num_classes=3, mini_batch=8)
    (error,) = caught.value.errors()
    assert error["loc"] == ("mini_batch",)
    assert error["msg"] == "unknown hyperparameter; did you mean 'mini_batch_size'?"


def test_reserved_names_rejected_on_the_client():
    with pytest.raises(ValidationError, match="reserved for SageMaker"):
        Hyperparameters(num_classes=3, sagemaker_program="x.py")


def test_string_values_parsed_like_the_container():
    hp = Hyperparameters(num_classes="20", early_stopping="true", lr_scheduler_step="80, 160",
                         base_network='"resnet-50"')
    assert (hp.num_classes, hp.early_stopping, hp.lr_scheduler_step, hp.base_network) == (
        20, True, (80, 160), "resnet-50")
    assert hp.to_schema() == Schema.from_sagemaker(hp.to_sagemaker())


def test_validate_collects_lines():
    with pytest.raises(HyperparameterValidationError) as caught:
        validate({"learning_rate": "2", "optimizer": "sdg"}, source="hp.yaml")
    assert caught.value.lines() == [
        "hp.yaml: num_classes: is required: an integer >= 1",
        "hp.yaml: learning_rate='2': must be a number in (0, 1]",
        "hp.yaml: optimizer='sdg': must be one of: sgd, adam, rmsprop, adadelta",
    ]
    assert caught.value.exit_code == 2


def test_load_file_yaml_and_json(tmp_path):
    (tmp_path / "hp.yaml").write_text("num_classes: 20\nlr_scheduler_step: '80,160'\n")
    (tmp_path / "hp.json").write_text('{"num_classes": "20", "epochs": "240"}')
    assert load_file(tmp_path / "hp.yaml") == {"num_classes": 20, "lr_scheduler_step": "80,160"}
    assert load_file(tmp_path / "hp.json") == {"num_classes": "20", "epochs": "240"}


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ("- 1\n- 2\n", ".yaml", "expected a map of hyperparameter names to values, got list"),
    ("a: [\n", ".yaml", "not valid YAML (line 2"),
    ('{"a": ', ".json", "not valid JSON (line 1"),
])
def test_load_file_errors_name_the_file(tmp_path, text, suffix, message):
    path = tmp_path / f"hp{suffix}"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        load_file(path)
    assert str(path) in str(caught.value)
