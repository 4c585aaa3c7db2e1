"""Item content: text or categorical metadata to item vectors (rows = items).

``tfidf_svd``: TF-IDF of the items' tokens (sublinear tf 1 + log n, smoothed idf
log((1 + N) / (1 + df)) + 1, rows L2-normalised), reduced by a truncated SVD to ``dims``
dimensions (U S), rows L2-normalised again, so that a dot product is a cosine similarity.
``sentence``: a sentence-embedding model the user has on disk (``sentence_transformers``, no
network access at run time). Items without any text get a zero vector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from recsys.errors import RecsysError

TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
ENCODERS = ("tfidf_svd", "sentence")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (letters and digits; ``|``, ``_`` and punctuation split)."""
    return TOKEN.findall(text.lower())


def tfidf(texts: Sequence[str], min_df: int = 1) -> sp.csr_matrix:
    """``(n_texts, n_terms)`` TF-IDF (see the module), terms in at least ``min_df`` texts."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for r, text in enumerate(texts):
        for token in tokenize(text or ""):
            rows.append(r)
            cols.append(vocab.setdefault(token, len(vocab)))
    counts = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(texts), max(len(vocab), 1))
    )
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    keep = np.flatnonzero(df >= min_df)
    counts = counts[:, keep].tocsr()
    df = df[keep]
    out = counts.copy()
    out.data = 1.0 + np.log(out.data)
    out = out @ sp.diags(np.log((1 + len(texts)) / (1 + df)) + 1.0)
    return _normalize_rows(out.tocsr())


def tfidf_svd(texts: Sequence[str], dims: int = 64, min_df: int = 1, seed: int = 0) -> np.ndarray:
    """``(n_texts, d)`` float32 item vectors, d = min(dims, what the data allows)."""
    x = tfidf(texts, min_df)
    d = min(int(dims), min(x.shape) - 1)
    if d < 1:
        raise RecsysError(f"too little text for item vectors: {x.shape[1]} distinct term(s)")
    u, s, _ = svds(x, k=d, random_state=seed, v0=None)
    order = np.argsort(-s)
    vectors = u[:, order] * s[order]
    vectors *= np.sign(vectors[np.abs(vectors).argmax(0), np.arange(d)])  # a fixed sign
    return _normalize_rows(vectors).astype(np.float32)


def sentence_vectors(texts: Sequence[str], model_path: str | None) -> np.ndarray:
    """Embeddings by a local sentence-transformers model (a folder), L2-normalised."""
    if not model_path or not Path(model_path).exists():
        raise RecsysError(
            f"content encoder 'sentence' needs a local model folder (model_path), got "
            f"{model_path!r}: download one (e.g. sentence-transformers/all-MiniLM-L6-v2) while "
            "online and point model_path at it; runs never download"
        )
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise RecsysError(
            "content encoder 'sentence' needs the sentence-transformers package: "
            "pip install sentence-transformers (or use encoder=tfidf_svd)"
        ) from None
    model = SentenceTransformer(model_path, local_files_only=True)
    vectors = model.encode([t or "" for t in texts], normalize_embeddings=True)
    empty = np.array([not (t or "").strip() for t in texts])
    vectors[empty] = 0.0
    return np.asarray(vectors, dtype=np.float32)


def item_vectors(
    texts: Sequence[str],
    encoder: str = "tfidf_svd",
    dims: int = 64,
    model_path: str | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``(n_items, d)`` vectors of the items' texts by ``encoder`` (see the module), row-major
    (as a loaded checkpoint's buffer: products then round the same after a round trip)."""
    if encoder == "tfidf_svd":
        return np.ascontiguousarray(tfidf_svd(texts, dims, seed=seed))
    if encoder == "sentence":
        return np.ascontiguousarray(sentence_vectors(texts, model_path))
    raise RecsysError(f"unknown content encoder {encoder!r}; choose one of {ENCODERS}")


def has_text(dataset) -> bool:
    """Whether ``dataset`` has item texts (``item_text()`` giving a mapping, not None)."""
    return hasattr(dataset, "item_text") and dataset.item_text() is not None


def texts_for(dataset, item_ids: Sequence) -> list[str]:
    """The dataset's text of each item in ``item_ids`` order ("" where it has none); the
    dataset must have ``item_text() -> {item id: text}``."""
    text = dataset.item_text() if hasattr(dataset, "item_text") else None
    if text is None:
        raise RecsysError(
            f"dataset {getattr(dataset, 'name', type(dataset).__name__)} has no item content "
            "(item_text()); content models need one, e.g. data=ml_latest_small, ml100k, "
            "publisher_sim, or data=events with an item table (data.items.path, "
            "data.items.columns.text / title)"
        )
    by_str = {str(k): v for k, v in text.items()}
    return [text.get(i, by_str.get(str(i), "")) for i in item_ids]


def _normalize_rows(x):
    if sp.issparse(x):
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
