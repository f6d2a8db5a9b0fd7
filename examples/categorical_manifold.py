"""Study B (Aitken et al. 2021): C exclusive classes, a (C − 1)-simplex of fixed points.

    python examples/categorical_manifold.py                  # 3 and 4 classes, GRU
    python examples/categorical_manifold.py --out runs/simplex   # + simplex.png per task
    python examples/categorical_manifold.py --dataset ag_news_subset   # 4 real classes

A network that must tell C mutually exclusive classes apart integrates the evidence
for each on a (C − 1)-dimensional manifold shaped like a simplex: a triangle of fixed
points (a plane attractor) for 3 classes, a tetrahedron for 4, with C − 1 eigenvalues
near 1 at its points. The table shows the dimension predicted from word counts (C − 1
on this data), the measured one, the fixed points' PCs to 90% and participation ratio,
and the median number of slow modes; ``simplex.png`` in ``--out`` draws the triangle /
tetrahedron with the points coloured by the class the readout gives them.
"""

import _common as C


def main() -> None:
    ap = C.parser(__doc__.split("\n")[0])
    ap.add_argument("--classes", nargs="+", type=int, default=[3, 4], help="numbers of classes")
    ap.add_argument("--cell", default="gru", help="vanilla, ugrnn, gru or lstm")
    args = ap.parse_args()
    rows = []
    if args.dataset:
        tasks = [(args.dataset, C.real(args))]
    else:
        tasks = [(f"{c} classes", C.synthetic("categorical", c, args=args)) for c in args.classes]
    for name, (train_set, test_set) in tasks:
        folder = name.replace(" ", "_").replace("/", "-")
        _, _, a = C.train_and_analyze(args.cell, train_set, test_set, args, name=folder)
        row = {"task": name}
        if a is not None:
            row.update(C.headline(a), fp90=a.geometry.fixed_point_dimension.pca90)
        rows.append(row)
    cols = [("task", "task", str), *C.COLUMNS[:3], ("fp90", "fp 90%", "d"),
            *C.COLUMNS[3:5], ("slow", "slow", ".0f"), *C.COLUMNS[8:]]  # fmt: skip
    print(C.table(rows, cols))


if __name__ == "__main__":
    main()
