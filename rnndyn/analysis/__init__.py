"""One-call reverse engineering of a trained classifier: ``rnndyn.analyze``.

A package of stages, each a module with its record and its function:

- ``network``: ``run_network`` → ``NetworkRun`` (visited states, logits, accuracy);
- ``baseline``: ``bag_of_words`` → ``Baseline`` (fit on training data, scored held out);
- ``points``: ``search_slow_points`` → ``SlowPoints`` (every start with its status; the
  analysed slow points);
- ``spectra``: ``spectra`` → ``Spectra`` (eigenvalues, time constants, stability);
- ``reference``: ``choose_reference`` → ``Reference`` (with its eigendecomposition);
- ``geometry``: ``geometry`` → ``Geometry`` (dimension, readout and mode geometry);
- ``word_effects``: ``word_effects`` → ``WordEffects``;
- ``linearized``: ``linearized`` → ``LinearizedAccuracy``;
- ``word_inputs``: ``word_input_fixed_points`` → ``WordInputs``;
- ``caveats``: ``Caveat`` and ``detect``; ``result``: ``Analysis`` and its summary;
  ``codec``: the JSON + ``.npz`` report; ``driver``: ``analyze``.
"""

from rnndyn.analysis import codec
from rnndyn.analysis._common import readout_in_state_space
from rnndyn.analysis.baseline import Baseline, bag_of_words
from rnndyn.analysis.caveats import Caveat
from rnndyn.analysis.driver import analyze
from rnndyn.analysis.geometry import Geometry, geometry
from rnndyn.analysis.linearized import LinearizedAccuracy, linearized, linearized_accuracy
from rnndyn.analysis.network import NetworkRun, run_network
from rnndyn.analysis.points import SlowPoints, search_slow_points
from rnndyn.analysis.reference import Reference, choose_reference
from rnndyn.analysis.result import Analysis
from rnndyn.analysis.spectra import Spectra, spectra
from rnndyn.analysis.word_effects import WordEffects, word_effects
from rnndyn.analysis.word_inputs import WordInputs, word_input_fixed_points

__all__ = [
    "codec",
    "Analysis",
    "Baseline",
    "Caveat",
    "Geometry",
    "LinearizedAccuracy",
    "NetworkRun",
    "Reference",
    "SlowPoints",
    "Spectra",
    "WordEffects",
    "WordInputs",
    "analyze",
    "bag_of_words",
    "choose_reference",
    "geometry",
    "linearized",
    "linearized_accuracy",
    "readout_in_state_space",
    "run_network",
    "search_slow_points",
    "spectra",
    "word_effects",
    "word_input_fixed_points",
]
