"""Stage: contextual processing (Maheswaranathan & Sussillo, ICML 2020), measured on the
network itself with ``rnndyn.modifiers``, and an extended bag of words
(``rnndyn.extended_bow``) against the plain one. Binary classifiers only.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from rnndyn import modifiers as md
from rnndyn._records import record, static
from rnndyn.analysis._common import token_counts
from rnndyn.analysis.baseline import Baseline
from rnndyn.analysis.geometry import Geometry
from rnndyn.analysis.network import NetworkRun
from rnndyn.analysis.reference import Reference
from rnndyn.analysis.spectra import Spectra
from rnndyn.data.dataset import pad_batch
from rnndyn.extended_bow import fit_extended_bag_of_words
from rnndyn.linearize import TAU_MAX
from rnndyn.models import Classifier

__all__ = ["Contextual", "contextual_processing"]

NUM_CONTEXTS = 64  # real states the gains are averaged over
NUM_PROBES = 8  # strongest positive and negative words (half each)
DISTANCES = 8  # probe positions after the word (0: right after)
SUBSPACE_WORDS = 12  # at most this many modifiers define the subspace
KIND = 0.25  # |strength| above which a word is an intensifier (> 0) or an attenuator (< 0)
POSITION_DOCS = 64  # documents for the position effects
MIN_GAIN = 0.01  # the RNN's gain over bag of words below which no fraction is reported


@record
class Contextual:
    """How words change the effect of the words after them. ``n`` candidate words
    (the most frequent), ``D`` distances, ``m`` subspace words.

    Attributes:
      words: ``(n,)`` ids, ranked by ``|strength|`` (strongest modifier first); names.
      valence: ``(n,)`` each word's own effect on the readout (logit difference).
      gain: ``(n, D)`` gain applied to probe words ``d`` tokens later, beyond moving the
        state along the line (``modifiers.gain_curves``); raw_gain, control_gain: the
        modifier and the control path against the baseline.
      strength: ``(n,)`` ``gain(0) − 1`` (> 0 intensifies; < −1 flips).
      reach: ``(n,)`` tokens, ``Σ_d |gain(d) − 1| / |gain(0) − 1|``.
      mode_tau: ``(n,)`` the time constant (steps) of the modes the word pushes, beyond
        the line's: ``Σ c_i² τ_i / Σ c_i²`` with ``c_i = |l_i J_inp (x_w − x*)|`` at the
        reference point (nan without one).
      probes: ``(P,)`` probe word ids; filler: the filler word's id.
      subspace_words: ``(m,)`` the modifiers (``|strength| > KIND``, at most
        ``SUBSPACE_WORDS``, at least two words); subspace_coords: ``(m, k)`` their
        mean off-line displacement in the subspace (PC1 signed so that intensifiers sit
        on its positive side); subspace_explained: energy per component;
        subspace_dimension: ``k`` (90%); subspace_basis: ``(k, S)``.
      opposite_sides: intensifiers and attenuators (negators) have PC1 means of
        opposite sign (nan-like ``False`` when one kind is missing among them).
      ablated_gain: ``(m,)`` gain at ``d = 0`` of the subspace words with the subspace
        projected out after every step (near 1 when the subspace carries the effect).
      accuracy, ablated_accuracy: the network's accuracy without and with the ablation.
      position_edges: ``(B + 1,)`` relative-position bins; position_effect: ``(B,)`` a
        probe's effect on the final readout by position, relative to its mean.
      bow_accuracy, extended_accuracy: held-out accuracy of the plain and the extended
        bag of words; recovered: ``(extended − bow) / (network − bow)`` (nan when the
        network's gain is below ``MIN_GAIN``).
      extended_strength, extended_reach: ``(n,)`` the extended bag of words' own modifier
        strength and reach for the ranked words.
    """

    words: np.ndarray
    valence: np.ndarray
    gain: np.ndarray
    raw_gain: np.ndarray
    control_gain: np.ndarray
    strength: np.ndarray
    reach: np.ndarray
    mode_tau: np.ndarray
    probes: np.ndarray
    filler: int
    subspace_words: np.ndarray
    subspace_coords: np.ndarray
    subspace_explained: np.ndarray
    subspace_dimension: int
    subspace_basis: np.ndarray
    opposite_sides: bool
    ablated_gain: np.ndarray
    accuracy: float
    ablated_accuracy: float
    position_edges: np.ndarray
    position_effect: np.ndarray
    bow_accuracy: float
    extended_accuracy: float
    recovered: float
    extended_strength: np.ndarray
    extended_reach: np.ndarray
    names: tuple = static(())

    def ranked(self, k: int = 10) -> list[dict]:
        """The ``k`` strongest modifiers as dicts (word, strength, reach, gain on the next
        word, kind: ``"flips"``, ``"attenuates"``, ``"intensifies"``, or ``"weak"`` within
        ``KIND`` of no modification)."""
        out = []
        for i in range(min(k, len(self.words))):
            s = float(self.strength[i])
            kind = (
                "weak" if not abs(s) > KIND else
                "flips" if s < -1 else ("attenuates" if s < 0 else "intensifies")
            )  # fmt: skip
            out.append({"word": self.names[i], "strength": s, "reach": float(self.reach[i]),
                        "gain": float(self.gain[i, 0]), "kind": kind})  # fmt: skip
        return out


def contextual_processing(
    model: Classifier,
    params: Any,
    data: Any,
    index: np.ndarray,
    train_data: Any,
    run: NetworkRun,
    points: Any,
    spec: Spectra,
    reference: Reference | None,
    geo: Geometry,
    baseline: Baseline,
    x_star: Any,
    *,
    key: jax.Array,
    candidates: int,
    bow_steps: int = 500,
) -> Contextual | None:
    """The contextual-processing measurements (module docstring); ``None`` unless the
    classifier is binary (softmax over two classes)."""
    if model.multilabel or model.num_classes != 2:
        return None
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    cell, cp = model.cell, params["cell"]
    w = np.asarray(params["readout"]["W"], np.float64)
    readout = w[:, 1] - w[:, 0]
    emb = np.asarray(params["embedding"], np.float32)
    contexts = run.visited[rng.choice(len(run.visited), min(NUM_CONTEXTS, len(run.visited)),
                                      replace=False)].astype(np.float64)  # fmt: skip
    points = np.asarray(points, np.float64)
    counts = token_counts(train_data.tokens, train_data.lengths, model.vocab_size)
    counts[:2] = 0  # never <pad> or <unk>
    frequent = np.argsort(-counts, kind="stable")[: max(candidates, 500)]
    frequent = frequent[counts[frequent] > 0]
    pool_valence = md.valences(cell, cp, readout, contexts, emb[frequent], np.asarray(x_star))
    filler = int(frequent[:50][np.argmin(np.abs(pool_valence[:50]))])
    order = np.argsort(pool_valence)
    probes = np.concatenate([frequent[order[: NUM_PROBES // 2]],
                             frequent[order[-(NUM_PROBES // 2):]]])  # fmt: skip
    words = frequent[:candidates]
    line, line_basis = _line(points, spec, contexts), _line_basis(geo)
    curves = md.gain_curves(cell, cp, readout, contexts, emb[words], emb[probes], emb[filler],
                            line, distances=DISTANCES)  # fmt: skip
    valence = pool_valence[: len(words)]
    strength = curves.gain[:, 0] - 1.0
    rank = np.argsort(-np.abs(np.nan_to_num(strength, nan=0.0)), kind="stable")
    words, strength, valence = words[rank], strength[rank], valence[rank]
    curves = jax.tree_util.tree_map(lambda a: a[rank], curves)
    strong = int(np.sum(np.abs(np.nan_to_num(strength)) > KIND))
    top = np.arange(min(SUBSPACE_WORDS, len(words), max(strong, 2)))
    sub = md.modifier_subspace(curves.displacement[top], line_basis)
    coords = sub.coords
    intens, atten = strength[top] > KIND, strength[top] < -KIND
    if intens.any() and np.mean(coords[intens, 0]) < 0:
        coords = coords * np.r_[-1.0, np.ones(coords.shape[1] - 1)]
    opposite = bool(intens.any() and atten.any() and np.mean(coords[intens, 0]) > 0
                    and np.mean(coords[atten, 0]) < 0)  # fmt: skip
    h_ref = reference.point if reference is not None else contexts.mean(0)
    ablate = md.Ablate(np.asarray(sub.basis, np.float32), np.asarray(h_ref, np.float32))
    ablated = md.gain_curves(cell, cp, readout, contexts, emb[words[top]], emb[probes],
                             emb[filler], line, distances=1, ablate=ablate).gain[:, 0]  # fmt: skip
    acc, acc_ablated = _accuracies(model, params, data, index, readout, ablate)
    edges, effect = _positions(model, params, data, index, readout, emb[probes], rng)
    ext = _extended(model, train_data, data, index, baseline, bow_steps)
    gain_rnn = run.accuracy - baseline.accuracy
    return Contextual(
        words=words, valence=np.asarray(valence), gain=curves.gain, raw_gain=curves.raw_gain,
        control_gain=curves.control_gain, strength=strength, reach=md.reach(curves.gain),
        mode_tau=_mode_tau(reference, emb[words], np.asarray(x_star), line_basis.shape[0]),
        probes=probes, filler=filler, subspace_words=words[top], subspace_coords=coords,
        subspace_explained=sub.explained, subspace_dimension=int(sub.basis.shape[0]),
        subspace_basis=sub.basis, opposite_sides=opposite, ablated_gain=ablated,
        accuracy=acc, ablated_accuracy=acc_ablated, position_edges=edges,
        position_effect=effect / np.mean(effect), bow_accuracy=baseline.accuracy,
        extended_accuracy=ext[0],
        recovered=(ext[0] - baseline.accuracy) / gain_rnn if gain_rnn >= MIN_GAIN else np.nan,
        extended_strength=ext[1].strength[words], extended_reach=ext[1].reach[words],
        names=tuple(_name(train_data, i) for i in words),
    )  # fmt: skip


def _name(data: Any, i: int) -> str:
    vocab = getattr(data, "vocab", ())
    return vocab[i] if i < len(vocab) else str(i)


def _line(points: np.ndarray, spec: Spectra, contexts: np.ndarray) -> np.ndarray | None:
    """``(K, S)`` the line's local direction at each context: the slowest mode's right
    eigenvector at the nearest slow point (``None`` without slow points)."""
    if len(points) == 0:
        return None
    d2 = np.sum(contexts**2, 1)[:, None] - 2 * contexts @ points.T + np.sum(points**2, 1)
    return np.asarray(spec.slow_vectors)[np.argmin(d2, axis=1)]


def _line_basis(geo: Geometry) -> np.ndarray:
    """``(d, S)`` the slow modes at the reference point (empty without one)."""
    if geo.mode_right is None:
        return np.zeros((0, geo.manifold_basis.shape[1]))
    return np.asarray(geo.mode_right).T


def _mode_tau(reference, inputs, x_star, num_line: int) -> np.ndarray:
    if reference is None:
        return np.full(len(inputs), np.nan)
    left = np.asarray(reference.left)[num_line:]
    push = np.abs((inputs - x_star) @ np.asarray(reference.j_inp).T @ left.T) ** 2  # (n, S - d)
    with np.errstate(divide="ignore"):
        tau = np.minimum(1.0 / np.abs(np.log(np.abs(reference.eigenvalues[num_line:]))), TAU_MAX)
    return push @ tau / np.maximum(push.sum(axis=1), 1e-300)


def _accuracies(model, params, data, index, readout, ablate, max_docs: int = 512):
    """The network's accuracy on up to ``max_docs`` analysed examples, and with the
    subspace projected out after every step."""
    docs = index[:max_docs]
    batch = pad_batch(data, docs, len(docs))
    xs = np.asarray(params["embedding"], np.float32)[batch["tokens"]]
    lengths = np.asarray(data.lengths)[docs]
    labels = np.asarray(data.labels)[docs]
    b = np.asarray(params["readout"]["b"], np.float64)
    out = []
    for ab in (None, ablate):
        score = md.final_scores(model.cell, params["cell"], readout, xs, lengths, ab)
        out.append(float(np.mean((score + b[1] - b[0] > 0) == (labels == 1))))
    return tuple(out)


def _positions(model, params, data, index, readout, probes, rng):
    """Position effects of the strongest positive and negative probes."""
    lengths = np.asarray(data.lengths)[index]
    docs = index[lengths >= 10]
    docs = docs[rng.permutation(len(docs))[:POSITION_DOCS]] if len(docs) else index[:1]
    batch = pad_batch(data, docs, len(docs))
    xs = np.asarray(params["embedding"], np.float32)[batch["tokens"]]
    return md.position_effects(model.cell, params["cell"], readout, xs,
                               np.asarray(data.lengths)[docs], probes[-1], probes[0])  # fmt: skip


def _extended(model, train_data, data, index, baseline, steps):
    """Held-out accuracy of the extended bag of words fit where the plain one was."""
    rows = baseline.fit_index
    ext = fit_extended_bag_of_words(
        np.asarray(train_data.tokens)[rows], np.asarray(train_data.labels)[rows],
        model.vocab_size, model.num_classes, lengths=np.asarray(train_data.lengths)[rows],
        init_valence=baseline.weights, init_bias=baseline.bias, steps=2 * steps,
    )  # fmt: skip
    logits = ext.logits(np.asarray(data.tokens)[index], np.asarray(data.lengths)[index])
    acc = float(np.mean(np.argmax(logits, 1) == np.asarray(data.labels)[index]))
    return acc, ext
