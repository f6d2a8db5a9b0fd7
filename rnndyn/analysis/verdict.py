"""A plain-language verdict on an ``Analysis``: what the dynamics are, each claim with
the number behind it, and a line per caveat.

``verdict(a)`` (also ``Analysis.verdict()``) decides every claim from the record's own
numbers against the thresholds below, so the same analysis always reads the same way,
and a claim whose threshold is not met is said the other way round ("not on a line:
..."). The report (``rnndyn.report``), the first lines of ``Analysis.summary()`` and a
notebook's ``_repr_html_`` all render this one verdict.

Thresholds (each a module constant):

* shape of the slow points: on a **line** when PC1 carries at least ``LINE_PC1`` of
  their variance; otherwise a ``d``-dimensional manifold (a plane for ``d = 2``), ``d``
  the manifold dimension the analysis chose, when ``d`` PCs carry at least the
  analysis' ``threshold``; one slow point is a point attractor, none is no attractor;
* **slow modes**: a point has one when a mode's ``|λ|`` is within the marginal band of 1
  (``Spectra.slow_modes``); the attractor claim needs that at ``SLOW_FRACTION`` of the
  points, and the memory it gives (median ``τ1``) is compared with the median document
  length (``WordEffects.trajectory_length``): at least ``MEMORY_RATIO`` times it keeps
  evidence from a whole document;
* **readout**: aligned with the manifold when the root-mean-square ``|cos|`` of the
  principal angles between the readout rows and the manifold's principal directions,
  ``sqrt(Geometry.readout_overlap)``, is at least ``READOUT_ALIGNED`` (a random direction
  in ``N`` units scores about ``sqrt(d / N)``, printed beside it);
* **word effects** agree with a bag of words when Pearson ``r`` is at least
  ``WORDS_AGREE`` (at the reference point; along the trajectory without one);
* **linearisation** is faithful when its accuracy is within ``LINEAR_FAITHFUL`` of the
  network's (at the reference point; along the trajectory without one).

Where the record has them, claims set beside the studies' statements follow (never a
caveat for a gap the studies themselves report): study A's one-step linearisation error
(as study A when at most ``ONE_STEP_LIMIT``, ~10% reported), a linear RNN trained
directly (within ``LINEAR_RNN_GAP`` of the network; about 3 points reported), and study
C's contextual processing: the modifiers with their gain and reach, intensifiers and
negators on opposite sides of the modifier subspace, and an extended bag of words
recovering at least ``RECOVERED`` of the network's gain over a bag of words.

The kind of attractor (the headline) needs the shape and the slow modes: "Line
attractor" when both hold, "Not a line attractor: ..." naming what failed otherwise.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnndyn.analysis.caveats import ONE_STEP_LIMIT, details

__all__ = [
    "LINEAR_FAITHFUL",
    "LINEAR_RNN_GAP",
    "LINE_PC1",
    "MEMORY_RATIO",
    "READOUT_ALIGNED",
    "RECOVERED",
    "SHORT_CAVEATS",
    "SLOW_FRACTION",
    "WORDS_AGREE",
    "Claim",
    "Verdict",
    "verdict",
]

#: The slow points lie on a line when PC1 carries at least this fraction of their variance.
LINE_PC1 = 0.8
#: Fraction of the points that must have a slow mode (``| |λ| − 1 |`` within the band).
SLOW_FRACTION = 0.8
#: The memory outlasts a document when the median ``τ1`` is at least this times the
#: median document length.
MEMORY_RATIO = 1.0
#: The readout is aligned with the manifold when its RMS ``|cos|`` is at least this.
READOUT_ALIGNED = 0.5
#: Word effects agree with the bag of words when Pearson ``r`` is at least this.
WORDS_AGREE = 0.5
#: The linearised model is faithful when it loses at most this much accuracy.
LINEAR_FAITHFUL = 0.05
#: Topics of the claims set beside the studies' statements (folded in the HTML verdict).
STUDY_TOPICS = ("one_step", "linear_rnn", "modifiers", "extended_bow")
#: A linear RNN trained directly is as in study A when at most this far below the network.
LINEAR_RNN_GAP = 0.05
#: The extended bag of words is as in study C when it recovers this much of the network's
#: gain over a bag of words.
RECOVERED = 0.9
#: |gain on the next word − 1| above which a word counts as a modifier.
MODIFIER = 0.25

_MARK = {True: "✓", False: "✗", None: "·"}

#: A few words per caveat, for places without room for its message (the report's
#: verdict links them to the full text); a caveat not named here shows its message.
SHORT_CAVEATS = {
    "NO_SLOW_POINTS": "no slow point was found",
    "NO_ROOTS": "no certified root to analyse",
    "FEW_SLOW_POINTS": "only two slow points",
    "POINT_ATTRACTOR": "a single slow point",
    "NEWTON_FALLBACK": "the hybrid Adam + Newton search was used",
    "UNSTABLE_REFERENCE": "the reference point is unstable",
    "DIMENSION_DISAGREEMENT": "the states and the slow points need different numbers of PCs",
    "NO_WORD_INPUT_POINTS": "too few slow points under word inputs",
    "BASELINE_NOT_HELD_OUT": "the bag of words is scored on its training data",
}


@dataclasses.dataclass(frozen=True)
class Claim:
    """One line of a verdict.

    Attributes:
      topic: ``"shape"``, ``"slow_modes"``, ``"readout"``, ``"words"``, ``"linear"``,
        beside the studies ``"one_step"``, ``"linear_rnn"``, ``"modifiers"``,
        ``"extended_bow"``, or ``"caveat"``.
      holds: whether the threshold is met (``None``: not measurable, or a caveat).
      text: the claim in words with its number, e.g. ``"readout aligned with the
        manifold: |cos| 0.98, a random direction ≈ 0.25"``.
      value: the number tested (``None`` when there is none).
      rule: the threshold as text, e.g. ``"PC1 ≥ 80%"``.
      severity: for a caveat, ``"warning"`` or ``"note"``; else ``""``.
      short: for a caveat, a few words (``SHORT_CAVEATS``); else ``""``.
    """

    topic: str
    holds: bool | None
    text: str
    value: float | None = None
    rule: str = ""
    severity: str = ""
    short: str = ""

    def line(self) -> str:
        """The claim as one line of text: a mark (✓, ✗, · or !) and the text."""
        if self.topic == "caveat":
            return f"! {self.severity.upper()}: {self.text}"
        return f"{_MARK[self.holds]} {self.text}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the dynamics are (``headline``) and why (``claims``, caveats last)."""

    headline: str
    claims: tuple[Claim, ...]
    kind: str = ""

    @property
    def caveats(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if c.topic == "caveat")

    def lines(self) -> list[str]:
        """``"Verdict: <headline>"`` then one line per claim."""
        return [f"Verdict: {self.headline}"] + ["  " + c.line() for c in self.claims]

    def sentence(self) -> str:
        """The headline and the claims (not the caveats) in one sentence."""
        body = "; ".join(c.text for c in self.claims if c.topic != "caveat")
        return f"{self.headline}: {body}" if body else self.headline

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_html(self, caveat_link: str | None = None) -> str:
        """An HTML fragment: the headline and a list of the claims, each with a class
        (``holds``, ``fails``, ``unknown``, ``warning``, ``note``) for styling. With
        ``caveat_link`` (e.g. ``"#caveats"``) a caveat shows its few words and links there
        for the full text."""
        esc = html.escape
        main = [c for c in self.claims if c.topic not in STUDY_TOPICS]
        beside = [c for c in self.claims if c.topic in STUDY_TOPICS]
        out = (
            f'<div class="verdict"><p class="headline">{esc(self.headline)}</p>\n'
            f'<ul class="claims">\n{_items(main, caveat_link)}\n</ul>'
        )
        if beside:  # folded, so the verdict and the main figure fit one phone screen
            out += (
                f'\n<details class="studies"><summary>beside the studies ({len(beside)})'
                f'</summary>\n<ul class="claims">\n{_items(beside, caveat_link)}\n</ul></details>'
            )
        return out + "</div>"

    def _repr_html_(self) -> str:
        return self.to_html()


