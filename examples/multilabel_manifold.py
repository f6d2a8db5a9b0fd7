"""Multi-label classification: one integration dimension per independent label.

    python examples/multilabel_manifold.py                 # 3 synthetic labels, GRU
    python examples/multilabel_manifold.py --labels 2 4    # other numbers of labels
    python examples/multilabel_manifold.py --out runs/ml   # + figures and report.html

When each label is present or absent independently (as in GoEmotions), the network
must remember one number per label, and integrates on a manifold with one dimension
per label (Aitken et al. 2021: three labels, three PCs of about a third of the
variance each). The table shows the predicted and measured dimensions and the share of
variance of the visited states' top PCs.
"""

import _common as C


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0])
    ap.add_argument("--labels", nargs="+", type=int, default=[3], help="numbers of labels")
    ap.add_argument("--cell", default="gru", help="vanilla, ugrnn, gru or lstm")
    args = ap.parse_args()
    rows = []
    if args.dataset:
        tasks = [(args.dataset, C.real(args))]
    else:
        tasks = [(f"{k} labels", C.synthetic("multilabel", k, args=args)) for k in args.labels]
    for name, (train_set, test_set) in tasks:
        folder = name.replace(" ", "_").replace("/", "-")
        _, _, a = C.train_and_analyze(args.cell, train_set, test_set, args, name=folder)
        row = {"task": name}
        if a is not None:
            spec = a.geometry.state_dimension.spectrum
            row.update(C.headline(a), top="/".join(f"{v:.2f}" for v in spec[:4]))
        rows.append(row)
    cols = [("task", "task", str), *C.COLUMNS[:3], ("state_pr", "state PR", ".2f"),
            ("top", "state PCs", str), *C.COLUMNS[8:]]  # fmt: skip
    print(C.table(rows, cols))


if __name__ == "__main__":
    main()
