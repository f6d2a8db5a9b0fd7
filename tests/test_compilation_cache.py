"""The persistent compilation cache: a second process compiles nothing (rnndyn.compilation_cache
and the command line's default)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnndyn import compilation_cache as cc
from rnndyn.cli import build_parser

# Runs the command line in a fresh interpreter and prints how many programs it asked the
# persistent cache for, how many it found there, and the names of those it found.
PROBE = """
import json, logging, sys
from jax import monitoring
counts = {"requests": 0, "hits": 0}
def on_event(event, **kw):
    if event == "/jax/compilation_cache/compile_requests_use_cache":
        counts["requests"] += 1
    if event == "/jax/compilation_cache/cache_hits":
        counts["hits"] += 1
monitoring.register_event_listener(on_event)
hits = []
class Hits(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("Persistent compilation cache hit for"):
            hits.append(record.args[0])
logger = logging.getLogger("jax._src.compiler")
logger.setLevel(logging.DEBUG)
logger.addHandler(Hits())
from rnndyn.cli import main
for argv in json.loads(sys.argv[1]):
    assert main(argv) == 0, argv
print(json.dumps({**counts, "names": sorted(set(hits))}))
"""


def _probe(argvs, env):
    env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], capture_output=True,
                         text=True, env=env, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_compiles_nothing(tmp_path):
    cache = tmp_path / "jax-cache"
    run = tmp_path / "run"
    train = ["train", "--hidden", "4", "--embed-size", "4", "--steps", "4", "--batch-size",
             "16", "--num-examples", "64", "--num-test-examples", "32", "--quiet", "--out",
             str(run)]  # fmt: skip
    analyze = ["analyze", str(run), "--num-initial", "16", "--max-examples", "16",
               "--max-steps", "200", "--quiet"]  # fmt: skip
    env = {"RNNDYN_COMPILATION_CACHE": str(cache)}
    first = _probe([train, analyze], env)
    assert first["requests"] > 50 and any(cache.iterdir())
    second = _probe([train, analyze], env)
    assert second["requests"] == first["requests"]
    assert second["hits"] == second["requests"]  # nothing compiled again
    # among them: the training step, the compiled fixed-point search, the certificate's
    # float64 kernels and the analysis stages (linearised models, word-input searches)
    names = set(second["names"])
    want = {"jit_step", "jit_begin", "jit_advance", "jit_q", "jit_first", "jit_refine",
            "jit__run_linearized", "jit__run_trajectory", "jit__jacobians", "jit_eig"}  # fmt: skip
    assert want <= names, sorted(want - names)
    # the flag and the environment variable turn the cache off: the warm cache is not read
    assert _probe([[*train, "--no-compilation-cache"]], env)["hits"] == 0
    assert _probe([train], {"RNNDYN_COMPILATION_CACHE": "0"})["hits"] == 0


def test_default_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNDYN_COMPILATION_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cc.default_cache_dir() == tmp_path / "xdg" / "rnndyn" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cc.default_cache_dir() == Path.home() / ".cache" / "rnndyn" / "jax"
    assert not cc.env_disabled()
    monkeypatch.setenv("RNNDYN_COMPILATION_CACHE", str(tmp_path / "mine"))
    assert cc.default_cache_dir() == tmp_path / "mine" and not cc.env_disabled()
    for off in ("0", "off", "False", " no "):
        monkeypatch.setenv("RNNDYN_COMPILATION_CACHE", off)
        assert cc.env_disabled()


def test_every_computing_command_has_the_flag():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("train", "analyze", "report", "demo"):
        flags = {s for a in sub.choices[name]._actions for s in a.option_strings}
        assert "--no-compilation-cache" in flags, name


def test_enable_sets_the_folder_and_keeps_small_programs(tmp_path):
    code = (
        "import jax, rnndyn\n"
        f"path = rnndyn.enable_compilation_cache({str(tmp_path / 'a')!r})\n"
        "assert jax.config.jax_compilation_cache_dir == str(path)\n"
        "assert jax.config.jax_persistent_cache_min_compile_time_secs == 0\n"
        "assert jax.config.jax_persistent_cache_min_entry_size_bytes == -1\n"
        "jax.jit(lambda x: x + 1)(1.0).block_until_ready()\n"
        f"rnndyn.enable_compilation_cache({str(tmp_path / 'b')!r})\n"
        "jax.jit(lambda x: x * 3)(1.0).block_until_ready()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert any((tmp_path / "a").iterdir()) and any((tmp_path / "b").iterdir())
