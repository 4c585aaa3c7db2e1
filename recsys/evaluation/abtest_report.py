"""The A/B analysis (``recsys.evaluation.abtest.summarize``) as markdown tables."""

from __future__ import annotations

import math

from recsys.evaluation.abtest import srm_warning


def _num(x, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}" if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3) else f"{x:.{digits}f}"


def _ci(ci, signed: bool = False) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "[n/a]"
    f = (lambda v: f"{v:+.4f}") if signed else _num
    return f"[{f(ci[0])}, {f(ci[1])}]"


def _p(p) -> str:
    return "n/a" if p is None else ("<0.0001" if p < 1e-4 else f"{p:.4f}")


def to_markdown(result: dict) -> str:
    """The report of ``summarize`` as markdown tables: per arm, differences, the
    sample-ratio check, the effect by day, and the power analysis."""
    pct = f"{result['level']:.0%}"
    arms, control, metrics = result["arms"], result["control"], list(result["metrics"])
    lines = [f"# A/B analysis: {', '.join(arms)} (control: {control})", ""]
    lines.append(f"Intervals ({pct}) and p-values: {result['method_description']}; unit: "
                 f"{result['unit']}.")  # fmt: skip
    srm = result["srm"]
    lines += ["", "## Sample ratio", ""]
    exp = srm["expected_readers"]
    shown = ", ".join(f"{a}: {n:,} (expected {exp[a]:,.0f})" for a, n in srm["readers"].items())
    lines.append(f"Readers per arm, from {srm['readers_from']}: {shown}; chi-square "
                 f"{_num(srm['chi2'])}, p = {_p(srm['p'])}.")  # fmt: skip
    if srm["mismatch"]:
        lines.append("")
        lines.append(f"**WARNING: {srm_warning(srm)}**")
    lines += ["", "## Per arm", ""]
    lines.append("| metric | " + " | ".join(f"{a} [{pct} CI]" for a in arms) + " |")
    lines.append("|---" * (len(arms) + 1) + "|")
    for key in ("readers", "readers_seen", "sessions", "views"):
        lines.append(f"| {key} | " + " | ".join(f"{result['per_arm'][a][key]:,}" for a in arms)
                     + " |")  # fmt: skip
    for m in metrics:
        cells = [f"{_num(result['per_arm'][a][m]['value'])} {_ci(result['per_arm'][a][m]['ci'])}"
                 for a in arms]  # fmt: skip
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", f"## Differences to {control}", ""]
    lines.append(f"| arm | metric | diff [{pct} CI] | lift [{pct} CI] | p |")
    lines.append("|---|---|---|---|---|")
    for a, by_metric in result["differences"].items():
        for m, d in by_metric.items():
            lift = "n/a" if d["lift"] is None else f"{d['lift']:+.2%}"
            lift_ci = (
                "[n/a]" if None in (d["lift_ci"][0], d["lift_ci"][1])
                else f"[{d['lift_ci'][0]:+.2%}, {d['lift_ci'][1]:+.2%}]"
            )  # fmt: skip
            diff = "n/a" if d["diff"] is None else f"{d['diff']:+.4f}"
            lines.append(f"| {a} | {m} | {diff} {_ci(d['ci'], True)} | {lift} {lift_ci} | "
                         f"{_p(d['p'])} |")  # fmt: skip
    if result["by_day"]:
        day_metrics = list(next(iter(result["by_day"].values()))["values"][control])
        lines += ["", f"## Difference to {control} by day (UTC day of the session start)", ""]
        lines.append("| day | arm | readers | " + " | ".join(day_metrics) + " |")
        lines.append("|---" * (3 + len(day_metrics)) + "|")
        for day, part in result["by_day"].items():
            for a, by_metric in part["differences"].items():
                cells = []
                for m in day_metrics:
                    d = by_metric[m]
                    diff = "n/a" if d["diff"] is None else f"{d['diff']:+.4f}"
                    cells.append(f"{diff} {_ci(d['ci'], True)}")
                readers = f"{part['readers'][control]:,} / {part['readers'][a]:,}"
                lines.append(f"| {day} | {a} | {readers} | " + " | ".join(cells) + " |")
    lines += ["", "## Power (delta-method per-reader variance)", ""]
    lift = next(iter(result["power"].values()), {}).get("target_lift")
    alpha = next(iter(result["power"].values()), {}).get("alpha")
    power = next(iter(result["power"].values()), {}).get("power")
    lines.append(f"MDE: the smallest difference detected with power {power} by a two-sided "
                 f"test at alpha {alpha} with the readers observed; readers needed: per arm, for "
                 f"a relative lift of {lift}.")  # fmt: skip
    lines.append("")
    lines.append("| metric | control | per-reader sd | arm | MDE (absolute) | MDE (relative) | "
                 "readers needed per arm |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|")
    for m, pw in result["power"].items():
        sd = pw["per_reader_variance"][control]
        sd = None if sd is None else math.sqrt(sd)
        needed = pw["readers_needed_per_arm"]
        needed = "n/a" if needed is None else f"{needed:,}"
        for a, mde in pw["mde"].items():
            rel = "n/a" if mde["relative"] is None else f"{mde['relative']:.2%}"
            lines.append(f"| {m} | {_num(pw['control_value'])} | {_num(sd)} | {a} | "
                         f"{_num(mde['absolute'])} | {rel} | {needed} |")  # fmt: skip
    if result["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines)
