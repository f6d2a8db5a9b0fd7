"""rnndyn.analysis.verdict: the plain-language verdict follows the record's numbers and
the documented thresholds, and says the opposite plainly where a threshold is not met.

Fake records (the fields the verdict reads) with known numbers; the real analyses of
test_analysis.py and test_report.py go through the same function.
"""

import types

import numpy as np

from rnndyn.analysis import Caveat
from rnndyn.analysis import verdict as vd

ns = types.SimpleNamespace


class _Starts:
    """The candidates' fields the verdict and the caveats' details read."""

    speeds, tol = np.full(64, 0.1), 1e-8

    def __len__(self):
        return 64

    def counts(self):
        return {"STALLED": 64}


def _record(k=50, pc1=0.95, lam1=0.999, slow=1, tau=700.0, length=210, overlap=0.6, r=0.7,
            full=0.9, initial=0.88, d=1, spectrum=None, caveats=(), stability=1,
            classes=2, predicted=1):  # fmt: skip
    spectrum = np.array([pc1, 1 - pc1]) if spectrum is None else np.asarray(spectrum)
    return ns(
        points=ns(kept=np.zeros((k, 4)), candidates=_Starts()),
        geometry=ns(fixed_point_dimension=ns(spectrum=spectrum, pca90=int(np.searchsorted(
            np.cumsum(spectrum), 0.9) + 1)), manifold_dimension=d, threshold=0.9,
            readout_overlap=overlap, output_basis=np.zeros((d, 128)), dimension_rule="agree"),
        spectra=ns(spectral_radius=np.full(k, lam1), slow_modes=np.broadcast_to(slow, (k,)),
                   time_constants=np.full((k, 4), tau), marginal_band=0.02, tau_max=1e4,
                   stability=np.full(k, stability)),
        word_effects=ns(trajectory_length=length, correlation=r, trajectory_correlation=0.5),
        linearized=ns(full=full, initial=initial, trajectory=0.8),
        baseline=ns(accuracy=0.85),
        prediction=ns(dimension=predicted),
        model={"num_classes": classes, "multilabel": False},
        caveats=tuple(caveats),
        reference=ns(spectral_radius=lam1),
    )  # fmt: skip


def _claim(v, topic):
    (c,) = [c for c in v.claims if c.topic == topic]
    return c


def test_a_line_attractor_with_every_number():
    v = vd.verdict(_record())
    assert v.headline == "Line attractor" and v.kind == "line"
    assert _claim(v, "shape").text == (
        "50 slow points on a line: PC1 holds 95% of their variance, as word counts predict"
    )
    assert _claim(v, "slow_modes").text == (
        "one slow mode at every point: τ ≈ 700 steps, documents ≈ 210 tokens"
    )
    readout = _claim(v, "readout")
    assert readout.holds and "|cos| 0.77" in readout.text and "random direction ≈ 0.09" in (
        readout.text
    )  # fmt: skip
    assert _claim(v, "words").text == "word effects at the reference point agree with a bag of " \
        "words: r 0.70"  # fmt: skip
    assert _claim(v, "linear").holds
    assert all(c.holds for c in v.claims)
    lines = v.lines()
    assert lines[0] == "Verdict: Line attractor" and lines[1].startswith("  ✓ 50 slow points")
    assert v.sentence().startswith("Line attractor: 50 slow points on a line")


def test_the_opposite_is_said_plainly():
    """Below each threshold the claim turns round and the headline names what failed."""
    v = vd.verdict(_record(pc1=0.55, spectrum=[0.55, 0.3, 0.15], lam1=0.87, slow=0, tau=7.0,
                           overlap=0.01, r=0.2, initial=0.6))  # fmt: skip
    assert v.headline == (
        "Not a line attractor: the slow points are not on a line; no slow mode at most points"
    )
    shape = _claim(v, "shape")
    assert not shape.holds and "PC1 holds only 55%" in shape.text and "3 PCs reach 90%" in (
        shape.text
    )  # fmt: skip
    slow = _claim(v, "slow_modes")
    assert not slow.holds and "median |λ1| 0.870" in slow.text
    assert "shorter than documents ≈ 210 tokens: evidence fades" in slow.text
    assert "readout not aligned" in _claim(v, "readout").text
    assert "do not match a bag of words: r 0.20 < 0.5" in _claim(v, "words").text
    assert "loses 0.300 accuracy" in _claim(v, "linear").text
    assert not any(c.holds for c in v.claims)
    assert "✗" in str(v)


def test_thresholds_are_the_module_constants():
    at = _record(pc1=vd.LINE_PC1, overlap=vd.READOUT_ALIGNED**2, r=vd.WORDS_AGREE)
    assert all(c.holds for c in vd.verdict(at).claims if c.topic != "linear")
    below = _record(pc1=vd.LINE_PC1 - 0.01, overlap=(vd.READOUT_ALIGNED - 0.01) ** 2,
                    r=vd.WORDS_AGREE - 0.01)  # fmt: skip
    held = {c.topic: c.holds for c in vd.verdict(below).claims}
    assert held["shape"] is held["readout"] is held["words"] is False
    few = _record(slow=np.r_[np.ones(39), np.zeros(11)])  # 78% < SLOW_FRACTION
    assert vd.verdict(few).headline.startswith("Not a line attractor")


