"""`detectctl dataset ...` through the real entry point: exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from detectctl.cli import main


@pytest.fixture
def run(capsys, monkeypatch):
    monkeypatch.delenv("DETECTCTL_DEBUG", raising=False)

    def invoke(*args):
        with pytest.raises(SystemExit) as exited:
            main(["dataset", *args])
        out, err = capsys.readouterr()
        return exited.value.code, out, err

    return invoke


def test_help_lists_the_commands(run):
    code, out, _ = run("--help")
    assert code == 0
    for command in ("convert", "validate", "stats", "preview", "synth"):
        assert f"  {command} " in out


def test_synth_is_deterministic(run, tmp_path):
    first = run("synth", str(tmp_path / "a.rec"), "--images", "6", "--classes", "3", "--seed",
                "7", "--image-size", "80x60", "--json")
    second = run("synth", str(tmp_path / "b" / "b.rec"), "--images", "6", "--classes", "3",
                 "--seed", "7", "--image-size", "80x60")
    assert first[0] == second[0] == 0
    result = json.loads(first[1])
    assert result["images"] == 6 and result["classes"] == ["circle", "square", "triangle"]
    assert (tmp_path / "a.rec").read_bytes() == (tmp_path / "b" / "b.rec").read_bytes()
    assert "6 images" in second[1]


def test_synth_has_images_without_objects(run, tmp_path):
    run("synth", str(tmp_path / "s"), "--images", "30", "--classes", "4", "--format",
        "sagemaker-json", "--image-size", "64x48")
    code, out, _ = run("stats", str(tmp_path / "s"), "--json")
    stats = json.loads(out)
    assert code == 0 and stats["images"] == 30 and stats["empty_images"] >= 1
    assert {c["name"] for c in stats["classes"]} == {"circle", "square", "triangle", "diamond"}


def test_synth_min_size_sets_the_smallest_shape(run, tmp_path):
    from algorithm.data.sources import open_source

    sides = {}
    for min_size in ("0.08", "0.3"):
        out = tmp_path / f"s{min_size}.rec"
        code, _, _ = run("synth", str(out), "--images", "40", "--image-size", "100x80",
                         "--min-size", min_size)
        assert code == 0
        source = open_source(str(out))
        boxes = [source[i].boxes for i in range(len(source)) if len(source[i].boxes)]
        # a shape's side is the geometric mean of its box's width and height (in pixels)
        sides[min_size] = [float(((b[2] - b[0]) * 100 * (b[3] - b[1]) * 80) ** 0.5)
                           for image in boxes for b in image]
    assert min(sides["0.3"]) >= 0.3 * 80 - 1
    assert min(sides["0.08"]) < 0.3 * 80 - 1  # the default draws smaller shapes too
    assert len(sides["0.08"]) == len(sides["0.3"])  # the same images, objects and classes


def test_validate_valid_and_json_schema(run, rec):
    code, out, err = run("validate", rec)
    assert (code, err) == (0, "")
    assert out.strip().endswith("valid (recordio, 8 images, "
                                f"{out.split(', ')[-1].split()[0]} objects)")
    code, out, _ = run("validate", rec, "--num-classes", "3", "--json")
    report = json.loads(out)
    assert code == 0
    assert {"valid", "images", "objects", "problems"} <= set(report)
    assert report["valid"] is True and report["problems"] == []


def test_validate_problems_exit_1_with_one_line_each(run, tmp_path, rec):
    code, out, _ = run("validate", rec, "--num-classes", "2", "--json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert all(set(p) == {"file", "field", "message"} for p in report["problems"])
    code, out, _ = run("validate", rec, "--num-classes", "2")
    assert code == 1 and "problem(s)" in out.splitlines()[-1]
    assert "class id 2 out of range (0..1)" in out


@pytest.mark.parametrize("args, message", [
    (("validate", "/does/not/exist"), "no such file or directory"),
    (("validate", "."), "cannot tell the format"),
    (("validate", ".", "--format", "parquet"), "unknown format"),
    (("synth", "x.rec", "--classes", "11"), "between 1 and 10"),
    (("synth", "x.rec", "--image-size", "big"), "is not WIDTHxHEIGHT"),
    (("synth", "x.rec", "--min-size", "0.9"), "--min-size 0.9: a fraction"),
])
def test_usage_errors_exit_2_with_one_line(run, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(*args)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_garbage_never_gives_a_traceback(run, tmp_path):
    path = tmp_path / "garbage.rec"
    path.write_bytes(os.urandom(1000))
    code, out, err = run("validate", str(path))
    assert code == 1 and "Traceback" not in out + err and "bad magic" in out


def test_convert_with_split_and_json(run, tmp_path, rec):
    code, out, _ = run("convert", rec, "--to", "manifest", "--output",
                       str(tmp_path / "out" / "data.manifest"), "--validation-fraction", "0.5",
                       "--json")
    result = json.loads(out)
    assert code == 0 and result["images"] == {"train": 4, "validation": 4}
    assert os.path.isfile(tmp_path / "out" / "validation" / "data.manifest")
    code, out, _ = run("validate", str(tmp_path / "out" / "train" / "data.manifest"))
    assert code == 0


def test_stats_plot_and_preview_write_pngs(run, tmp_path, rec):
    code, out, _ = run("stats", rec, "--plot", str(tmp_path / "stats.png"))
    assert code == 0 and "circle" in out and "8 images" in out
    assert Image.open(tmp_path / "stats.png").size == (1000, 760)
    code, out, _ = run("preview", rec, "--output", str(tmp_path / "grid.png"), "-n", "5")
    assert code == 0 and out == f"5 images -> {tmp_path / 'grid.png'}\n"
    assert Image.open(tmp_path / "grid.png").size == (3 * 320, 2 * 320)


def test_the_client_side_never_imports_torch(rec):
    code = (
        "import sys\n"
        "from detectctl.cli import main\n"
        "import detectctl.datasets.convert, detectctl.datasets.preview, detectctl.datasets.stats\n"
        "import algorithm.data, algorithm.data.sources, algorithm.data.pipe\n"
        "import algorithm.data.augment, algorithm.data.sharding\n"
        "from detectctl.datasets.validate import validate\n"
        f"assert validate({rec!r}).valid\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_cli_module_does_not_load_numpy_or_pillow():
    code = ("import sys, detectctl.cli.app\n"
            "heavy = {'numpy', 'PIL', 'torch', 'detectctl.datasets'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
