"""Helpers shared by the examples: train a classifier, analyse it, draw, tabulate.

Not part of the library; the examples import it as a sibling module (``python
examples/NAME.py`` puts ``examples/`` on the path).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax

import rnndyn
from rnndyn import data

#: Sizes of a full run and of ``--smoke`` (seconds, for the test suite).
FULL = dict(hidden=16, embed=16, steps=1000, train=2000, test=500, length=(50, 100),
            num_neutral=100, num_initial=512, max_steps=5000, max_examples=500)  # fmt: skip
SMOKE = dict(hidden=6, embed=4, steps=25, train=64, test=32, length=(5, 10), num_neutral=4,
             num_initial=32, max_steps=200, max_examples=32)  # fmt: skip
#: ``rnndyn.analyze`` settings of ``--smoke``: skip the optional, costly stages.
SMOKE_ANALYZE = dict(word_inputs=0, reference="nearest", bow_steps=50)


def parser(description: str, *, dataset: bool = True) -> argparse.ArgumentParser:
    """The flags every example takes: ``--out``, ``--smoke``, ``--seed``, ``--quiet``
    and (where it applies) ``--dataset``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", default=None, help="directory for figures and JSON (default: none)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    if dataset:
        ap.add_argument(
            "--dataset",
            default=None,
            help="a real dataset instead of the synthetic default (tensorflow-datasets "
            "name, e.g. imdb_reviews; needs the data extra and a prepared or downloadable "
            "copy)",
        )
        ap.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    return ap


def sizes(args: argparse.Namespace) -> dict:
    return dict(SMOKE if args.smoke else FULL)


def synthetic(kind: str, *extra: int, args: argparse.Namespace):
    """Train and test sets of ``rnndyn.data.synthetic.<kind>`` at the example's sizes."""
    s = sizes(args)
    gen = getattr(data.synthetic, kind)
    k_train, k_test = jax.random.split(jax.random.key(args.seed))
    kw = dict(length=s["length"], num_neutral=s["num_neutral"])
    return gen(k_train, *extra, s["train"], **kw), gen(k_test, *extra, s["test"], **kw)


def real(args: argparse.Namespace, max_length: int = 400):
    """Train and test sets of the real dataset ``args.dataset``."""
    train = data.load(args.dataset, "train", max_length=max_length, data_dir=args.data_dir)
    test = data.load(
        args.dataset, "test", vocab=train.vocab, max_length=max_length, data_dir=args.data_dir
    )
    return train, test


def train_and_analyze(
    cell: str | rnndyn.Cell,
    train_set: Any,
    test_set: Any,
    args: argparse.Namespace,
    *,
    name: str,
    **analyze_kw: Any,
) -> tuple[Any, Any, Any]:
    """Train a classifier with ``cell`` and analyse it; write figures to ``args.out/name``.

    Returns:
      ``(model, params, analysis)``. An analysis that finds few or no slow points is
      still a result: ``analysis.caveats`` says what is missing.
    """
    s = sizes(args)
    if isinstance(cell, str):
        cell = rnndyn.models.make_cell(cell, s["hidden"])
    model = rnndyn.Classifier(
        cell, train_set.vocab_size, s["embed"], train_set.num_classes, train_set.multilabel
    )
    k_fit, k_an = jax.random.split(jax.random.fold_in(jax.random.key(args.seed), 1))
    config = rnndyn.TrainConfig(steps=s["steps"], embedding_l2=1e-2, log_every=250)
    params = rnndyn.train.train(
        model, train_set, test_set, key=k_fit, config=config, verbose=not args.quiet
    ).params
    kw = dict(
        max_examples=s["max_examples"], num_initial=s["num_initial"], max_steps=s["max_steps"]
    )
    if args.smoke:
        kw.update(SMOKE_ANALYZE)
    kw.update(analyze_kw)
    analysis = rnndyn.analyze(
        model, test_set, params, key=k_an, train_data=train_set, verbose=not args.quiet, **kw
    )
    if args.out:
        out = os.path.join(args.out, name)
        from rnndyn.report import write_report

        write_report(analysis, out, model=model, params=params, data=test_set)
        analysis.to_json(os.path.join(out, "analysis.json"))
    return model, params, analysis


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str, Callable | str]]) -> str:
    """A plain-text table: ``columns`` are ``(key, header, format)``."""
    texts = []
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            v = row.get(key)
            cells.append("-" if v is None else (fmt(v) if callable(fmt) else format(v, fmt)))
        texts.append(cells)
    widths = [max([len(h)] + [len(t[i]) for t in texts]) for i, (_, h, _) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (_, h, _), w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(t, widths, strict=True)) for t in texts]
    return "\n".join(lines)


def headline(analysis: Any) -> dict:
    """The numbers the example tables show, from an ``Analysis``."""
    import numpy as np

    a = analysis
    geo, spec = a.geometry, a.spectra
    median = lambda x: float(np.median(x)) if np.size(x) else float("nan")  # noqa: E731
    return dict(
        points=len(a.points.kept),
        roots=int(np.sum(a.points.candidates.root)),
        predicted=a.prediction.dimension,
        measured=geo.manifold_dimension,
        fp_pc1=float(next(iter(geo.fixed_point_dimension.spectrum), np.nan)),
        fp_pr=geo.fixed_point_dimension.participation_ratio,
        state_pr=geo.state_dimension.participation_ratio,
        lam1=median(spec.spectral_radius),
        tau1=median(spec.time_constants[:, 0]),
        slow=median(spec.slow_modes),
        overlap=geo.readout_overlap,
        r_bow=a.word_effects.correlation,
        acc=a.linearized.full,
        lin=a.linearized.initial,
        lin_nn=a.linearized.nearest,
        lin_traj=a.linearized.trajectory,
    )


COLUMNS = [
    ("points", "points", "d"),
    ("predicted", "pred", "d"),
    ("measured", "dim", "d"),
    ("fp_pr", "fp PR", ".2f"),
    ("lam1", "|λ1|", ".3f"),
    ("tau1", "τ1", ".0f"),
    ("overlap", "readout", ".2f"),
    ("r_bow", "r(bow)", ".2f"),
    ("acc", "acc", ".3f"),
    ("lin", "lin", ".3f"),
    ("lin_traj", "lin traj", ".3f"),
]
