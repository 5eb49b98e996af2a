"""Sphinx configuration: the site `make docs` builds from these Markdown pages (MyST), warnings as errors.

The tenant API page and the configuration reference are generated while the site builds (``_ext/``), from
the running code's ``openapi.json`` and its settings table, so neither can drift from what the code does.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
# The code documented is this checkout's, whatever else is installed; the generators under _ext/ are this
# site's own Sphinx extensions, not part of the package.
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

from flask_discord_roles import __version__  # noqa: E402

project = "flask-discord-roles"
copyright = "flask-discord-roles contributors"
release = __version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "pallets_sphinx_themes",
    "generated_pages",
]
# The seed documents are the contract the tests hold us to, kept verbatim; they are not pages.
exclude_patterns = ["_build", "seed"]
source_suffix = {".md": "markdown"}
root_doc = "index"

myst_enable_extensions = ["colon_fence", "deflist"]
# Pages link to each other's sections by title (`[Encryption key](#encryption-key)`).
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "flask"
html_title = f"flask-discord-roles {version}"
html_sidebars = {"**": ["localtoc.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["tables.css"]
toc_object_entries = False  # the sidebar lists sections, not every function and setting
