"""The documentation: generated pages match their sources, every model and config group has
its page, and the README's links lead to pages that exist. (``make docs``, which ``make test``
runs first, builds the site with warnings as errors.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_pages_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_every_model_has_a_row_and_every_option_a_reference_entry():
    models = (ROOT / "docs" / "models.md").read_text()
    reference = (ROOT / "docs" / "reference" / "configs.md").read_text()
    for path in sorted((ROOT / "configs" / "model").glob("*.yaml")):
        assert f"| `{path.stem}` |" in models, f"docs/models.md has no row for model={path.stem}"
    for path in sorted((ROOT / "configs").glob("*/*.yaml")):
        assert f"### `{path.parent.name}={path.stem}`" in reference, path


def test_readme_links_lead_to_pages():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).is_file(), link
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in sorted((ROOT / "docs").rglob("*.md")):
        assert str(page.relative_to(ROOT / "docs")) in nav, f"{page} is not in mkdocs.yml's nav"
