"""Metrics as text for the log."""

from __future__ import annotations


def format_metrics(metrics: dict[str, float]) -> str:
    """The metrics one per line, then the user segments (``.../hist_<segment>``) as a table
    with one column per segment."""
    plain = {k: v for k, v in metrics.items() if "/hist_" not in k}
    width = max(map(len, plain))
    lines = [f"  {k:<{width}}  {v:.6f}" for k, v in plain.items()]
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if "/hist_" in key:
            name, segment = key.rsplit("/hist_", 1)
            rows.setdefault(name, {})[segment] = value
    if rows:
        segments = list(dict.fromkeys(s for r in rows.values() for s in r))
        width = max(map(len, rows))
        lines.append(f"  by training interactions of the user:\n  {'':<{width}}  "
                     + "  ".join(f"{s:>9}" for s in segments))  # fmt: skip
        for name, r in rows.items():
            count = name.endswith("/users")
            cells = (
                f"{'':>9}" if s not in r else f"{int(r[s]):9d}" if count else f"{r[s]:9.4f}"
                for s in segments
            )
            lines.append(f"  {name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
