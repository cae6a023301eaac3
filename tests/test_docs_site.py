"""The documentation site (mkdocs.yml, docs/): complete API reference, migration tables, runnable pages.

The site itself is built with ``mkdocs build --strict`` by .ci/run; these checks keep its
content honest without a build (the last test builds it when mkdocs is installed).
"""

import doctest
import importlib.util
import inspect
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax
import pytest
from _pytest.doctest import _get_checker

import jaxent
from jaxent.bench.__main__ import BENCHMARKS

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
PUBLIC_FUNCTIONS = [n for n in jaxent.__all__ if inspect.isfunction(getattr(jaxent, n))]
# The loss objects (a result type such as LogSoftmaxStats has no function).
PUBLIC_CLASSES = [n for n in jaxent.__all__ if inspect.isfunction(getattr(getattr(jaxent, n), "function", None))]


def _read(name: str) -> str:
    return (DOCS / name).read_text()


def _directives() -> list[str]:
    """The ``::: jaxent.NAME`` (mkdocstrings) directives of the API reference pages."""
    return [
        m
        for page in sorted((DOCS / "api").glob("*.md"))
        for m in re.findall(r"^::: jaxent\.(\w+)", page.read_text(), re.M)
    ]


def test_every_public_name_is_in_the_api_reference_once():
    names = _directives()
    assert sorted(names) == sorted(set(names)), "a name is documented twice"
    assert set(names) == set(jaxent.__all__), (
        f"missing from docs/api/*.md: {sorted(set(jaxent.__all__) - set(names))}; "
        f"not public: {sorted(set(names) - set(jaxent.__all__))}"
    )
    overview = _read("api/index.md")
    for name in jaxent.__all__:
        assert f"[jaxent.{name}]" in overview, f"{name} is missing from the table of docs/api/index.md"


def _wrapped(doc: str) -> str | None:
    """The public function a docstring's summary line says it wraps (``:func:`jaxent.x```...)."""
    m = re.match(r"\s*:func:`(?:jaxent\.)?(\w+)`", doc) or re.search(r":func:`(?:jaxent\.)?(\w+)`", doc.splitlines()[0])
    return m.group(1) if m and m.group(1) in PUBLIC_FUNCTIONS else None


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_every_public_function_has_a_formula_and_an_example(name):
    doc = inspect.getdoc(getattr(jaxent, name))
    assert doc and re.search(r"^Example:\n(\s+>>> .*\n)+", doc, re.M), f"{name}: no doctested Example: section"
    target = _wrapped(doc)
    formula_doc = doc if target is None else inspect.getdoc(getattr(jaxent, target))
    assert ".. math::" in formula_doc, f"{name}: no formula (a `.. math::` block)"


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_every_loss_object_has_an_example_and_names_its_function(name):
    cls = getattr(jaxent, name)
    doc = inspect.getdoc(cls)
    assert doc and "\nExample:\n" in doc and ">>> " in doc, f"{name}: no doctested Example: section"
    function = cls.function
    assert _wrapped(doc) == function.__name__ and getattr(jaxent, function.__name__) is function


