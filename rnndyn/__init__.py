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

from rnndyn import (
    analysis,
    cells,
    checkpoint,
    config,
    data,
    fixed_points,
    linearize,
    manifold,
    models,
    train,
    words,
)
from rnndyn.analysis import Analysis, analyze
from rnndyn.cells import GRU, LSTM, UGRNN, Cell, Vanilla, from_flax, from_function
from rnndyn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from rnndyn.config import TrainConfig
from rnndyn.convert import from_equinox, from_torch
from rnndyn.fixed_points import FixedPoints, Status, find_fixed_points, sample_states, speed
from rnndyn.linearize import (
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
from rnndyn.models import Classifier
from rnndyn.train import TrainingDivergedError, TrainResult, evaluate
from rnndyn.words import predict_dimension

__version__ = "0.1.0"

__all__ = [
    "GRU",
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
