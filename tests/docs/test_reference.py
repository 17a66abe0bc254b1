"""The generated reference pages (docs/reference/) match the code, and the generator covers
everything: every command and option, every hyperparameter, every error class."""

from __future__ import annotations

import pytest

from detectctl.cli import error_messages, reference

STALE = ("docs/reference/{name} is out of date with the code: regenerate it with "
         "`python -m detectctl.cli.reference` and commit the result")


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {name: generate() for name, generate in reference.PAGES.items()}


@pytest.mark.parametrize("name", sorted(reference.PAGES))
def test_reference_page_is_up_to_date(name, pages):
    path = reference.OUTPUT / name
    assert path.is_file(), STALE.format(name=name)
    assert path.read_text(encoding="utf-8") == pages[name], STALE.format(name=name)


def test_every_command_and_option_is_in_the_cli_reference(pages):
    import typer

    from detectctl.cli.app import COMMANDS, app

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="detectctl", **root.context_settings)
    found = list(reference._commands(root, context, ["detectctl"]))
    assert {path[1] for path, _, _ in found[1:]} == set(COMMANDS)
    text = pages["cli.md"]
    for path, command, ctx in found:
        assert f"# {' '.join(path)}\n" in text
        for param in command.get_params(ctx):
            if not getattr(param, "hidden", False):
                names = param.get_help_record(ctx)[0]
                assert f"`{names}`" in text, (path, names)


def test_every_hyperparameter_is_in_its_reference(pages):
    from algorithm.hyperparameters import schema

    for info in schema():
        assert f"| `{info.name}`" in pages["hyperparameters.md"]


def test_every_error_class_has_a_section(pages):
    for cls in reference.error_classes():
        assert f"\n## {cls.__name__}\n" in pages["errors.md"]
        assert f"Exit code {cls.exit_code}" in pages["errors.md"]


def test_message_patterns_are_read_from_the_source(tmp_path):
    package = tmp_path / "detectctl"
    package.mkdir()
    (package / "thing.py").write_text(
        "HINT = 'see {page}'\n"
        "def f(name, size, backend):\n"
        "    where = f'{name}: '\n"
        "    raise UsageError(f'{where}too big ({size.bytes} bytes)', hint='make it smaller')\n"
        "    raise NotFoundError('no ' + f'job {name}', hint=HINT.format(page=name))\n"
        "    raise UsageError(f'{backend} backend')\n"
        "    backend = 'local'\n"
        "    raise DetectctlError(message)\n")
    found = error_messages.raised_messages(package)
    assert found == {
        "UsageError": {("<name>: too big (<bytes> bytes)", "make it smaller"):
                       ["detectctl/thing.py"],
                       ("<backend> backend", ""): ["detectctl/thing.py"]},
        "NotFoundError": {("no job <name>", "see <page>"): ["detectctl/thing.py"]},
        "DetectctlError": {("", ""): ["detectctl/thing.py"]},
    }


def test_markdown_is_escaped_outside_code_spans():
    assert reference._escape("ssd-<base_network> `a<b` *x*") == r"ssd-&lt;base_network> `a<b` \*x\*"
    assert reference._escape("a | b `c|d`", cell=True) == r"a \| b `c\|d`"


def test_check_names_the_stale_pages(tmp_path, capsys):
    reference.write(tmp_path)
    assert reference.main(["--check", "--output", str(tmp_path)]) == 0
    (tmp_path / "cli.md").write_text("old\n")
    assert reference.main(["--check", "--output", str(tmp_path)]) == 1
    assert "cli.md is out of date" in capsys.readouterr().err