TORCH_COUNTERPARTS = {
    "cross_entropy": "cross_entropy",
    "nll_loss": "nll_loss",
    "linear_cross_entropy": "linear_cross_entropy",
    "binary_cross_entropy_with_logits": "binary_cross_entropy_with_logits",
    "binary_cross_entropy": "binary_cross_entropy",
    "kl_div": "kl_divergence",
    "multi_margin_loss": "multi_margin_loss",
    "mse_loss": "mse_loss",
    "ctc_loss": "ctc_loss",
    "multilabel_soft_margin_loss": "multilabel_soft_margin_loss",
    "soft_margin_loss": "soft_margin_loss",
    "multilabel_margin_loss": "multilabel_margin_loss",
    "l1_loss": "l1_loss",
    "smooth_l1_loss": "smooth_l1_loss",
    "huber_loss": "huber_loss",
    "poisson_nll_loss": "poisson_nll_loss",
    "gaussian_nll_loss": "gaussian_nll_loss",
    "cosine_embedding_loss": "cosine_embedding_loss",
    "margin_ranking_loss": "margin_ranking_loss",
    "hinge_embedding_loss": "hinge_embedding_loss",
    "triplet_margin_loss": "triplet_margin_loss",
    "triplet_margin_with_distance_loss": "triplet_margin_with_distance_loss",
}
OPTAX_COUNTERPARTS = {
    "softmax_cross_entropy": "cross_entropy",
    "softmax_cross_entropy_with_integer_labels": "cross_entropy",
    "safe_softmax_cross_entropy": "cross_entropy",
    "smooth_labels": "smooth_labels",
    "sigmoid_binary_cross_entropy": "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss": "sigmoid_focal_loss",
    "poly_loss_cross_entropy": "poly1_cross_entropy",
    "kl_divergence": "kl_divergence",
    "kl_divergence_with_log_targets": "kl_divergence",
    "hinge_loss": "hinge_loss",
    "perceptron_loss": "perceptron_loss",
    "multiclass_hinge_loss": "multiclass_hinge_loss",
    "multiclass_perceptron_loss": "multiclass_perceptron_loss",
    "squared_error": "mse_loss",
    "ctc_loss": "ctc_loss",
    "ctc_loss_with_forward_probs": "ctc_loss",
    "l2_loss": "l2_loss",
    "huber_loss": "huber_loss",
    "log_cosh": "log_cosh",
    "cosine_similarity": "cosine_similarity",
    "cosine_distance": "cosine_distance",
    "ntxent": "ntxent",
    "triplet_margin_loss": "triplet_margin_loss",
    "generalized_kl_divergence": "generalized_kl_divergence",
    "convex_kl_divergence": "convex_kl_divergence",
    "sparsemax_loss": "sparsemax_loss",
    "multiclass_sparsemax_loss": "multiclass_sparsemax_loss",
    "make_fenchel_young_loss": "make_fenchel_young_loss",
    "ranking_softmax_loss": "ranking_softmax_loss",
    "dice_loss": "dice_loss",
    "binary_dice_loss": "binary_dice_loss",
    "multiclass_generalized_dice_loss": "multiclass_generalized_dice_loss",
}


def _glance_rows(page: str, prefix: str) -> dict[str, str]:
    """First-cell name -> row, for the "At a glance" table of a migration page."""
    table = page.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        m = re.match(rf"\| `{re.escape(prefix)}(\w+)`", line)
        if m:
            rows[m.group(1)] = line
    return rows


@pytest.mark.parametrize(
    ("page", "prefix", "counterparts"),
    [("from-pytorch.md", "F.", TORCH_COUNTERPARTS), ("from-optax.md", "optax.losses.", OPTAX_COUNTERPARTS)],
)
def test_migration_tables_map_every_counterpart(page, prefix, counterparts):
    text = _read(page)
    rows = _glance_rows(text, prefix)
    options = text.split("## Option by option", 1)[1].split("\n## ", 1)[0]
    for theirs, ours in counterparts.items():
        assert theirs in rows, f"{page}: no row for {prefix}{theirs}"
        assert f"`jaxent.{ours}" in rows[theirs], f"{page}: the row of {prefix}{theirs} does not name jaxent.{ours}"
        assert f"`{theirs}`" in options or f"`F.{theirs}`" in options, f"{page}: {theirs} not in Option by option"
    assert set(rows) == set(counterparts), (
        f"{page}: table rows without a known counterpart: {set(rows) - set(counterparts)}"
    )
    for name in set(re.findall(r"jaxent\.(\w+)", text)):
        assert name in jaxent.__all__, f"{page} names jaxent.{name}, which is not public"


def test_migration_pages_name_every_loss_of_torch_and_optax(torch):
    losses = {n for n in dir(torch.nn.functional) if n.endswith("_loss")} | {
        "cross_entropy",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
        "linear_cross_entropy",
    }
    text = _read("from-pytorch.md")
    assert not {n for n in losses if f"`F.{n}`" not in text}, "torch.nn.functional losses missing from from-pytorch.md"
    text = _read("from-optax.md")
    names = {n for n, f in vars(optax.losses).items() if not n.startswith("_") and callable(f)}
    assert not {n for n in names if f"`optax.losses.{n}`" not in text}, "optax.losses functions missing"
    assert set(OPTAX_COUNTERPARTS) - {"smooth_labels"} <= names and set(TORCH_COUNTERPARTS) <= losses


def test_every_loss_function_is_on_a_migration_page():
    text = _read("from-pytorch.md") + _read("from-optax.md")
    for name in PUBLIC_FUNCTIONS:
        if name != "mean_denominator":  # not a loss: documented with the multi-device functions
            assert f"`jaxent.{name}`" in text or f"`jaxent.{name}(" in text, name


