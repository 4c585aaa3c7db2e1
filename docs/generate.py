"""Writes the documentation pages made from other files, so that they cannot drift from them
(``python docs/generate.py``; ``make docs`` runs it, ``tests/test_docs.py`` checks that the
committed pages are what it writes):

- ``getting-started.md``: the README's sections from "Install" to "Documentation";
- ``reference/configs.md``: every option of every config group, its leading comment and the
  file as shipped;
- ``experiments.md``: each study of ``experiments/``, its README's title and first paragraph.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTICE = "<!-- written by docs/generate.py from {source}: edit that, then run it -->\n\n"

GROUPS = {
    "data": "Datasets: a loader whose `load()` gives `Interactions`.",
    "filter": "Applied to the interactions before splitting.",
    "split": "The evaluation protocol: which interactions are validation and test.",
    "confidence": "The confidence of each observed pair, from its strength and features.",
    "propensity": "Item propensities (the chance an item is observed), for popularity bias.",
    "model": "Models: their hyperparameters are their constructor's arguments.",
    "evaluator": "Cut-offs, metrics and user segments of validation and test.",
    "trainer": "`lightning.Trainer` arguments.",
    "logger": "Experiment trackers (`logger=[a,b]` for several).",
    "callbacks": "Lightning callbacks: checkpointing, health checks.",
    "paths": "Folders: data, logs, cache.",
    "hydra": "Run and sweep folders, the launcher.",
    "experiment": "Saved combinations (`experiment=NAME`), one per studied setting.",
    "hparams_search": "Search spaces of `recsys-sweep hparams_search=NAME`.",
}


def getting_started() -> str:
    text = (ROOT / "README.md").read_text()
    start, stop = text.index("## Install"), text.index("## Documentation")
    body = text[start:stop].rstrip() + "\n"
    body = body.replace("](docs/", "](")  # links from the README into docs/ are local here
    return NOTICE.format(source="README.md") + "# Getting started\n\n" + body


def _comment(lines: list[str]) -> str:
    out = []
    for line in lines:
        if not line.startswith("#"):
            break
        if line.startswith("# @package"):
            continue
        out.append(line[1:].strip())
    return " ".join(out)


def configs() -> str:
    parts = [NOTICE.format(source="configs/"), "# Config reference\n\n",
             "Every option of every config group, as shipped in `configs/` (the wheel carries "
             "them as `recsys/configs/`). Choose one with `group=option`, change a setting "
             "with `group.key=value`.\n"]  # fmt: skip
    folders = sorted(p for p in (ROOT / "configs").iterdir() if p.is_dir())
    unknown = [p.name for p in folders if p.name not in GROUPS]
    if unknown:
        raise SystemExit(f"docs/generate.py: describe the config groups {unknown} in GROUPS")
    top = sorted((ROOT / "configs").glob("*.yaml"))
    parts.append("\nEach console script starts from its own file: "
                 + ", ".join(f"`{p.name}`" for p in top) + ".\n")  # fmt: skip
    for folder in folders:
        parts.append(f"\n## `{folder.name}`\n\n{GROUPS[folder.name]}\n")
        for path in sorted(folder.glob("*.yaml")):
            text = path.read_text()
            about = _comment(text.splitlines())
            parts.append(f"\n### `{folder.name}={path.stem}`\n\n")
            if about:
                parts.append(about + "\n\n")
            parts.append("```yaml\n" + text.rstrip() + "\n```\n")
    return "".join(parts)


def experiments() -> str:
    parts = [NOTICE.format(source="experiments/*/README.md"), "# Experiments\n\n",
             "Each study in `experiments/` has a README with its question, the command that "
             "reproduces it and the table it measured. Their opening lines:\n"]  # fmt: skip
    for readme in sorted((ROOT / "experiments").glob("*/README.md")):
        text = readme.read_text()
        title = re.search(r"^# (.+)$", text, re.MULTILINE)
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip() and p[0] != "#"]
        first = " ".join(paragraphs[0].split()) if paragraphs else ""
        name = readme.parent.name
        parts.append(f"\n## {title.group(1) if title else name}\n\n")
        parts.append(f"`experiments/{name}/README.md`\n\n{first}\n")
    return "".join(parts)


PAGES = {
    "getting-started.md": getting_started,
    "reference/configs.md": configs,
    "experiments.md": experiments,
}


def main() -> None:
    check = "--check" in sys.argv[1:]
    stale = []
    for name, make in PAGES.items():
        path, text = DOCS / name, make()
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        raise SystemExit(f"docs/generate.py: stale {stale}; run python docs/generate.py")


if __name__ == "__main__":
    main()