def test_a_plane_for_three_classes():
    v = vd.verdict(_record(pc1=0.6, spectrum=[0.6, 0.35, 0.05], d=2, slow=2, classes=3,
                           predicted=2))  # fmt: skip
    assert v.headline == "Plane attractor"
    text = _claim(v, "shape").text
    assert "on a plane, not a line: 2 PCs hold 95%" in text and "C − 1 = 2 for 3 classes" in text
    assert _claim(v, "slow_modes").text.startswith("2 slow modes at every point")


def test_no_point_one_point_two_points_and_caveats():
    v = vd.verdict(_record(k=0, caveats=[Caveat.NO_SLOW_POINTS]))
    assert v.headline == "No attractor found: no slow point"
    (cav,) = v.caveats
    assert cav.severity == "warning" and cav.short == "no slow point was found"
    assert cav.line().startswith("! WARNING: no start ended at a slow point")
    assert "median q where the search ended" in cav.text  # the caveat's numbers
    assert [c.topic for c in v.claims] == ["shape", "readout", "words", "linear", "caveat"]
    one = vd.verdict(_record(k=1, stability=0))
    assert one.headline == "Point attractor"
    assert vd.verdict(_record(k=1, stability=2)).headline.startswith("Not an attractor")
    assert vd.verdict(_record(k=2)).headline.startswith("Two slow points")


def test_missing_numbers_fall_back_or_say_why():
    v = vd.verdict(_record(r=float("nan"), initial=float("nan")))
    assert _claim(v, "words").text.startswith("word effects along the trajectory")
    assert _claim(v, "linear").text.startswith("linearised along the trajectory")
    assert "nan" not in str(v)


def test_html_marks_each_claim_and_links_caveats():
    v = vd.verdict(_record(caveats=[Caveat.DIMENSION_DISAGREEMENT], pc1=0.5))
    html = v.to_html("#caveats")
    assert '<p class="headline">Not a line attractor' in html
    assert html.count('class="holds"') == 4 and html.count('class="fails"') == 1
    assert 'class="note"' in html and '<a href="#caveats">details</a>' in html
    assert v._repr_html_() == v.to_html()


def _context(strength=(-0.6, 0.5, 0.1), opposite=True, recovered=0.8):
    st = np.asarray(strength, float)
    return ns(strength=st, reach=np.array([2.5, 1.5, np.nan]), names=("not", "very", "the"),
              subspace_words=np.arange(2), subspace_dimension=2, opposite_sides=opposite,
              recovered=recovered, extended_accuracy=0.88, bow_accuracy=0.85)  # fmt: skip


def test_the_studies_statements_stand_beside_the_numbers_without_caveats():
    """A one-step error of 12% (study A: ~10%), a linear RNN 2 points below, negators that
    attenuate (×0.4) rather than flip, an extended bag of words recovering 60%: claims
    with the studies' numbers, and no caveat for gaps the studies themselves report."""
    a = _record(full=0.9, initial=0.6)
    a.fidelity = ns(one_step_median=0.12)
    a.linear_rnn = ns(accuracy=0.88)
    a.contextual = _context(recovered=0.6)
    v = vd.verdict(a)
    assert v.caveats == ()
    one = _claim(v, "one_step")
    assert one.holds and one.text == (
        "one-step linearisation error at the nearest slow point 12% as in study A's ~10%"
    )
    assert "study A too: iterated over whole documents, much worse" in _claim(v, "linear").text
    rnn = _claim(v, "linear_rnn")
    assert rnn.holds and "0.880, 2.0 points below the network (study A: about 3 below)" in (
        rnn.text
    )  # fmt: skip
    mods = _claim(v, "modifiers")
    assert mods.holds and mods.text == (
        "modifiers not ×0.40 for 2.5 tokens, very ×1.50 for 1.5 tokens; intensifiers and "
        "attenuators on opposite sides of a 2-D modifier subspace (study C: opposite sides)"
    )
    ext = _claim(v, "extended_bow")
    assert ext.holds is False and "recovers 60% of the network's gain" in ext.text
    assert "(study C: over 90%)" in ext.text
    assert v.headline == "Line attractor"  # the studies' claims leave the headline alone
    # far above study A, a linear RNN well below, sides not opposite, nothing to recover
    a.fidelity = ns(one_step_median=0.45)
    a.linear_rnn = ns(accuracy=0.7)
    a.contextual = _context(opposite=False, recovered=float("nan"))
    v = vd.verdict(a)
    assert not _claim(v, "one_step").holds and "far above study A's ~10%" in str(v)
    assert not _claim(v, "linear_rnn").holds and "20.0 points below" in str(v)
    assert "not on opposite sides" in _claim(v, "modifiers").text
    assert _claim(v, "extended_bow").holds is None and "nothing to recover" in str(v)
    assert "nan" not in str(v)
    # no modifier at all (a bag-of-words network): said, not marked as a failure
    a.contextual = _context(strength=(0.1, -0.05, 0.0))
    mods = _claim(vd.verdict(a), "modifiers")
    assert mods.holds is None and mods.text.startswith("no modifier")
