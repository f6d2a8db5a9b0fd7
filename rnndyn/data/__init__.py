"""Data for rnndyn: synthetic tasks with known answers and real text datasets.

Every source returns a :class:`Dataset` (padded int32 tokens, lengths, labels, vocab).

    from rnndyn import data
    train = data.synthetic.sentiment(jax.random.key(0), 2000)
    test = data.synthetic.sentiment(jax.random.key(1), 500)   # same vocabulary
    imdb = data.load("imdb_reviews", "train")                 # needs tensorflow-datasets
"""

from rnndyn.data import contextual, synthetic, text
from rnndyn.data.dataset import PAD, PAD_ID, UNK, UNK_ID, Dataset
from rnndyn.data.local import load_local
from rnndyn.data.synthetic import categorical, multilabel, ordered, sentiment
from rnndyn.data.text import build_vocab, encode, tokenize
from rnndyn.data.tfds_load import SUPPORTED, load

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