def test_migration_recipes_match_pytorch(torch):
    """The recipes of from-pytorch.md for losses jaxent has no function of its own for."""
    F = torch.nn.functional
    x = jnp.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
    y = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    w = jnp.array([1.0, 2.0, 0.5])
    tx, ty, tw = (torch.tensor(a.tolist()) for a in (x, y, w))
    bce = jaxent.binary_cross_entropy_with_logits
    multilabel = bce(x, y, weight=w, reduction="none").mean(axis=-1).mean()
    assert jnp.allclose(multilabel, F.multilabel_soft_margin_loss(tx, ty, weight=tw).item())
    assert jnp.allclose(bce(x, y), F.soft_margin_loss(tx, 2 * ty - 1).item())
    p, t = x[0], y[1]
    weighted = jnp.sum(w * jaxent.mse_loss(p, t, reduction="none")) / jnp.sum(w)
    assert jnp.allclose(weighted, F.mse_loss(tx[0], ty[1], weight=tw).item())
    log_q, target = jax.nn.log_softmax(x), jax.nn.softmax(x[::-1])
    assert jnp.allclose(
        jaxent.kl_divergence(log_q, target),
        F.kl_div(torch.tensor(log_q.tolist()), torch.tensor(target.tolist()), reduction="batchmean").item(),
    )


def test_getting_started_has_the_readme_quickstart_and_commands():
    readme = (ROOT / "README.md").read_text()
    page = _read("getting-started.md")
    quickstart = re.search(r"## Quickstart\s+```python\n(.*?)```", readme, re.S).group(1)
    assert f"```python\n{quickstart}```" in page
    for marker in ("example-command", "test-command"):
        command = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)\n```", readme).group(1)
        assert f"```bash\n{command}\n```" in page, marker


def test_nav_lists_every_page_and_notebook():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert page.relative_to(DOCS).as_posix() in config, page
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert notebook.relative_to(ROOT).as_posix() in config, notebook


def test_getting_started_links_every_example_and_notebook():
    page = _read("getting-started.md")
    for path in sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"](../{path.relative_to(ROOT).as_posix()})" in page, (
            f"docs/getting-started.md does not link {path.name}"
        )


def test_benchmarks_page_has_every_benchmark_command():
    page = _read("benchmarks.md")
    for name in BENCHMARKS:
        assert f"python -m jaxent.bench {name}\n" in page, name


def test_readme_links_the_documentation():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    for page in ("getting-started", "conventions", "api/index", "from-pytorch", "from-optax", "benchmarks"):
        assert f"(docs/{page}.md)" in section, page


def _doctest_page(page: pathlib.Path) -> doctest.TestResults:
    blocks = re.findall(r"^```pycon\n(.*?)^```", page.read_text(), re.M | re.S)
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, page.name, str(page), 0)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.register_optionflag("NUMBER")
    runner = doctest.DocTestRunner(checker=_get_checker(), optionflags=flags)
    # As a user runs them: default float32 and NumPy-style promotion (the suite runs strict x64).
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("page", [p for p in PAGES if "```pycon" in p.read_text()], ids=lambda p: p.name)
def test_page_examples_run(page):
    results = _doctest_page(page)
    assert results.attempted > 0 and results.failed == 0


def _forward_mode_table() -> dict[str, bool]:
    """function -> whether Conventions' autodiff table says jax.jvp works."""
    text = _read("conventions.md")
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| yes \| (yes|`TypeError`) \|$", text, re.M)
    return {name: verdict == "yes" for name, verdict in rows}


