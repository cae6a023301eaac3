"""MkDocs hooks: serve ``notebooks/`` and ``examples/`` from the repository root, uncopied.

The notebooks stay where they are (stored with their outputs, executed by the tests);
this hook adds them to the site as if they were ``docs/notebooks/*.ipynb``, before
mkdocs-jupyter looks for notebooks, so they render as pages (never executed here). The
example scripts are added the same way as plain files, so pages can link to them.

Pages link to both with paths that are right on GitHub, relative to the page's file
(``../notebooks/01_cross_entropy_nll_bce.ipynb`` from ``docs/conventions.md``); the
hook rewrites those links to the site's own copies.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
SERVED = {"notebooks": "*.ipynb", "examples": "*.py"}
_LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the notebook files
def on_files(files: Files, config: Any) -> Files:
    for folder, pattern in SERVED.items():
        for path in sorted((ROOT / folder).glob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            files.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    page_dir = posixpath.dirname(page.file.src_uri)
    docs_depth = len(Path(page.file.src_uri).parts) - 1

    def relink(match: re.Match[str]) -> str:
        target = match.group(2)
        prefix = "../" * (docs_depth + 1)  # from the page's folder up to the repository root
        if "://" in target or not target.startswith(prefix) or target[len(prefix) :].split("/")[0] not in SERVED:
            return match.group(0)
        served = target[len(prefix) :]
        return match.group(1) + posixpath.relpath(served, page_dir or ".") + match.group(3)

    return _LINK.sub(relink, markdown)
