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
    return _tfidf_fit(texts, min_df)[0]


def _token_counts(texts: Sequence[str], vocab: dict[str, int], grow: bool) -> sp.csr_matrix:
    """``(n_texts, len(vocab))`` token counts; with ``grow`` new tokens join ``vocab``,
    else tokens outside it are ignored."""
    rows, cols = [], []
    for r, text in enumerate(texts):
        for token in tokenize(text or ""):
            c = vocab.setdefault(token, len(vocab)) if grow else vocab.get(token)
            if c is not None:
                rows.append(r)
                cols.append(c)
    counts = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(texts), max(len(vocab), 1))
    )
    counts.sum_duplicates()
    return counts


def _weigh(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    out = counts.copy()
    out.data = 1.0 + np.log(out.data)
    return _normalize_rows((out @ sp.diags(idf)).tocsr())


def _tfidf_fit(texts: Sequence[str], min_df: int = 1):
    """``(tfidf, vocab, idf)``: the matrix of ``tfidf`` and what applies it to other texts."""
    vocab: dict[str, int] = {}
    counts = _token_counts(texts, vocab, grow=True)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    keep = np.flatnonzero(df >= min_df)
    counts = counts[:, keep].tocsr()
    terms = sorted(vocab, key=vocab.get)
    vocab = {terms[j]: n for n, j in enumerate(keep) if j < len(terms)}
    idf = np.log((1 + len(texts)) / (1 + df[keep])) + 1.0
    return _weigh(counts, idf), vocab, idf


class TextEncoder:
    """Item texts to vectors, fitted once on the training catalogue and then applied to new
    texts (articles published after training) in the same space.

    ``tfidf_svd``: a new text's TF-IDF row x (the fitted vocabulary and idf; unseen words
    ignored), then v = normalize(x V_d diag(sign)), V_d the fitted SVD's right singular
    vectors: for a training text this is its fitted vector (X V = U S). ``sentence``: the same
    local model encodes new texts. ``state()`` / ``from_state`` carry it in a checkpoint
    (plain lists and tensors)."""

    def __init__(self, encoder: str, dims: int = 64, model_path: str | None = None) -> None:
        if encoder not in ENCODERS:
            raise RecsysError(f"unknown content encoder {encoder!r}; choose one of {ENCODERS}")
        self.encoder, self.dims, self.model_path = encoder, int(dims), model_path
        self.vocab: dict[str, int] = {}
        self.idf = np.zeros(0)
        self.components = np.zeros((0, 0))  # (terms, d): V_d diag(sign)

    def fit(self, texts: Sequence[str], seed: int = 0) -> np.ndarray:
        """Fit on ``texts``; returns their ``(n, d)`` float32 vectors, row-major."""
        if self.encoder == "sentence":
            return np.ascontiguousarray(sentence_vectors(texts, self.model_path))
        x, self.vocab, self.idf = _tfidf_fit(texts)
        d = min(self.dims, min(x.shape) - 1)
        if d < 1:
            raise RecsysError(f"too little text for item vectors: {x.shape[1]} distinct term(s)")
        u, s, vt = svds(x, k=d, random_state=seed, v0=None)
        order = np.argsort(-s)
        vectors = u[:, order] * s[order]
        sign = np.sign(vectors[np.abs(vectors).argmax(0), np.arange(d)])  # a fixed sign
        self.components = vt[order].T * sign
        return np.ascontiguousarray(_normalize_rows(vectors * sign).astype(np.float32))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), d)`` float32 vectors of new texts in the fitted space."""
        if self.encoder == "sentence":
            return np.ascontiguousarray(sentence_vectors(texts, self.model_path))
        x = _weigh(_token_counts(texts, self.vocab, grow=False)[:, : len(self.idf)], self.idf)
        return np.ascontiguousarray(_normalize_rows(x @ self.components).astype(np.float32))

    def state(self) -> dict:
        import torch

        terms = sorted(self.vocab, key=self.vocab.get)
        return {
            "encoder": self.encoder,
            "dims": self.dims,
            "model_path": self.model_path,
            "terms": terms,
            "idf": torch.from_numpy(np.asarray(self.idf, np.float64)),
            "components": torch.from_numpy(np.asarray(self.components, np.float64)),
        }

    @classmethod
    def from_state(cls, state: dict) -> TextEncoder:
        out = cls(state["encoder"], state["dims"], state["model_path"])
        out.vocab = {t: j for j, t in enumerate(state["terms"])}
        out.idf = state["idf"].numpy()
        out.components = state["components"].numpy()
        return out


def tfidf_svd(texts: Sequence[str], dims: int = 64, seed: int = 0) -> np.ndarray:
    """``(n_texts, d)`` float32 item vectors, d = min(dims, what the data allows)."""
    return TextEncoder("tfidf_svd", dims).fit(texts, seed)


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
    return TextEncoder(encoder, dims, model_path).fit(texts, seed)


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