def test_autodiff_table_is_true():
    x = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], jnp.float32)
    y = jnp.array([0, 1])
    ones = jnp.ones_like(x)
    calls = {
        "cross_entropy": lambda a: jaxent.cross_entropy(a, y),
        "linear_cross_entropy": lambda a: jaxent.linear_cross_entropy(a, jnp.eye(3, dtype=a.dtype), y),
        "focal_loss": lambda a: jaxent.focal_loss(a, y),
        "poly1_cross_entropy": lambda a: jaxent.poly1_cross_entropy(a, y),
        "nll_loss": lambda a: jaxent.nll_loss(a, y),
        "binary_cross_entropy_with_logits": lambda a: jaxent.binary_cross_entropy_with_logits(a, ones),
        "binary_cross_entropy": lambda a: jaxent.binary_cross_entropy(jax.nn.sigmoid(a), ones),
        "sigmoid_focal_loss": lambda a: jaxent.sigmoid_focal_loss(a, ones),
        "kl_divergence": lambda a: jaxent.kl_divergence(a, jnp.full_like(a, 1 / 3)),
        "hinge_loss": lambda a: jaxent.hinge_loss(a, ones),
        "multi_margin_loss": lambda a: jaxent.multi_margin_loss(a, y),
        "multiclass_hinge_loss": lambda a: jaxent.multiclass_hinge_loss(a, y),
        "mse_loss": lambda a: jaxent.mse_loss(a, jnp.zeros_like(a)),
        "generalized_kl_divergence": lambda a: jaxent.generalized_kl_divergence(a, jnp.full_like(a, 0.5)),
        "convex_kl_divergence": lambda a: jaxent.convex_kl_divergence(a, jnp.full_like(a, 0.5)),
        "sparsemax_loss": lambda a: jaxent.sparsemax_loss(a, ones),
        "multiclass_sparsemax_loss": lambda a: jaxent.multiclass_sparsemax_loss(a, y),
        "make_fenchel_young_loss": lambda a: jaxent.make_fenchel_young_loss(jax.nn.logsumexp)(a, ones / 3),
        "ranking_softmax_loss": lambda a: jaxent.ranking_softmax_loss(a, ones),
        "dice_loss": lambda a: jaxent.dice_loss(a[None], ones[None]),
        "binary_dice_loss": lambda a: jaxent.binary_dice_loss(a, ones),
        "multiclass_generalized_dice_loss": lambda a: jaxent.multiclass_generalized_dice_loss(a[None], ones[None]),
        "smooth_labels": lambda a: jnp.sum(jaxent.smooth_labels(jax.nn.softmax(a), 0.1) * a),
        "ctc_loss": lambda a: jaxent.ctc_loss(a[None], jnp.array([[1]])),
        "l1_loss": lambda a: jaxent.l1_loss(a, jnp.zeros_like(a)),
        "smooth_l1_loss": lambda a: jaxent.smooth_l1_loss(a, jnp.zeros_like(a)),
        "huber_loss": lambda a: jaxent.huber_loss(a, jnp.zeros_like(a)),
        "log_cosh": lambda a: jaxent.log_cosh(a, jnp.zeros_like(a)),
        "l2_loss": lambda a: jaxent.l2_loss(a, jnp.zeros_like(a)),
        "poisson_nll_loss": lambda a: jaxent.poisson_nll_loss(a, ones),
        "gaussian_nll_loss": lambda a: jaxent.gaussian_nll_loss(a, jnp.zeros_like(a), ones),
        "perceptron_loss": lambda a: jaxent.perceptron_loss(a, ones),
        "multiclass_perceptron_loss": lambda a: jaxent.multiclass_perceptron_loss(a, y),
        "soft_margin_loss": lambda a: jaxent.soft_margin_loss(a, ones),
        "multilabel_soft_margin_loss": lambda a: jaxent.multilabel_soft_margin_loss(a, ones),
        "multilabel_margin_loss": lambda a: jaxent.multilabel_margin_loss(a, jnp.array([[0, -1, -1], [1, 2, -1]])),
        "cosine_similarity": lambda a: jaxent.cosine_similarity(a, ones, reduction="mean"),
        "cosine_distance": lambda a: jaxent.cosine_distance(a, ones, reduction="mean"),
        "cosine_embedding_loss": lambda a: jaxent.cosine_embedding_loss(a, ones, jnp.array([1, -1])),
        "margin_ranking_loss": lambda a: jaxent.margin_ranking_loss(a, jnp.zeros_like(a), ones),
        "hinge_embedding_loss": lambda a: jaxent.hinge_embedding_loss(a, ones),
        "triplet_margin_loss": lambda a: jaxent.triplet_margin_loss(a, jnp.zeros_like(a), ones),
        "triplet_margin_with_distance_loss": lambda a: jaxent.triplet_margin_with_distance_loss(
            a, jnp.zeros_like(a), ones
        ),
        "ntxent": lambda a: jaxent.ntxent(a, jnp.array([0, 0])),
        "log_softmax_stats": lambda a: jnp.sum(jnp.stack(jaxent.log_softmax_stats(a, y, temperature=0.7)[:3])),
        "linear_log_softmax_stats": lambda a: jnp.sum(
            jnp.stack(jaxent.linear_log_softmax_stats(a, jnp.eye(3, dtype=a.dtype), y)[:3])
        ),
    }
    table = _forward_mode_table()
    losses = [n for n in PUBLIC_FUNCTIONS if n != "mean_denominator" and not n.startswith("sharded_")]
    assert set(table) == set(calls) == set(losses)
    # "jax.grad, jax.hessian: yes" for every row, checked at once on the sum of the losses.
    assert jnp.all(jnp.isfinite(jax.jit(jax.hessian(lambda a: sum(f(a) for f in calls.values())))(x)))
    for name, forward in table.items():
        jvp = jax.jit(lambda a: jax.jvp(calls[name], (a,), (ones,)))
        if forward:
            assert jnp.all(jnp.isfinite(jnp.asarray(jvp(x)))), name
        else:
            with pytest.raises(TypeError, match="custom_vjp"):
                jvp(x)


