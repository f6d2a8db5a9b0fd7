"""Data for rnndyn: synthetic tasks with known answers and real text datasets.

Every source returns a :class:`Dataset` (padded int32 tokens, lengths, labels, vocab).

    from rnndyn import data
    train = data.synthetic.sentiment(jax.random.key(0), 2000)
    test = data.synthetic.sentiment(jax.random.key(1), 500)   # same vocabulary
    imdb = data.load("imdb_reviews", "train")                 # needs tensorflow-datasets
"""

from typing import TYPE_CHECKING

from rnndyn import _lazy

#: Public names and their modules, imported on first use (PEP 562): the command line
#: lists the dataset names (``SUPPORTED``) without loading JAX.
_EXPORTS = {
    "PAD": "rnndyn.data.dataset",
    "PAD_ID": "rnndyn.data.dataset",
    "UNK": "rnndyn.data.dataset",
    "UNK_ID": "rnndyn.data.dataset",
    "Dataset": "rnndyn.data.dataset",
    "load_local": "rnndyn.data.local",
    "categorical": "rnndyn.data.synthetic",
    "multilabel": "rnndyn.data.synthetic",
    "ordered": "rnndyn.data.synthetic",
    "sentiment": "rnndyn.data.synthetic",
    "build_vocab": "rnndyn.data.text",
    "encode": "rnndyn.data.text",
    "tokenize": "rnndyn.data.text",
    "SUPPORTED": "rnndyn.data.tfds_load",
    "load": "rnndyn.data.tfds_load",
}
_SUBMODULES = ("cache", "contextual", "dataset", "local", "synthetic", "text", "tfds_load")


__getattr__, __dir__ = _lazy.lazy_exports(globals(), _EXPORTS, _SUBMODULES)


if TYPE_CHECKING:
    from rnndyn.data import contextual, synthetic, text  # noqa: F401
    from rnndyn.data.dataset import PAD, PAD_ID, UNK, UNK_ID, Dataset  # noqa: F401
    from rnndyn.data.local import load_local  # noqa: F401
    from rnndyn.data.synthetic import categorical, multilabel, ordered, sentiment  # noqa: F401
    from rnndyn.data.text import build_vocab, encode, tokenize  # noqa: F401
    from rnndyn.data.tfds_load import SUPPORTED, load  # noqa: F401

__all__ = [
    "PAD",
    "PAD_ID",
    "SUPPORTED",
    "UNK",
    "UNK_ID",
    "Dataset",
    "build_vocab",
    "categorical",
    "contextual",
    "encode",
    "load",
    "load_local",
    "multilabel",
    "ordered",
    "sentiment",
    "synthetic",
    "text",
    "tokenize",
]