def _items(claims: list[Claim], caveat_link: str | None) -> str:
    """``<li>`` items of ``claims``, with a class for styling (see ``Verdict.to_html``)."""
    esc = html.escape
    items = []
    for c in claims:
        if c.topic == "caveat":
            cls, mark = c.severity, "!"
            if caveat_link and c.short:
                text = (f"<b>{esc(c.severity)}</b>: {esc(c.short)} "
                        f'<a href="{esc(caveat_link)}">details</a>')  # fmt: skip
            else:
                text = f"<b>{esc(c.severity)}</b>: {esc(c.text)}"
        else:
            cls = {True: "holds", False: "fails", None: "unknown"}[c.holds]
            mark, text = _MARK[c.holds], esc(c.text)
        rule = f' title="{esc(c.rule)}"' if c.rule else ""
        items.append(
            f'<li class="{cls}"{rule}><span class="mark" aria-hidden="true">{mark}</span> '
            f"{text}</li>"
        )
    return "\n".join(items)


def verdict(a: Any) -> Verdict:
    """The verdict on ``Analysis`` ``a`` (thresholds: this module's constants)."""
    claims: list[Claim] = []
    kind, fails = _shape(a, claims)
    attractor = _slow_modes(a, claims)
    _readout(a, claims)
    _words(a, claims)
    _linear(a, claims)
    _studies(a, claims)
    for c in a.caveats:
        extra = details(c, a)
        text = c.message + (f"; {extra}" if extra else "")
        claims.append(Claim("caveat", None, text, severity=c.severity,
                            short=SHORT_CAVEATS.get(c.name, "")))  # fmt: skip
    if attractor is False:
        fails.append("no slow mode at most points")
    if kind in ("none", "two"):
        headline = (
            "No attractor found: no slow point"
            if kind == "none"
            else "Two slow points: too few to tell a line from a point"
        )
    elif kind == "point":
        unstable = bool(np.all(np.asarray(a.spectra.stability) == 2))
        headline = "Not an attractor: one unstable slow point" if unstable else "Point attractor"
    else:
        headline = f"{kind[0].upper()}{kind[1:]} attractor"
        if fails:
            headline = f"Not a {kind} attractor: " + "; ".join(fails)
    return Verdict(headline, tuple(claims), kind)


