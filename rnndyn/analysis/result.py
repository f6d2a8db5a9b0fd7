"""``Analysis``: everything ``analyze`` measured, one record per stage, its caveats and
its summary."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from rnndyn import _views
from rnndyn import manifold as mf
from rnndyn import words as wd
from rnndyn._records import record, static
from rnndyn.analysis import codec
from rnndyn.analysis.baseline import Baseline
from rnndyn.analysis.context import KIND, MIN_GAIN, Contextual
from rnndyn.analysis.fidelity import _QUANTILES, STUDY_ONE_STEP_ERROR, Fidelity
from rnndyn.analysis.geometry import Geometry
from rnndyn.analysis.linear_rnn import LinearRNN
from rnndyn.analysis.linearized import LinearizedAccuracy
from rnndyn.analysis.points import SlowPoints
from rnndyn.analysis.reference import Reference
from rnndyn.analysis.spectra import Spectra
from rnndyn.analysis.verdict import Verdict, verdict
from rnndyn.analysis.word_effects import WordEffects
from rnndyn.analysis.word_inputs import WordInputs
from rnndyn.config import AnalysisConfig
from rnndyn.fixed_points import FixedPoints

__all__ = ["Analysis"]


@record
class Analysis:
    """Everything ``analyze`` measured. ``K`` analysed slow points.

    Attributes:
      points: ``SlowPoints``: every start of the search (``candidates``, each with its
        status) and the ``K`` analysed points (``kept``).
      spectra: ``Spectra`` at the ``K`` points.
      reference: ``Reference`` (``None`` without slow points).
      geometry: ``Geometry``; baseline: ``Baseline`` (bag of words);
      word_effects: ``WordEffects``; linearized: ``LinearizedAccuracy``;
      word_inputs: ``WordInputs`` (``None`` if not asked for or no slow point);
      prediction: ``words.DimensionPrediction`` from word counts of the training data.
      fidelity: ``Fidelity``: study A's measurements of the linearisation (one-step and
        iterated errors, nonlinearity curve).
      linear_rnn: ``LinearRNN`` trained directly (``None`` unless asked for).
      contextual: ``Contextual`` processing: modifiers, their subspace and ablation,
        position effects, extended bag of words (``None`` unless asked for).
      seconds: wall-clock time of the analysis.
      caveats: ``Caveat`` members that apply (``verdict()`` lists them).
      model: description of the classifier (cell, sizes, classes).
      dataset: name of the analysed dataset.
      settings: the ``AnalysisConfig`` used, with the PRNG key's data:
        ``analyze(model, data, params, config=a.settings)`` repeats the analysis.
    """

    points: SlowPoints
    spectra: Spectra
    reference: Reference | None
    geometry: Geometry
    baseline: Baseline
    word_effects: WordEffects
    linearized: LinearizedAccuracy
    word_inputs: WordInputs | None
    prediction: wd.DimensionPrediction
    fidelity: Fidelity
    linear_rnn: LinearRNN | None
    contextual: Contextual | None
    seconds: float
    caveats: tuple = static(())
    model: dict = static(None)
    dataset: str = static("")
    settings: AnalysisConfig = static(None)

    def verdict(self) -> Verdict:
        """What the dynamics are, in plain words: the kind of attractor, each claim with
        its number and threshold, and a line per caveat (``rnndyn.analysis.verdict``)."""
        return verdict(self)

    def summary(self) -> str:
        """Human-readable lines: the verdict (with the caveats), then the slow points and
        the headline numbers. A missing number says why it is missing."""
        return "\n".join(verdict(self).lines() + _summary_lines(self))

    def _repr_html_(self) -> str:
        """The notebook view: the verdict, the candidates per status, the key numbers and
        the fixed-point figure (``rnndyn.report.notebook_html``, the report's helpers);
        just the verdict where no view is registered."""
        view = _views.html_view("Analysis")
        return view(self) if view is not None else verdict(self).to_html()

    def headline_numbers(self) -> dict:
        """The numbers a reader of the JSON report looks for first, beside the studies':
        ``one_step_error`` (median and quantiles of study A's one-step linearisation
        error, nan without slow points, and ``study_a``: ~0.10) and ``modifiers`` (the
        ten strongest words of the contextual stage with strength, reach, gain on the next
        word and kind; ``None`` without the stage)."""
        f = self.fidelity
        q = np.asarray(f.one_step_quantiles, np.float64)
        one = {"median": float(f.one_step_median),
               "quantiles": {f"{p:g}": float(v) for p, v in zip(_QUANTILES, q, strict=True)},
               "study_a": STUDY_ONE_STEP_ERROR}  # fmt: skip
        mods = None if self.contextual is None else self.contextual.ranked(10)
        return {"one_step_error": one, "modifiers": mods}

    def to_dict(self) -> dict:
        """JSON-ready nested dict (see ``rnndyn.analysis.codec``); big arrays as
        placeholders for the ``.npz`` that ``to_json(path)`` writes beside the JSON."""
        return codec.encode(self, {})

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = 1) -> str:
        """The compact report as JSON text; with ``path``, also written there (atomically)
        with the big arrays in ``path`` + ``.npz`` (``from_json`` reads both back)."""
        return codec.to_json(self, path, indent=indent)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Analysis:
        """Read a report written by ``to_json(path)`` (and its ``.npz``) back."""
        return codec.from_json(path, RECORDS)


def _num(x: Any, spec: str, missing: str) -> str:
    """``x`` formatted with ``spec``, or ``missing`` (a reason) where it is not finite."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return missing
    return format(x, spec) if np.isfinite(x) else missing


def _median(x: Any) -> float:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _extent(points: Any) -> float:
    """Length of the slow points' extent along their first principal component."""
    p = np.asarray(points, np.float64)
    if len(p) < 2:
        return 0.0
    p = p - p.mean(0)
    return float(np.ptp(p @ np.linalg.svd(p, full_matrices=False)[2][0]))


_RULES = {"agree": "the visited states and the slow points agree", "given": "given (manifold_dim)"}


def _summary_lines(a: Analysis) -> list[str]:
    pts, geo, spec, lin, we = a.points, a.geometry, a.spectra, a.linearized, a.word_effects
    s = a.settings
    lines = [
        f"{pts.describe()}; {len(pts.kept):,} analysed after merging, {pts.search} search, "
        f"x* = {s.input_star if s else 'unknown'}"
    ]
    model = a.model or {}
    size = model.get("hidden_size", model.get("state_size", "?"))
    held = "held out" if a.baseline.held_out else "training accuracy"
    lines.append(
        f"{model.get('cell', '?')}, {size} units, on {a.dataset or 'data'}: accuracy "
        f"{lin.full:.3f}; bag of words {a.baseline.accuracy:.3f}, {held}"
    )
    no_point = "n/a, no slow point"
    ref = a.reference
    if ref is None:
        lines.append("reference point: none, no slow point to linearise at")
    else:
        span = _extent(pts.kept.points)
        scale = f"; the slow points extend {span:.3g} along PC1" if span > 0 else ""
        lines.append(
            f"reference point {ref.index}: |λ1| {ref.spectral_radius:.4f}, ‖h* − h0‖ = "
            f"{ref.distance:.3g} state-space units{scale}; chosen as {ref.reason}"
        )
    fpd, sd, pred = geo.fixed_point_dimension, geo.state_dimension, a.prediction
    fp_pcs = (
        f"PCs to 90% {fpd.pca90}, PR {fpd.participation_ratio:.2f}"
        if len(pts.kept) > 1
        else "not measurable with fewer than two points"
    )
    rule = _RULES.get(geo.dimension_rule, geo.dimension_rule)
    lines.append(
        f"manifold dimension {geo.manifold_dimension}, chosen as {rule}; slow points: "
        f"{fp_pcs}; visited states: PCs to 90% {sd.pca90}, PR {sd.participation_ratio:.2f}; "
        f"predicted from word counts {pred.dimension}"
    )
    if len(spec.spectral_radius):
        stab = np.bincount(np.asarray(spec.stability, np.int64), minlength=3)
        lines.append(
            f"|λ1| median {np.median(spec.spectral_radius):.4f}: stable {stab[0]}, marginal "
            f"{stab[1]}, unstable {stab[2]}; τ1 median "
            f"{np.median(spec.time_constants[:, 0]):.4g} steps; line-attractor score median "
            f"{_num(_median(spec.line_attractor_score), '.2f', 'n/a, one-dimensional state')}"
            f"; slow modes per point median {np.median(spec.slow_modes):.0f}"
        )
        lines.append(
            f"readout overlap with the manifold {geo.readout_overlap:.3f}; slowest right "
            "eigenvector tangent alignment median "
            f"{_num(_median(geo.tangent_alignment), '.3f', 'n/a, fewer than two points')}"
        )
    traj = (
        f"{_num(we.trajectory_correlation, '.3f', 'n/a, constant effects or weights')} along "
        f"the trajectory of {we.trajectory_length} tokens"
    )
    lines.append(
        f"word effects vs bag of words: r = {_num(we.correlation, '.3f', no_point)} at the "
        f"reference point, {traj}"
    )
    lines.append(
        f"accuracy: network {lin.full:.3f}; linearised at the reference point "
        f"{_num(lin.initial, '.3f', no_point)}, around the nearest point "
        f"{_num(lin.nearest, '.3f', no_point)}, along the trajectory under x* "
        f"{_num(lin.trajectory, '.3f', 'n/a')}"
    )
    lines += _fidelity_lines(a)
    if a.word_inputs is not None:
        wi = a.word_inputs
        lines.append(
            f"slow points under word inputs, {len(wi.words)} words: shift along the readout "
            f"vs bag of words r = {_num(wi.correlation, '.3f', 'n/a, fewer than two words')}"
        )
    return lines


def _fidelity_lines(a: Analysis) -> list[str]:
    """Study A's linearisation measurements, the linear RNN and contextual processing."""
    f, lines = a.fidelity, []
    if np.isfinite(f.one_step_median):
        it = ", ".join(f"{int(k)} steps {e:.0%}" for k, e in zip(f.steps, f.iterated, strict=True)
                       if np.isfinite(e) and k in (8, 64))  # fmt: skip
        lines.append(
            f"linearisation as study A measured it: one-step relative error at the nearest "
            f"slow point median {f.one_step_median:.0%} (study A: about "
            f"{STUDY_ONE_STEP_ERROR:.0%}); iterated {it or 'n/a (documents too short)'}"
        )
    curve = ", ".join(f"{g:.2f} at ε {e:g}" for e, g in zip(f.epsilons, f.agreement, strict=True)
                      if e in (0.05, 0.5, 1.0))  # fmt: skip
    lines.append(
        f"trajectory linearisation vs network on inputs x* + ε (x − x*): agreement {curve}"
    )
    lin, base = a.linearized, a.baseline
    if a.linear_rnn is not None:
        lines.append(
            f"linear RNN trained directly: accuracy {a.linear_rnn.accuracy:.3f} (network "
            f"{lin.full:.3f}, bag of words {base.accuracy:.3f}; study A: about 3 points below "
            "the LSTM)"
        )
    c = a.contextual
    if c is not None:
        lines += _contextual_lines(c, lin.full)
    return lines


def _contextual_lines(c: Contextual, network: float) -> list[str]:
    """Contextual processing beside study C's statements (Maheswaranathan & Sussillo 2020)."""
    strong = [m for m in c.ranked(4) if m["kind"] != "weak"]
    top = "; ".join(
        f"{m['word']} ×{m['gain']:.2f}, reach {_num(m['reach'], '.1f', 'n/a')}" for m in strong
    )
    if not top:
        top = f"none: every word's gain on the next word is within ×(1 ± {KIND:g})"
    intens = np.nan_to_num(c.strength[: len(c.subspace_words)]) > KIND
    atten = np.nan_to_num(c.strength[: len(c.subspace_words)]) < -KIND
    if intens.any() and atten.any():
        side = "on opposite sides" if c.opposite_sides else "not on opposite sides"
        side = f"intensifiers and attenuators {side} (study C: opposite sides)"
    else:
        side = "not both intensifiers and attenuators among its words"
    gain = network - c.bow_accuracy
    if np.isfinite(c.recovered):
        recovered = f"recovers {c.recovered:.0%} of the network's gain over the bag of words"
    elif gain < 0:
        recovered = (
            f"no gain to recover, the network is {-100 * gain:.1f} points below the bag of words"
        )
    else:
        recovered = (
            "no gain to recover, the network is less than "
            f"{100 * MIN_GAIN:g} point above the bag of words"
        )
    pos = c.position_effect
    before = np.median(np.abs(c.gain[: len(c.ablated_gain), 0] - 1))
    after = np.median(np.abs(c.ablated_gain - 1))
    return [
        f"modifiers, gain on the next word beyond moving along the line: {top}",
        f"modifier subspace {c.subspace_dimension}-D; {side}; projected out: |gain − 1| on "
        f"the next word {before:.2f} → {after:.2f} (median), accuracy {c.accuracy:.3f} → "
        f"{c.ablated_accuracy:.3f}",
        f"position: a word at the start weighs ×{pos[0]:.2f}, at the end ×{pos[-1]:.2f} of "
        "the average (study C: words near the start weigh more)",
        f"extended bag of words {c.extended_accuracy:.3f} (bag of words {c.bow_accuracy:.3f}, "
        f"network {network:.3f}): {recovered} (study C: over 90%)",
    ]


# the records a report may contain, by name (for the codec)
RECORDS = {
    c.__name__: c
    for c in (
        Analysis, SlowPoints, FixedPoints, Spectra, Fidelity, LinearRNN, Contextual,
        Reference, Geometry, Baseline, WordEffects, LinearizedAccuracy, WordInputs,
        AnalysisConfig, mf.Dimension, mf.IntrinsicDimension, wd.DimensionPrediction,
    )
}  # fmt: skip
