"""Sphinx configuration: PyData theme, MyST Markdown, autodoc + napoleon (numpy style), sphinx-gallery.

`make docs` builds with warnings as errors (-W). The pages under docs/generated/ are written at
build time by `_ext/generated_pages.py` from files a command wrote (a reproduce run's result
snapshot, the benchmarks' JSON), never typed by hand.
"""

import sys
from pathlib import Path

import stableresnet

DOCS = Path(__file__).parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "stableresnet"
author = "the stableresnet developers"
copyright = "2026, the stableresnet developers"
release = version = stableresnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax shipped into _static: equations render offline
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "generated_pages",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/cli.md", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.json", "auto_examples/*.codeobj.json", "sg_execution_times.rst"]
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# Type names inside docstrings ("array-like of shape (n, d)") are prose, not cross-references.
nitpicky = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib", "seaborn"),
}

html_theme = "pydata_sphinx_theme"
html_title = f"stableresnet {release}"
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "secondary_sidebar_items": ["page-toc"],
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path = ["_static"]
# Without a stored choice the theme falls back to default_mode; left empty it logs a console error.
html_context = {"default_mode": "auto"}


# The docstrings write maths as plain text, as in the source ("|1 + hλ|", "max |y|"). reST would read
# each |...| as a substitution, so bars outside ``literals`` are escaped before parsing.
def escape_bars(app, what, name, obj, options, lines):
    for index, line in enumerate(lines):
        pieces = line.split("``")  # even pieces lie outside literals
        pieces[::2] = [piece.replace("|", "\\|") for piece in pieces[::2]]
        lines[index] = "``".join(pieces)


# scikit-learn adds set_*_request methods to every estimator; they document scikit-learn, not us.
def skip_metadata_requests(app, what, name, obj, skip, options):
    return True if name.startswith("set_") and name.endswith("_request") else skip


def setup(app):
    app.connect("autodoc-process-docstring", escape_bars)
    app.connect("autodoc-skip-member", skip_metadata_requests)
