"""Ordered classes (star ratings): a manifold of lower dimension than C − 1.

    python examples/ordered_manifold.py                   # 5 synthetic star ratings, GRU
    python examples/ordered_manifold.py --out runs/stars  # + figures and report.html

Aitken et al. (2021): when classes are ordered (1–5 stars), neighbouring classes share
evidence, and the network integrates it on a manifold of about 1–2 dimensions instead
of the C − 1 = 4 of five unordered classes. The word counts predict this before any
training: the first table compares the predicted dimension (PCs of the words' class
evidence to 90% of the variance) of five ordered ratings with five exclusive classes;
the second shows the trained network's measured dimension next to the prediction.
"""

import _common as C
import jax

import rnndyn
from rnndyn import data


def predicted(ds) -> rnndyn.words.DimensionPrediction:
    return rnndyn.predict_dimension(
        ds.tokens, ds.labels, ds.vocab_size, lengths=ds.lengths, num_classes=ds.num_classes
    )


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0])
    ap.add_argument("--classes", type=int, default=5, help="number of ordered classes")
    ap.add_argument("--cell", default="gru", help="vanilla, ugrnn, gru or lstm")
    args = ap.parse_args()
    c = args.classes
    if args.dataset:
        train_set, test_set = C.real(args)
        rows = [{"task": args.dataset, "C": train_set.num_classes}]
    else:
        train_set, test_set = C.synthetic("ratings", c, args=args)
        s = C.sizes(args)
        exclusive = data.synthetic.categorical(
            jax.random.key(args.seed), c, s["train"], length=s["length"],
            num_neutral=s["num_neutral"],
        )  # fmt: skip
        p = predicted(exclusive)
        rows = [
            {"task": f"{c} exclusive classes", "C": c, "pred": p.dimension,
             "pr": p.participation_ratio},
            {"task": f"{c} ordered ratings", "C": c},
        ]  # fmt: skip
    p = predicted(train_set)
    rows[-1].update(pred=p.dimension, pr=p.participation_ratio)
    print("dimension predicted from word counts alone:")
    print(C.table(rows, [("task", "task", str), ("C", "classes", "d"), ("pred", "pred", "d"),
                         ("pr", "PR", ".2f")]))  # fmt: skip
    _, _, a = C.train_and_analyze(args.cell, train_set, test_set, args, name="ratings")
    if a is not None:
        print("the trained network:")
        print(C.table([{"cell": args.cell, **C.headline(a), "state_pr": a.geometry.state_dimension.
                        participation_ratio}], [("cell", "cell", str), *C.COLUMNS[:3],
                       ("state_pr", "state PR", ".2f"), *C.COLUMNS[4:]]))  # fmt: skip


if __name__ == "__main__":
    main()
