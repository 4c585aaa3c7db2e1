"""On-disk cache of processed data (loaded, filtered, split), keyed by config and sources.

A sweep's trials share one parse of the same log: the key is a hash of the data, filter and
split config, the seed, and the size and modification time of every source file, so editing a
file or a setting makes a new entry. Entries are ``.npz`` files written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import Interactions
from recsys.data.splits import Split
from recsys.files import write_atomically

log = logging.getLogger(__name__)

VERSION = 2  # 2: ids read as ids (integers or strings, never floats); notes
PARTS = ("train", "val", "test", "fold_in", "test_candidates")


def cache_key(config: dict, source_files: list[Path]) -> str:
    """Hex digest of the config (JSON, sorted keys) and the sources' sizes and mtimes."""
    files = []
    for f in source_files:
        st = Path(f).stat() if Path(f).exists() else None
        files.append(
            [str(Path(f).resolve()), st.st_size if st else None, st.st_mtime_ns if st else None]
        )
    blob = json.dumps({"v": VERSION, "config": config, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _ids(ids: np.ndarray) -> np.ndarray:
    return np.asarray(ids.astype(str)) if ids.dtype == object else ids


def save(path: Path, split: Split, summary: dict[str, float], notes: dict | None = None) -> None:
    """Write the split, its summary and ``notes`` (JSON: e.g. the event log's drop report,
    shown again on every cache hit) to ``path``, atomically."""
    arrays: dict[str, np.ndarray] = {
        "user_ids": _ids(split.train.user_ids),
        "item_ids": _ids(split.train.item_ids),
        "summary": np.array(json.dumps(summary)),
        "notes": np.array(json.dumps(notes or {})),
    }
    for name in PARTS:
        part = getattr(split, name)
        if part is None:
            continue
        m = part.matrix
        arrays[f"{name}.indptr"] = m.indptr
        arrays[f"{name}.indices"] = m.indices
        arrays[f"{name}.data"] = m.data
        if part.timestamps is not None:
            arrays[f"{name}.timestamps"] = part.timestamps
        for key, values in part.features.items():
            arrays[f"{name}.feature.{key}"] = values

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    write_atomically(path, write)


def save_or_warn(path: Path, split: Split, summary: dict[str, float], notes: dict) -> bool:
    """``save``, best-effort: the cache only saves time, so a folder that cannot be written
    (read-only, full, not a folder) gives a warning and the run goes on. True if saved."""
    try:
        save(path, split, summary, notes)
    except OSError as e:
        log.warning("the data cache could not be written to %s (%s); going on without it "
                    "(set RECSYS_CACHE_DIR, or data_cache=false)", path, e)  # fmt: skip
        return False
    return True


def load(path: Path) -> tuple[Split, dict[str, float], dict] | None:
    """The cached split, summary and notes, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        z = np.load(path, allow_pickle=False)
        users, items = z["user_ids"], z["item_ids"]
        parts = {}
        for name in PARTS:
            if f"{name}.indptr" not in z:
                parts[name] = None
                continue
            m = sp.csr_matrix(
                (z[f"{name}.data"], z[f"{name}.indices"], z[f"{name}.indptr"]),
                shape=(len(users), len(items)),
            )
            prefix = f"{name}.feature."
            feats = {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}
            ts = z.get(f"{name}.timestamps")
            parts[name] = Interactions(m, users, items, ts, feats)
        return Split(**parts), json.loads(str(z["summary"])), json.loads(str(z["notes"]))
    except (OSError, ValueError, KeyError) as e:
        log.warning("ignoring unreadable data cache %s (%s)", path, e)
        return None
