"""Round trips between every pair of formats, and VOC / COCO import."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from detectctl.datasets.convert import convert
from detectctl.datasets.readers import open_dataset
from tests.datasets.support import CLASSES, jpeg, output_path, write

FORMATS = ("recordio", "sagemaker-json", "manifest")


def assert_same(a, b):
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a[i], b[i]
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-4)
        assert x.labels.tolist() == y.labels.tolist()
        assert x.difficult.tolist() == y.difficult.tolist()
        assert x.read_image_bytes() == y.read_image_bytes()


@pytest.mark.parametrize("source_format", FORMATS)
@pytest.mark.parametrize("target_format", FORMATS)
def test_round_trip(tmp_path, samples, source_format, target_format):
    source = write(source_format, output_path(str(tmp_path / "a"), source_format), samples)
    target = output_path(str(tmp_path / "b"), target_format)
    result = convert(source, target, to=target_format)
    assert result.images == {"all": len(samples)}
    original, converted = open_dataset(source), open_dataset(result.outputs["all"][0]
                                                             if target_format != "sagemaker-json"
                                                             else target)
    assert not original.problems and not converted.problems
    assert converted.classes == CLASSES
    for i, (sample, _) in enumerate(samples):
        np.testing.assert_allclose(original[i].boxes, sample.boxes, atol=1e-4)
    assert_same(original, converted)


def test_split_writes_train_and_validation_folders(tmp_path, rec, samples):
    result = convert(rec, str(tmp_path / "out" / "data.rec"), to="recordio",
                     validation_fraction=0.25, seed=3)
    assert result.images == {"train": 6, "validation": 2}
    assert os.path.isfile(tmp_path / "out" / "train" / "data.rec")
    assert os.path.isfile(tmp_path / "out" / "validation" / "classes.json")
    again = convert(rec, str(tmp_path / "again" / "data.rec"), to="recordio",
                    validation_fraction=0.25, seed=3)
    assert again.images == result.images


def test_convert_refuses_an_existing_output(tmp_path, rec):
    from detectctl.errors import UsageError

    with pytest.raises(UsageError, match="already exists"):
        convert(rec, rec, to="recordio")


def _voc(root):
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    objects = {
        "000001": [("dog", 1, 1, 32, 24, 0), ("person", 10, 5, 64, 48, 1)],
        "000002": [("cat", 5, 6, 20, 30, 0)],
        "000003": [],
    }
    for stem, objs in objects.items():
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(jpeg(64, 48))
        xml = "".join(
            f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for n, x0, y0, x1, y1, d in objs)
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>64</width>"
            f"<height>48</height><depth>3</depth></size>{xml}</annotation>")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n")
    return root


@pytest.mark.parametrize("target_format", FORMATS)
def test_voc_import_keeps_difficult_and_voc_class_order(tmp_path, target_format):
    voc = _voc(tmp_path / "VOC2007")
    target = output_path(str(tmp_path / "out"), target_format)
    result = convert(str(voc), target, to=target_format, image_set="trainval")
    assert result.images == {"all": 2} and result.objects == 3
    data = open_dataset(target if target_format == "sagemaker-json" else result.outputs["all"][0])
    assert data.classes[:3] == ["aeroplane", "bicycle", "bird"] and len(data.classes) == 20
    first = data[0]
    # VOC's 1-based inclusive pixels: xmin 1..xmax 32 spans edges 0..32.
    np.testing.assert_allclose(first.boxes[0], [0, 0, 32 / 64, 24 / 48], atol=1e-4)
    assert first.labels.tolist() == [11, 14]  # dog, person
    assert first.difficult.tolist() == [False, True]


def test_voc_without_image_set_reads_every_annotation(tmp_path):
    data = open_dataset(str(_voc(tmp_path / "VOC2012")))
    assert data.format == "voc" and len(data) == 3 and data[2].num_objects == 0


def _coco(tmp_path):
    images = tmp_path / "val2017"
    images.mkdir()
    for i in (1, 2):
        (images / f"{i:012d}.jpg").write_bytes(jpeg(64, 48, seed=i))
    doc = {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "width": 64, "height": 48},
                   {"id": 2, "file_name": "000000000002.jpg", "width": 64, "height": 48}],
        "categories": [{"id": 7, "name": "truck"}, {"id": 1, "name": "person"},
                       {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [8, 4, 16, 20], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 7, "bbox": [0, 0, 64, 48], "iscrowd": 1},
        ],
    }
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps(doc))
    return path


def test_coco_import_remaps_categories_and_marks_crowd_difficult(tmp_path):
    path = _coco(tmp_path)
    result = convert(str(path), str(tmp_path / "out.rec"), to="recordio")
    assert result.images == {"all": 2}
    classes = json.loads((tmp_path / "classes.json").read_text())
    assert classes["classes"] == ["person", "car", "truck"]
    assert classes["source_ids"] == [1, 3, 7] and classes["source"] == "coco"
    data = open_dataset(str(tmp_path / "out.rec"))
    first = data[0]
    assert first.labels.tolist() == [1, 2]
    assert first.difficult.tolist() == [False, True]
    np.testing.assert_allclose(first.boxes[0], [8 / 64, 4 / 48, 24 / 64, 24 / 48], atol=1e-4)
    assert data[1].num_objects == 0


def test_manifest_with_named_attribute_and_s3_references(tmp_path, samples):
    (tmp_path / "images").mkdir()
    data = samples[0][1]
    (tmp_path / "images" / "a.jpg").write_bytes(data)
    line = {"source-ref": "s3://bucket/prefix/a.jpg",
            "my-job": {"image_size": [{"width": 96, "height": 72, "depth": 3}],
                       "annotations": [{"class_id": 1, "left": 9.6, "top": 7.2, "width": 48,
                                        "height": 36}]},
            "my-job-metadata": {"class-map": {"0": "a", "1": "b"}}}
    path = tmp_path / "gt.manifest"
    path.write_text(json.dumps(line) + "\n")
    data_set = open_dataset(str(path), attribute="my-job")
    assert not data_set.problems and data_set.classes == ["a", "b"]
    np.testing.assert_allclose(data_set[0].boxes[0], [0.1, 0.1, 0.6, 0.6], atol=1e-6)
    assert data_set[0].read_image_bytes() == data
    assert not open_dataset(str(path)).problems  # the attribute is found without its name


def test_sagemaker_channels_layout(tmp_path, samples):
    write("sagemaker-json", str(tmp_path / "ds"), samples[:2])
    os.rename(tmp_path / "ds" / "images", tmp_path / "train")
    os.rename(tmp_path / "ds" / "annotations", tmp_path / "train_annotation")
    data = open_dataset(str(tmp_path / "train"), "sagemaker-json")
    assert len(data) == 2 and not data.problems and data.classes == CLASSES
