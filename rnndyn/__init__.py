"""rnndyn: reverse engineer trained recurrent networks with dynamical-systems tools.

Core API::

    import rnndyn
    cell = rnndyn.cells.GRU(64)
    params = cell.init(key, input_size)
    fps = rnndyn.find_fixed_points(cell, params, inputs, initial_states)
    j_rec, j_inp = rnndyn.jacobians(cell, params, fps.points, fps.inputs)
    values, right, left = rnndyn.eig(j_rec)

    # a trained PyTorch or equinox network
    cell, params = rnndyn.from_torch(torch_gru)   # or rnndyn.from_equinox(eqx_cell)

    # a trained classifier, end to end (docs/analysis.md)
    report = rnndyn.analyze(model, test_set, params, key=key, train_data=train_set)
"""

from typing import TYPE_CHECKING, Any

from rnndyn import _lazy, _views

#: Public names and the module each comes from. They are imported on first use (PEP 562),
#: so ``import rnndyn`` and the command line's ``--help`` load no JAX.
_EXPORTS = {
    "Analysis": "rnndyn.analysis",
    "analyze": "rnndyn.analysis",
    "GRU": "rnndyn.cells",
    "LSTM": "rnndyn.cells",
    "Linear": "rnndyn.cells",
    "UGRNN": "rnndyn.cells",
    "Cell": "rnndyn.cells",
    "Vanilla": "rnndyn.cells",
    "from_flax": "rnndyn.cells",
    "from_function": "rnndyn.cells",
    "Checkpoint": "rnndyn.checkpoint",
    "load_checkpoint": "rnndyn.checkpoint",
    "save_checkpoint": "rnndyn.checkpoint",
    "enable_compilation_cache": "rnndyn.compilation_cache",
    "TrainConfig": "rnndyn.config",
    "from_equinox": "rnndyn.convert",
    "from_torch": "rnndyn.convert",
    "FixedPoints": "rnndyn.fixed_points",
    "Status": "rnndyn.fixed_points",
    "find_fixed_points": "rnndyn.fixed_points",
    "sample_states": "rnndyn.fixed_points",
    "speed": "rnndyn.fixed_points",
    "Eigen": "rnndyn.linearize",
    "Jacobians": "rnndyn.linearize",
    "Linearization": "rnndyn.linearize",
    "eig": "rnndyn.linearize",
    "jacobians": "rnndyn.linearize",
    "linear_step": "rnndyn.linearize",
    "linearization": "rnndyn.linearize",
    "run_linearized": "rnndyn.linearize",
    "run_trajectory": "rnndyn.linearize",
    "simulate_linear": "rnndyn.linearize",
    "time_constants": "rnndyn.linearize",
    "Classifier": "rnndyn.models",
    "TrainingDivergedError": "rnndyn.train",
    "TrainResult": "rnndyn.train",
    "evaluate": "rnndyn.train",
    "predict_dimension": "rnndyn.words",
}
#: Submodules reachable as attributes (``rnndyn.cells``), also imported on first use.
_SUBMODULES = (
    "analysis",
    "cells",
    "checkpoint",
    "compilation_cache",
    "config",
    "data",
    "fixed_points",
    "linearize",
    "manifold",
    "models",
    "train",
    "words",
)


def _analysis_html(analysis: Any) -> str:
    """``Analysis._repr_html_``: the report's short view (``rnndyn.report.notebook_html``),
    imported on first display so that ``import rnndyn`` stays light."""
    from rnndyn import report

    return report.notebook_html(analysis)


_views.register_html("Analysis", _analysis_html)


__getattr__, __dir__ = _lazy.lazy_exports(globals(), _EXPORTS, _SUBMODULES)


if TYPE_CHECKING:  # the names above, for type checkers and editors
    from rnndyn import (  # noqa: F401
        analysis,
        cells,
        checkpoint,
        compilation_cache,
        config,
        data,
        fixed_points,
        linearize,
        manifold,
        models,
        train,
        words,
    )
    from rnndyn.analysis import Analysis, analyze  # noqa: F401
    from rnndyn.cells import (  # noqa: F401
        GRU,
        LSTM,
        UGRNN,
        Cell,
        Linear,
        Vanilla,
        from_flax,
        from_function,
    )
    from rnndyn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: F401
    from rnndyn.compilation_cache import enable_compilation_cache  # noqa: F401
    from rnndyn.config import TrainConfig  # noqa: F401
    from rnndyn.convert import from_equinox, from_torch  # noqa: F401
    from rnndyn.fixed_points import (  # noqa: F401
        FixedPoints,
        Status,
        find_fixed_points,
        sample_states,
        speed,
    )
    from rnndyn.linearize import (  # noqa: F401
        Eigen,
        Jacobians,
        Linearization,
        eig,
        jacobians,
        linear_step,
        linearization,
        run_linearized,
        run_trajectory,
        simulate_linear,
        time_constants,
    )
    from rnndyn.models import Classifier  # noqa: F401
    from rnndyn.train import TrainingDivergedError, TrainResult, evaluate  # noqa: F401
    from rnndyn.words import predict_dimension  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "Linear",
    "LSTM",
    "UGRNN",
    "Cell",
    "Analysis",
    "Eigen",
    "FixedPoints",
    "Jacobians",
    "Status",
    "Vanilla",
    "cells",
    "data",
    "eig",
    "enable_compilation_cache",
    "compilation_cache",
    "find_fixed_points",
    "fixed_points",
    "from_equinox",
    "from_flax",
    "from_function",
    "from_torch",
    "jacobians",
    "linear_step",
    "Linearization",
    "linearization",
    "run_linearized",
    "run_trajectory",
    "analyze",
    "analysis",
    "checkpoint",
    "config",
    "linearize",
    "manifold",
    "models",
    "train",
    "words",
    "Classifier",
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "predict_dimension",
    "sample_states",
    "simulate_linear",
    "speed",
    "time_constants",
]
