"""Which pages the docs tests read: this repository's, or another checkout's (``DISCORD_ROLES_DOCS_ROOT``)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("DISCORD_ROLES_DOCS_ROOT") or Path(__file__).parents[2]).resolve()
DOCS = ROOT / "docs"
# Not pages: the built site, and the seed documents kept verbatim (docs/conf.py excludes them too).
NOT_PAGES = {"_build", "seed"}


def documentation_pages(root: Path = ROOT) -> list[Path]:
    """README.md, then every Markdown page under docs/ (not the built site), in a stable order."""
    pages = [root / "README.md"] if (root / "README.md").exists() else []
    pages += sorted(
        path
        for path in (root / "docs").glob("**/*.md")
        if not NOT_PAGES & set(path.relative_to(root / "docs").parts)
    )
    return pages


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))
