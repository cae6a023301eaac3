"""Check a built documentation site as a reader's browser shows it: ``python docs/check_site.py SITE_DIR``.

1. No page loads a script, stylesheet or font from another host (KaTeX is vendored in
   ``docs/javascripts/katex/``; the theme uses the system fonts): the site works offline.
2. Every page, rendered by headless Chromium (``chromium --headless --dump-dom``, the DOM
   after its JavaScript ran), shows its formulas typeset: no raw ``\\(``, ``\\[`` or ``$$``
   left in the text outside code, no KaTeX error, and typeset maths on the pages that have
   formulas.
3. Screenshots of the home page, one API page and one notebook page go to
   ``SITE_DIR/_screenshots/*.png`` (their paths are printed) for a person to look at.

Needs Chromium (Debian: ``apt-get install chromium``; or set ``CHROMIUM=/path/to/chrome``).
Exit status 0 when every check passes, 1 otherwise (each failure is printed). .ci/run runs it
on the site it builds; tests/test_docs_site.py runs it when mkdocs and Chromium are installed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCREENSHOTS = ("index.html", "api/softmax/index.html", "notebooks/02_stable_gradients/index.html")
# Pages whose source has formulas: their rendered DOM must hold typeset KaTeX.
MATH_PAGES = ("api/softmax/index.html", "conventions/index.html", "notebooks/01_cross_entropy_nll_bce/index.html")
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")


class _Page(html.parser.HTMLParser):
    """A page's external resources, and its visible text outside code, scripts and TeX sources."""

    SKIP = frozenset({"script", "style", "pre", "code", "annotation", "textarea", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.resources: list[str] = []
        self.text: list[str] = []
        self.katex = 0
        self.errors = 0
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        self.katex += "katex" in classes
        self.errors += "katex-error" in classes
        if tag == "script" and a.get("src"):
            self.resources.append(a["src"])
        if tag == "link" and {"stylesheet", "preload", "modulepreload", "icon"} & set(a.get("rel", "").split()):
            self.resources.append(a.get("href", ""))
        if tag in self.SKIP:
            self._skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.text.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def remote_resources(site: Path) -> list[str]:
    """``file: resource`` for every script, stylesheet or CSS url() that another host serves."""
    found = []
    for path in sorted(site.rglob("*.html")):
        found += [f"{path.relative_to(site)}: {r}" for r in _parse(path.read_text()).resources if _REMOTE.match(r)]
    for path in sorted(site.rglob("*.css")):
        found += [f"{path.relative_to(site)}: {u}" for u in _CSS_URL.findall(path.read_text()) if _REMOTE.match(u)]
    return found


def chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    raise SystemExit("check_site.py needs Chromium: apt-get install chromium (or set CHROMIUM=/path/to/chrome)")


def _browser(binary: str, profile: str, *args: str) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",  # let the page's scripts (KaTeX) finish
        *args,
    ]


def rendered(binary: str, page: Path) -> str:
    """The page's DOM after its scripts ran."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            _browser(binary, profile, "--dump-dom", page.as_uri()),
            capture_output=True,
            text=True,
            timeout=120,
        )
    if result.returncode != 0 or "<body" not in result.stdout:
        raise RuntimeError(f"chromium --dump-dom {page} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def screenshot(binary: str, page: Path, png: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        args = (f"--screenshot={png}", "--window-size=1600,1800", page.as_uri())
        result = subprocess.run(_browser(binary, profile, *args), capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not png.is_file() or png.stat().st_size < 10_000:
        raise RuntimeError(f"chromium --screenshot {page} failed ({result.returncode}): {result.stderr[-2000:]}")


def check_page(binary: str, site: Path, page: Path) -> list[str]:
    """The failures of one rendered page (none: an empty list)."""
    name = page.relative_to(site).as_posix()
    dom = _parse(rendered(binary, page))
    failures = []
    text = " ".join(dom.text)
    raw = list(RAW_MATH.finditer(text))
    if raw:
        where = text[max(0, raw[0].start() - 60) : raw[0].end() + 60]
        failures.append(f"{name}: raw maths in the rendered text ({len(raw)} delimiter(s)), first: ...{where}...")
    if dom.errors:
        failures.append(f"{name}: {dom.errors} formula(s) KaTeX could not typeset (class katex-error)")
    if name in MATH_PAGES and not dom.katex:
        failures.append(f"{name}: no typeset formula (KaTeX did not run)")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="the built site (mkdocs build --site-dir SITE)")
    parser.add_argument("--jobs", type=int, default=2, help="browsers run at once (default 2)")
    args = parser.parse_args(argv)
    site = args.site.resolve()
    pages = [p for p in sorted(site.rglob("*.html")) if not p.relative_to(site).as_posix().startswith("_")]
    failures = [f"loaded from another host: {r}" for r in remote_resources(site)]
    binary = chromium()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda p: check_page(binary, site, p), pages):
            failures += result
        shots = site / "_screenshots"
        shots.mkdir(exist_ok=True)
        pngs = [shots / f"{Path(name).parent.name or 'home'}.png" for name in SCREENSHOTS]
        list(pool.map(lambda pair: screenshot(binary, site / pair[0], pair[1]), zip(SCREENSHOTS, pngs)))
    for png in pngs:
        print(f"screenshot: {png}")
    print(f"check_site: {len(pages)} pages rendered by {Path(binary).name}, {len(failures)} failure(s)")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
