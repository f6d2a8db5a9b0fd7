"""The README's quick-start snippet must run as printed."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_quick_start_runs(capsys):
    text = README.read_text()
    snippets = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert snippets, "README has no python snippet"
    exec(compile(snippets[0], str(README), "exec"), {})
    out = capsys.readouterr().out
    found = int(re.search(r"(\d+) distinct roots, max q = (\S+)", out).group(1))
    max_q = float(re.search(r"max q = (\S+)", out).group(1))
    assert found >= 1 and max_q < 1e-10


def test_readme_has_exactly_two_setup_commands_first():
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    assert "pip install" in blocks[0] and blocks[0].strip().endswith("&& rnndyn demo")
    assert ".[dev,data,plot]" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest" in blocks[1] and "python -m pytest" in ci


def test_readme_main_job_is_a_real_command():
    """The README's main job parses as an rnndyn command with its documented defaults."""
    from rnndyn import cli

    text = README.read_text()
    first = re.findall(r"```bash\n(.*?)```", text, flags=re.S)[0]
    argv = first.strip().split("&& rnndyn ")[-1].split()
    args = cli.build_parser().parse_args(argv)
    assert args.command == "demo" and args.out == "runs/demo"
    assert "runs/demo/" in text and "report.html" in text
