"""Every input that once broke a reader, replayed: tests/fuzz/corpus/<reader>/<file> goes
through ``support.CHECKS[<reader>]`` (hyperparameter files by their suffix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import support

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file())


def test_every_reader_has_a_corpus():
    assert {p.parent.name for p in FILES} == set(support.CHECKS)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_corpus(path):
    if path.parent.name == "hyperparameters":
        support.check_hyperparameters(path.read_bytes(), path.suffix)
    else:
        support.CHECKS[path.parent.name](path.read_bytes())
