"""Random bytes, and mutations of valid files, through every reader (see tests/fuzz/support.py
for what each check runs and allows)."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import support

EXAMPLES = int(os.environ.get("DETECTCTL_FUZZ_EXAMPLES", "30"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Values that broke readers before: non-finite and huge numbers, numbers as JSON cannot hold
# them, deep nesting, wrong types. Raw JSON text, dropped in where a value goes.
NASTY = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e30", "1e15", "1e9", "4294967296",
         "9" * 400, "9" * 5000, "-1", "0", "0.5", "true", "null", '""', '"abc"', '"1e400"',
         '"nan"', '"\\u0000"', "[]", "{}", "[[1]]", '{"a": 1}', "[" * 3000 + "]" * 3000,
         '"' + "x" * 10000 + '"']

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
# Mostly the known-nasty values: a few dozen examples should meet each of them.
raw_values = st.one_of(st.sampled_from(NASTY), st.sampled_from(NASTY), json_values.map(json.dumps))


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) to a value of a JSON document."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_json(draw: st.DrawFn, doc: object, changes: int = 3) -> bytes:
    """``doc`` with up to ``changes`` values replaced by raw JSON text (or removed)."""
    doc = json.loads(json.dumps(doc))
    raws = {}
    for n in range(draw(st.integers(1, changes))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
            continue
        marker = f"@@{n}@@"
        parent[path[-1]] = marker
        raws[f'"{marker}"'] = draw(raw_values)
    text = json.dumps(doc)
    for marker, raw in raws.items():
        text = text.replace(marker, raw)
    return text.encode()


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with bytes flipped, inserted, removed, or cut short."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


def lines(docs: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(docs, min_size=1, max_size=3).map(lambda found: b"\n".join(found) + b"\n")


SPECIAL_FLOATS = [float("nan"), float("inf"), -float("inf"), 1e30, 1e9, 16777216.0, -1.0, 2.5,
                  350.0, 0.0]


@st.composite
def detection_labels(draw: st.DrawFn) -> list[float]:
    """Label arrays: the valid shape with values swapped for special floats, or anything."""
    label = [2.0, 5.0, 0.0, 0.1, 0.1, 0.5, 0.5]
    if draw(st.booleans()):
        return draw(st.lists(st.sampled_from(SPECIAL_FLOATS) | st.floats(width=32), max_size=12))
    for _ in range(draw(st.integers(1, 3))):
        label[draw(st.integers(0, len(label) - 1))] = draw(st.sampled_from(SPECIAL_FLOATS))
    return label


@fuzz
@given(st.binary(max_size=512) | mutated_bytes(support.valid_recordio()))
def test_recordio(data):
    support.check_recordio(data)


@fuzz
@given(detection_labels())
def test_recordio_labels(label):
    support.check_recordio(support.record(label))


@fuzz
@given(st.binary(max_size=128) | st.text(max_size=64).map(str.encode)
       | st.sampled_from([b"0\t0\n1\t999999999999999999999\n", b"0\t" + b"9" * 5000 + b"\n",
                          b"\xff\xfe0\t0\n"]))
def test_recordio_index(data):
    support.check_recordio_index(data)


@fuzz
@given(st.binary(max_size=128) | st.one_of(*[mutated_json({"classes": ["a", "b", "c"]})] * 3))
def test_classes_file(data):
    support.check_classes(data)


@fuzz
@given(st.binary(max_size=256) | st.one_of(*[mutated_json(support.VALID_ANNOTATION)] * 3))
def test_sagemaker_json(data):
    support.check_sagemaker_json(data)


@fuzz
@given(st.binary(max_size=256) | st.one_of(*[lines(mutated_json(support.VALID_MANIFEST_LINE))] * 3))
def test_manifest(data):
    support.check_manifest(data)


VOC_TOKENS = ["nan", "inf", "-inf", "1e400", "9" * 400, "9" * 5000, "", "-5", "0", "abc",
              "a.jpg", "&#0;", "<x/>", "5.5"]


@st.composite
def voc_documents(draw: st.DrawFn) -> bytes:
    text = support.VALID_VOC
    for _ in range(draw(st.integers(1, 3))):
        fields = ["a.jpg", "64", "48", "dog", ">0<", "5", "6", "24", "23"]
        field = draw(st.sampled_from(fields))
        token = draw(st.sampled_from(VOC_TOKENS) | st.text(max_size=8))
        token = token if field != ">0<" else f">{token}<"
        text = text.replace(field, token, 1)
    return text.encode("utf-8", errors="replace")


@fuzz
@given(st.binary(max_size=256) | voc_documents() | mutated_bytes(support.VALID_VOC.encode()))
def test_voc(data):
    support.check_voc(data)


@fuzz
@given(st.binary(max_size=256) | st.one_of(*[mutated_json(support.VALID_COCO)] * 3))
def test_coco(data):
    support.check_coco(data)


@fuzz
@given(st.binary(max_size=256) | mutated_bytes(support.JPEG) | mutated_bytes(support.png()))
def test_images(data):
    support.check_image(data)


YAML_TOKENS = [".nan", ".inf", "-.inf", "9" * 400, "9" * 5000, "[" * 3000, "{a: [1, [2]]}",
               "'" + "(" * 3000 + ")" * 3000 + "'", "'a{4294967296}'", "'['", "&a [1, 2]",
               "!!python/object:os.system 'x'", "~", "yes", "0x1f", "1_000", "2001-01-01"]


@st.composite
def yaml_documents(draw: st.DrawFn) -> bytes:
    values = dict(support.VALID_HYPERPARAMETERS)
    rows = [f"{k}: {json.dumps(v)}" for k, v in values.items()]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(rows) - 1))
        name = rows[at].split(":")[0]
        rows[at] = f"{name}: {draw(st.sampled_from(YAML_TOKENS) | raw_values)}"
    return "\n".join(rows).encode()


@fuzz
@given(st.binary(max_size=256) | st.one_of(*[yaml_documents()] * 3))
def test_hyperparameters_yaml(data):
    support.check_hyperparameters(data, ".yaml")


@fuzz
@given(st.binary(max_size=256) | st.one_of(*[mutated_json(support.VALID_HYPERPARAMETERS)] * 3))
def test_hyperparameters_json(data):
    support.check_hyperparameters(data, ".json")


@fuzz
@given(st.binary(max_size=256) | st.one_of(*[lines(mutated_json(support.VALID_PREDICTION))] * 3))
def test_predictions(data):
    support.check_predictions(data)
