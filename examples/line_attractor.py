"""Study A (Maheswaranathan et al. 2019): a line attractor in every cell type.

    python examples/line_attractor.py                      # vanilla, UGRNN, GRU, LSTM
    python examples/line_attractor.py --out runs/study_a   # + figures and report.html per cell
    python examples/line_attractor.py --dataset imdb_reviews --data-dir ~/tensorflow_datasets

Each cell is trained on binary sentiment (synthetic by default: long documents with
sparse evidence words) and reverse engineered with ``rnndyn.analyze``. The table shows,
per cell: the fixed points kept, the dimension predicted from word counts and measured
(PCs of the visited states to 90%), the participation ratio of the fixed points, the
median top |λ| and time constant τ1 at them, the readout's overlap with the manifold, the
correlation of the word effects with a bag-of-words model, and the accuracy of the
network and of its linearisation. Expected: one dimension, |λ1| near 1, the readout on
the line, r(bow) high. About a minute per cell on a CPU.
"""

import _common as C


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0])
    ap.add_argument(
        "--cells", nargs="+", default=["vanilla", "ugrnn", "gru", "lstm"], help="cells to train"
    )
    args = ap.parse_args()
    if args.dataset:
        train_set, test_set = C.real(args)
    else:
        train_set, test_set = C.synthetic("sentiment", args=args)
    rows = []
    for cell in args.cells:
        _, _, a = C.train_and_analyze(cell, train_set, test_set, args, name=cell)
        rows.append({"cell": cell, **(C.headline(a) if a is not None else {})})
    print(C.table(rows, [("cell", "cell", str), *C.COLUMNS]))


if __name__ == "__main__":
    main()
