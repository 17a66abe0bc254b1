"""The code a model artifact carries (``code/algorithm``): the package's sources only."""

from __future__ import annotations

from pathlib import Path

from algorithm import artifact


def test_the_artifact_carries_sources_without_caches_hidden_files_or_lint_settings(tmp_path):
    package = tmp_path / "algorithm"
    for name in ("__init__.py", "ssd/model.py", "__pycache__/x.cpython-311.pyc", "stale.pyc",
                 "ruff.toml", ".ruff_cache/0.1/cache", "ssd/.hidden", "data/.mypy_cache/x"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("x")
    artifact.copy_package(package, tmp_path / "code" / "algorithm")
    copied = sorted(str(p.relative_to(tmp_path / "code" / "algorithm"))
                    for p in (tmp_path / "code" / "algorithm").rglob("*") if p.is_file())
    assert copied == ["__init__.py", "ssd/model.py"]


def test_the_real_package_copies_to_importable_sources(tmp_path):
    artifact.copy_package(Path(artifact.__file__).parent, tmp_path / "algorithm")
    names = {p.name for p in (tmp_path / "algorithm").rglob("*")}
    assert {"serve.py", "inference.py", "train.py"} <= names
    assert not [n for n in names if n.startswith(".") or n == "__pycache__"]


def test_the_training_source_archive_carries_the_same_files(tmp_path):
    import io
    import tarfile

    from detectctl import packaging

    package = tmp_path / "algorithm"
    for name in ("__init__.py", "train.py", "ssd/model.py", "ruff.toml", "x.pyo",
                 ".ruff_cache/0.1/cache", "__pycache__/y.pyc"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("x")
    artifact.copy_package(package, tmp_path / "code")
    copied = sorted(p.relative_to(tmp_path / "code").as_posix()
                    for p in (tmp_path / "code").rglob("*") if p.is_file())
    with tarfile.open(fileobj=io.BytesIO(packaging.source_archive(package).data)) as archive:
        packed = sorted(name.split("/", 1)[1] for name in archive.getnames()
                        if name.startswith("algorithm/"))
    assert copied == packed == ["__init__.py", "ssd/model.py", "train.py"]