def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason='pip install ".[docs]" to build the site')
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_jupyter")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    softmax = (site / "api" / "softmax" / "index.html").read_text()
    assert 'class="arithmatex"' in softmax and r"\log p_{n,c}" in softmax  # the formula, for KaTeX
    assert 'href="#jaxent.cross_entropy"' in softmax or 'id="jaxent.cross_entropy"' in softmax
    # Signatures are formatted one parameter per line (mkdocstrings runs ruff, in the docs extra).
    assert re.search(r'class="nf">cross_entropy</span><span class="p">\(</span>\n', softmax), "signature not wrapped"
    # Inline formulas of the docstrings are maths, not code spans.
    assert r'<span class="arithmatex">\(\ell _n = -w_{y_n}' in softmax
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / notebook.stem / "index.html").read_text()
        assert "data:image/png;base64," in html, f"{notebook.name}: no plot rendered"
    check_site = _check_site()
    assert check_site.remote_resources(site) == []
    if shutil.which(os.environ.get("CHROMIUM", "chromium")):  # .ci/run installs it and runs docs/check_site.py too
        assert check_site.main([str(site)]) == 0


def _check_site():
    spec = importlib.util.spec_from_file_location("check_site", DOCS / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_loads_katex_from_the_site_itself():
    config = (ROOT / "mkdocs.yml").read_text()
    assets = re.findall(r"^  - (\S+)$", config.split("extra_javascript:", 1)[1].split("\nnav:", 1)[0], re.M)
    assert assets and not [a for a in assets if "//" in a], "extra_javascript/extra_css load from another host"
    for asset in assets:
        assert (DOCS / asset).is_file(), asset
    css = (DOCS / "javascripts" / "katex" / "katex.min.css").read_text()
    fonts = re.findall(r"url\((fonts/[\w-]+\.woff2)\)", css)
    assert len(fonts) >= 20 and all((DOCS / "javascripts" / "katex" / f).is_file() for f in fonts)
    assert not [u for u in re.findall(r"url\(([^)]+)\)", css) if not u.endswith(".woff2")], "a font not vendored"


def test_check_site_catches_raw_maths_and_remote_assets(tmp_path):
    check_site = _check_site()
    page = check_site._parse(
        '<script src="https://unpkg.com/katex.js"></script><link rel="stylesheet" href="//cdn/x.css">'
        "<p>typeset <span class='katex'>x</span>, raw \\(x\\) and $$y$$</p><pre>code \\(kept\\)</pre>"
    )
    assert page.resources == ["https://unpkg.com/katex.js", "//cdn/x.css"] and page.katex == 1
    assert [m.group(0) for m in check_site.RAW_MATH.finditer(" ".join(page.text))] == ["\\(", "$$", "$$"]
    (tmp_path / "index.html").write_text('<html><body><link rel="stylesheet" href="https://x.org/a.css"></body></html>')
    assert check_site.remote_resources(tmp_path) == ["index.html: https://x.org/a.css"]
    if shutil.which(os.environ.get("CHROMIUM", "chromium")):  # the rendered text, after the page's scripts
        (tmp_path / "raw.html").write_text(
            "<html><body><p id=p></p><script>p.textContent = '$$x$$'</script></body></html>"
        )
        failures = check_site.check_page(check_site.chromium(), tmp_path, tmp_path / "raw.html")
        assert len(failures) == 1 and "raw maths" in failures[0]