# --------------------------------------------------------------------------- claims


def _pct(x: float) -> str:
    """A fraction as a percentage: more digits where 0 decimals would round to 0% or 100%."""
    p = 100 * float(x)
    text = f"{p:.0f}"
    if (text == "0" and p > 0) or (text == "100" and p < 100):
        text = f"{p:.2g}" if p < 1 else f"{p:.4g}"
    return text + "%"


def _num(x: float, threshold: float) -> str:
    """``x`` to 2 decimals, or 3 where 2 would read as the threshold it is compared with."""
    text = f"{x:.2f}"
    return f"{x:.3f}" if text == f"{threshold:.2f}" and x != threshold else text


def _steps(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _shape(a: Any, claims: list[Claim]) -> tuple[str, list[str]]:
    k = len(a.points.kept)
    geo = a.geometry
    pred = getattr(a.prediction, "dimension", None)
    model = a.model if isinstance(a.model, Mapping) else {}
    if k == 0:
        claims.append(Claim("shape", None, f"no slow point among {len(a.points.candidates):,} "
                            "starts: nothing to call an attractor"))  # fmt: skip
        return "none", []
    if k == 1:
        claims.append(Claim("shape", None, "one slow point: a point attractor, dimension 0"))
        return "point", []
    if k == 2:
        claims.append(Claim("shape", None, "two slow points: their dimension is not measurable"))
        return "two", []
    spectrum = np.asarray(geo.fixed_point_dimension.spectrum, np.float64)
    pc1 = float(spectrum[0]) if spectrum.size else 0.0
    d = int(geo.manifold_dimension)
    predicted = ""
    if pred is not None:
        predicted = (
            f"; word counts predict {int(pred)}" if int(pred) != d else ", as word counts predict"
        )
    c = model.get("num_classes")
    if c and not model.get("multilabel") and d == int(c) - 1 and d > 1:
        predicted += f"; C − 1 = {d} for {c} classes"
    if pc1 >= LINE_PC1:
        text = f"{k:,} slow points on a line: PC1 holds {_pct(pc1)} of their variance{predicted}"
        claims.append(Claim("shape", True, text, pc1, f"PC1 ≥ {_pct(LINE_PC1)}"))
        return "line", []
    top = float(spectrum[:d].sum())
    kind = "plane" if d == 2 else f"{d}-D"
    noun = "plane" if d == 2 else f"{d}-D manifold"
    rule = f"PC1 ≥ {_pct(LINE_PC1)} for a line; {d} PCs ≥ {_pct(geo.threshold)}"
    if d >= 2 and top >= geo.threshold:
        text = (
            f"{k:,} slow points on a {noun}, not a line: {d} PCs hold {_pct(top)} of their "
            f"variance, PC1 {_pct(pc1)}{predicted}"
        )
        claims.append(Claim("shape", True, text, top, rule))
        return kind, []
    n90 = int(geo.fixed_point_dimension.pca90)
    text = (
        f"{k:,} slow points not on a line: PC1 holds only {_pct(pc1)} of their variance, "
        f"{n90} PCs reach 90%{predicted}"
    )
    claims.append(Claim("shape", False, text, pc1, rule))
    return (
        ("line", ["the slow points are not on a line"])
        if d == 1
        else (kind, [f"the slow points are not on a {noun}"])
    )


def _slow_modes(a: Any, claims: list[Claim]) -> bool | None:
    spec = a.spectra
    rad = np.asarray(spec.spectral_radius, np.float64)
    if rad.size == 0:
        return None
    slow = np.asarray(spec.slow_modes)
    frac = float(np.mean(slow >= 1))
    tau = float(np.median(np.asarray(spec.time_constants)[:, 0]))
    length = int(a.word_effects.trajectory_length)
    band = float(spec.marginal_band)
    m = int(np.median(slow))
    count = {0: "no slow mode", 1: "one slow mode"}.get(m, f"{m} slow modes")
    where = (
        "at every point" if frac == 1 else "at one point" if len(rad) == 1 else
        f"at {_pct(frac)} of the points"
    )  # fmt: skip
    capped = tau >= spec.tau_max * (1 - 1e-9)
    tau_text = f"τ at the cap of {spec.tau_max:,.0f} steps" if capped else f"τ ≈ {_steps(tau)}"
    tau_text += "" if capped else " steps"
    longer = tau >= MEMORY_RATIO * length
    memory = (
        f"{tau_text}, documents ≈ {length:,} tokens"
        if longer
        else f"{tau_text}, shorter than documents ≈ {length:,} tokens: evidence fades"
    )
    unstable = int(np.sum(np.asarray(spec.stability) == 2))
    extra = f"; {unstable:,} unstable" if unstable else ""
    rule = f"| |λ| − 1 | ≤ {band:g} at ≥ {_pct(SLOW_FRACTION)} of the points"
    if frac >= SLOW_FRACTION:
        text = f"{count if m else 'a slow mode'} {where}: {memory}{extra}"
        claims.append(Claim("slow_modes", True, text, frac, rule))
        return True
    text = (
        f"no slow mode at most points: {_pct(frac)} have |λ| within {band:g} of 1, median "
        f"|λ1| {np.median(rad):.3f}; {memory}{extra}"
    )
    claims.append(Claim("slow_modes", False, text, frac, rule))
    return False


def _readout(a: Any, claims: list[Claim]) -> None:
    geo = a.geometry
    overlap = float(geo.readout_overlap)
    if not np.isfinite(overlap):
        claims.append(Claim("readout", None, "readout alignment not measurable"))
        return
    cos = float(np.sqrt(max(overlap, 0.0)))
    basis = np.asarray(geo.output_basis)
    d, n = basis.shape if basis.ndim == 2 else (1, 1)
    chance = float(np.sqrt(min(d / max(n, 1), 1.0)))
    rule = f"RMS |cos| ≥ {READOUT_ALIGNED:g}"
    where = "the line" if d == 1 else f"the manifold's {d} PCs"
    if cos >= READOUT_ALIGNED:
        text = f"readout aligned with {where}: |cos| {_num(cos, READOUT_ALIGNED)}, a random "
        text += f"direction ≈ {chance:.2f}"
    else:
        text = (
            f"readout not aligned with {where}: |cos| {_num(cos, READOUT_ALIGNED)} < "
            f"{READOUT_ALIGNED:g}, a random "
            f"direction ≈ {chance:.2f}"
        )
    claims.append(Claim("readout", cos >= READOUT_ALIGNED, text, cos, rule))


def _words(a: Any, claims: list[Claim]) -> None:
    we = a.word_effects
    r, where = float(we.correlation), "at the reference point"
    if not np.isfinite(r):
        r, where = float(we.trajectory_correlation), "along the trajectory"
    rule = f"Pearson r ≥ {WORDS_AGREE:g}"
    if not np.isfinite(r):
        claims.append(Claim("words", None, "word effects vs bag of words: not measurable, the "
                            "effects or the weights are constant", rule=rule))  # fmt: skip
        return
    if r >= WORDS_AGREE:
        text = f"word effects {where} agree with a bag of words: r {_num(r, WORDS_AGREE)}"
    else:
        text = (
            f"word effects {where} do not match a bag of words: r {_num(r, WORDS_AGREE)} < "
            f"{WORDS_AGREE:g}"
        )
    claims.append(Claim("words", r >= WORDS_AGREE, text, r, rule))


def _linear(a: Any, claims: list[Claim]) -> None:
    lin = a.linearized
    full = float(lin.full)
    acc, where = float(lin.initial), "at the reference point"
    if not np.isfinite(acc):
        acc, where = float(lin.trajectory), "along the trajectory"
    bow = float(a.baseline.accuracy)
    context = f"network {full:.3f}, bag of words {bow:.3f}"
    rule = f"loses ≤ {LINEAR_FAITHFUL:g} accuracy"
    if not np.isfinite(acc):
        claims.append(Claim("linear", None, f"linearised accuracy not measurable; {context}"))
        return
    loss = full - acc
    if loss <= LINEAR_FAITHFUL:
        text = f"linearised {where} keeps the accuracy: {acc:.3f}; {context}"
    else:
        text = f"linearised {where} loses {loss:.3f} accuracy: {acc:.3f}; {context}"
        if getattr(a, "fidelity", None) is not None:
            text += "; study A too: iterated over whole documents, much worse"
    claims.append(Claim("linear", loss <= LINEAR_FAITHFUL, text, acc, rule))


def _studies(a: Any, claims: list[Claim]) -> None:
    """Claims beside the studies' statements, where the record has the numbers."""
    f = getattr(a, "fidelity", None)
    if f is not None and np.isfinite(f.one_step_median):
        e = float(f.one_step_median)
        as_study = e <= ONE_STEP_LIMIT
        text = (f"one-step linearisation error at the nearest slow point {_pct(e)} "
                f"{'as in' if as_study else 'far above'} study A's ~10%")  # fmt: skip
        claims.append(Claim("one_step", as_study, text, e, f"median ≤ {_pct(ONE_STEP_LIMIT)}"))
    linear = getattr(a, "linear_rnn", None)
    if linear is not None:
        gap = float(a.linearized.full) - float(linear.accuracy)
        where = f"{100 * gap:.1f} points below" if gap >= 0 else f"{-100 * gap:.1f} points above"
        text = (f"a linear RNN trained directly: {linear.accuracy:.3f}, {where} the network "
                "(study A: about 3 below)")  # fmt: skip
        claims.append(Claim("linear_rnn", gap <= LINEAR_RNN_GAP, text, float(linear.accuracy),
                            f"at most {100 * LINEAR_RNN_GAP:g} points below"))  # fmt: skip
    c = getattr(a, "contextual", None)
    if c is not None:
        _modifiers(c, claims)
        _extended(c, claims)


def _modifiers(c: Any, claims: list[Claim]) -> None:
    strength = np.nan_to_num(np.asarray(c.strength, np.float64))
    strong = np.flatnonzero(np.abs(strength) > MODIFIER)[:3]
    rule = "intensifiers and negators on opposite sides of the modifier subspace"
    if strong.size == 0:
        text = (f"no modifier: every word's gain on the next word is within ×(1 ± {MODIFIER:g})"
                "; study C finds negators and intensifiers")  # fmt: skip
        claims.append(Claim("modifiers", None, text, rule=rule))
        return
    reach = np.asarray(c.reach, np.float64)
    words = ", ".join(
        f"{c.names[i]} ×{1 + strength[i]:.2f}"
        + (f" for {reach[i]:.1f} tokens" if np.isfinite(reach[i]) else "")
        for i in strong
    )
    top = strength[: len(c.subspace_words)]
    both = bool(np.any(top > MODIFIER) and np.any(top < -MODIFIER))
    if not both:
        kind = "intensifiers" if np.any(top > MODIFIER) else "attenuators"
        text = f"modifiers {words}; only {kind}, so no sides to compare with study C"
        claims.append(Claim("modifiers", None, text, rule=rule))
        return
    side = "on opposite sides" if c.opposite_sides else "not on opposite sides"
    text = (
        f"modifiers {words}; intensifiers and attenuators {side} of a "
        f"{int(c.subspace_dimension)}-D modifier subspace (study C: opposite sides)"
    )
    claims.append(Claim("modifiers", bool(c.opposite_sides), text, rule=rule))


def _extended(c: Any, claims: list[Claim]) -> None:
    rule = f"recovers ≥ {_pct(RECOVERED)} of the network's gain"
    r = float(c.recovered)
    if not np.isfinite(r):
        text = (
            f"extended bag of words {c.extended_accuracy:.3f}: the network gains under 1 "
            f"point over a bag of words ({c.bow_accuracy:.3f}), nothing to recover"
        )
        claims.append(Claim("extended_bow", None, text, rule=rule))
        return
    text = (
        f"an extended bag of words recovers {_pct(r)} of the network's gain over a bag "
        f"of words: {c.extended_accuracy:.3f} vs {c.bow_accuracy:.3f} (study C: over 90%)"
    )
    claims.append(Claim("extended_bow", r >= RECOVERED, text, r, rule))
