"""Outputs appear whole or not at all: convert, synth, preview and stats --plot write under a
temporary name and move it into place on success; missing folders are made and named."""

from __future__ import annotations

import os

import pytest

from detectctl.datasets import writers
from detectctl.datasets.convert import convert
from detectctl.datasets.outputs import PREFIX, StagedOutput
from detectctl.datasets.preview import preview
from detectctl.datasets.stats import plot, stats
from detectctl.datasets.synth import synth
from detectctl.errors import OutputError


def _everything(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, dirs, files in os.walk(root) for n in dirs + files)


@pytest.mark.parametrize("to", ["recordio", "sagemaker-json", "manifest"])
def test_a_failed_conversion_leaves_nothing_and_the_rerun_works(tmp_path, rec, monkeypatch, to):
    added = []
    real = {cls: cls.add for cls in (writers.RecordIOWriter, writers.SageMakerJsonWriter,
                                     writers.ManifestWriter)}

    def add_then_fail(self, *args):
        if len(added) == 5:
            raise OSError(28, "No space left on device")
        added.append(1)
        real[type(self)](self, *args)

    for cls in real:
        monkeypatch.setattr(cls, "add", add_then_fail)
    output = tmp_path / "out" / "data"
    with pytest.raises(OutputError, match="No space left on device; nothing was written"):
        convert(rec, str(output), to=to, validation_fraction=0.25)
    assert _everything(tmp_path) == []
    monkeypatch.undo()
    result = convert(rec, str(output), to=to, validation_fraction=0.25)
    assert result.images == {"train": 6, "validation": 2}
    parts = ("train", "validation")
    assert result.created == ([str(output)] if to == "sagemaker-json"
                              else [str(tmp_path / "out" / p) for p in parts])
    assert not [p for p in _everything(tmp_path) if PREFIX in p]


def test_ctrl_c_leaves_nothing(tmp_path, monkeypatch):
    from detectctl.datasets import synth as module

    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = module.synth_image
    monkeypatch.setattr(module, "synth_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synth(str(tmp_path / "a" / "b" / "s.rec"), images=5, classes=2, image_size=(32, 24))
    assert _everything(tmp_path) == []


def test_missing_folders_are_made_and_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = synth("deep/er/s.rec", images=2, classes=2, image_size=(32, 24))
    assert result.created == [os.path.join("deep", "er")]
    assert result.paths[0] == os.path.join("deep", "er", "s.rec")
    assert os.path.isfile("deep/er/s.idx") and os.path.isfile("deep/er/classes.json")
    drawn = plot(stats("deep/er/s.rec"), "plots/new/stats.png")
    assert drawn.created == [os.path.join("plots", "new")] and os.path.isfile(drawn.output)
    shown = preview("deep/er/s.rec", "previews/p.png", count=2)
    assert shown.created == ["previews"] and os.path.isfile("previews/p.png")
    # A picture is replaced; a dataset is never overwritten.
    assert preview("deep/er/s.rec", "previews/p.png", count=1).created == []
    with pytest.raises(OutputError, match="already exists"):
        synth("deep/er/s.rec", images=2, classes=2, image_size=(32, 24))


def test_datasets_sharing_a_folder_share_classes_json(tmp_path):
    """The README's demo: two synth runs into one folder, one classes.json."""
    synth(str(tmp_path / "train"), images=2, classes=3, seed=1, image_size=(32, 24))
    synth(str(tmp_path / "validation"), images=2, classes=3, seed=2, image_size=(32, 24))
    assert os.path.isfile(tmp_path / "validation.rec")
    with pytest.raises(OutputError, match=r"classes\.json already exists"):
        synth(str(tmp_path / "other"), images=2, classes=2, image_size=(32, 24))
    assert not os.path.exists(tmp_path / "other.rec")


def test_unwritable_places_are_refused_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"), \
            StagedOutput(str(tmp_path / "file" / "out.rec")):
        pass
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match="is a folder; name a file"), \
            StagedOutput(str(tmp_path / "folder"), replace=True):
        pass
