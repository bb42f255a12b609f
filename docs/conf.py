"""Sphinx configuration for the fastrnn documentation.

Build (warnings are errors, as in CI)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing heavy runs at build time: figures and example outputs are committed
files, produced by the scripts in ``docs/scripts/``.
"""

import os
import sys

# Document the checkout this file belongs to, not some installed copy.
sys.path.insert(0, os.path.abspath(".."))

import fastrnn  # noqa: E402

project = "fastrnn"
author = "the fastrnn developers"
copyright = "2026, the fastrnn developers"
version = release = fastrnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "scripts", "tutorials/output", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# --- autodoc / autosummary / numpydoc
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"          # the numpydoc sections carry the types
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# --- MyST: the hand-written Markdown pages (design.md, benchmarks.md, ...) as they are
myst_enable_extensions = []  # plain CommonMark + tables: the pages are edited by others
myst_heading_anchors = 3

# --- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"fastrnn {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out members inherited from scikit-learn's base classes (``get_params``,
    ``score``, metadata routing): they are sklearn's, documented there, and their
    docstrings point at sklearn's own glossary and labels, which do not exist here."""
    module = getattr(obj, "__module__", None) or ""
    if module == "sklearn" or module.startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
