r"""Griffe extension: render jaxent's reST-flavoured Google docstrings as mkdocstrings Markdown.

jaxent's docstrings are written for ``help()``, doctest and Sphinx-style readers: Google
sections (``Args:``, ``Returns:``, ``Notes:``, ``Example:``, ``References:``) with two
reST constructs Markdown does not know. Before mkdocstrings parses a docstring, this
extension rewrites (in the loaded copy only, never the source):

- a ``.. math::`` directive and its indented block -> an arithmatex ``$$ ... $$`` block
  (rendered by KaTeX on the site);
- ``:func:`name``` / ``:class:`name``` (also ``jaxent.name``) -> a cross-reference
  ``[`name`][jaxent.name]`` when ``name`` is public (in ``jaxent.__all__``), plain code
  otherwise;
- an ``Args:`` entry that documents several parameters at once (``a, b, c: as in ...``),
  which Google style does not allow -> one entry per parameter, same description;
- the body of an ``Example:`` section -> a ``pycon`` code block (left otherwise untouched);
- an inline literal that is a formula (``ℓ_n = -w_{y_n} log p_{n,y_n}``, ``(1 - p_t)^γ``:
  Greek letters, ``·``, ``Σ``, ``^``, ``_{``, or a lone ``w_y``; never code such as
  ``log_target=True`` or ``weight.T``) -> inline maths ``$...$``, its Unicode and words
  spelled in TeX (``\gamma``, ``\cdot``, ``\log``, ``\mathrm{CE}``), rendered by KaTeX.

It also shows the loss objects' dataclass ``__init__`` as users call it (see
``_tidy_dataclass_signature``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|meth|attr|data|obj|mod):`~?(?:jaxent\.)?([\w.]+)`")
_SECTION = re.compile(r"^(\w[\w ]*):\s*$")
_ARGS_SECTIONS = {"args", "arguments", "params", "parameters", "keyword args", "keyword arguments"}
_EXAMPLE_SECTIONS = {"example", "examples"}
_GROUPED_PARAM = re.compile(r"^(\s*)(\w+(?:\s*,\s*\w+)+)\s*:\s?(.*)$")


_LITERAL = re.compile(r"``([^`]+?)``")
_MATHY = re.compile(r"[α-ωΑ-Ωℓ·²±≤≥−√]|\^|_\{|^[A-Za-z]_[A-Za-z0-9]$")
_CODE = re.compile(r"[A-Za-z]\w*\.[A-Za-z]|[@\[\]\"]|==|\w{2,}_\w{2,}|=[A-Z]")
_SYMBOLS = {"·": r"\cdot ", "Σ": r"\sum ", "−": "-", "±": r"\pm ", "²": "^2", "≤": r"\le ", "≥": r"\ge "}
_SYMBOLS |= {"ℓ": r"\ell ", "√": r"\sqrt ", ">=": r"\ge ", "<=": r"\le ", "**": "^"}
_GREEK = "alpha beta gamma delta varepsilon zeta eta theta iota kappa lambda mu nu xi o pi rho varsigma sigma tau"
_GREEK += " upsilon phi chi psi omega"
_SYMBOLS |= {chr(ord("α") + i): f"\\{name} " for i, name in enumerate(_GREEK.split())}
_SYMBOLS["ο"] = "o"
_WORDS = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]{2,})*")
_OPERATORS = {"log", "exp", "max", "min", "tanh", "sin", "cos"}
_SYMBOL = re.compile("|".join(re.escape(k) for k in sorted(_SYMBOLS, key=len, reverse=True)))


def _tex(formula: str) -> str:
    """An inline formula written in Unicode for ``help()`` as TeX: operators, words, symbols."""

    def word(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in _OPERATORS:
            return "\\" + text + " "
        if text == "inf":
            return "\\infty "
        return f"\\text{{{text}}}" if " " in text else f"\\mathrm{{{text}}}"

    tex = _WORDS.sub(word, formula)
    # a parenthesised exponent, ^(γ-1), is one group: ^{γ-1}
    tex = re.sub(r"\^\(([^()]*)\)", r"^{\1}", tex)
    return _SYMBOL.sub(lambda m: _SYMBOLS[m.group(0)], tex)


def _inline_math(text: str) -> str:
    """Inline literals that are formulas (see the module docstring) as arithmatex ``$...$``."""

    def convert(match: re.Match[str]) -> str:
        body = match.group(1)
        if not _MATHY.search(body) or _CODE.search(body):
            return match.group(0)
        return "$" + _tex(body).strip() + "$"

    return _LITERAL.sub(convert, text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != ".. math::":
            out.append(line)
            i += 1
            continue
        pad = " " * _indent(line)
        body: list[str] = []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(pad)):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        depth = min((_indent(b) for b in body if b.strip()), default=0)
        if out and out[-1].strip():
            out.append("")
        out.append(pad + "$$")
        out.extend(pad + b[depth:] if b.strip() else "" for b in body if b.strip())
        out.append(pad + "$$")
        if i < len(lines) and lines[i].strip():
            out.append("")
    return out


def _roles(line: str, public: set[str]) -> str:
    def link(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"[`{name}`][jaxent.{name}]" if name in public else f"`{name}`"

    return _ROLE.sub(link, line)


def _grouped_params(lines: list[str]) -> list[str]:
    out: list[str] = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _SECTION.match(line) if _indent(line) == 0 else None
        if header:
            section = header.group(1).lower()
        elif line.strip() and _indent(line) == 0:
            section = None
        grouped = _GROUPED_PARAM.match(line) if section in _ARGS_SECTIONS else None
        if not grouped:
            out.append(line)
            i += 1
            continue
        pad, names, first = grouped.groups()
        rest: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > len(pad):
            rest.append(lines[i])
            i += 1
        for name in re.split(r"\s*,\s*", names):
            out.append(f"{pad}{name}: {first}")
            out.extend(rest)
    return out


def _fence_examples(lines: list[str]) -> list[str]:
    """The body of an ``Example:`` section as a ``pycon`` code block (Google style's singular
    ``Example:`` is an admonition, whose ``>>>`` lines Markdown would read as quotes)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        header = _SECTION.match(line) if _indent(line) == 0 else None
        if not header or header.group(1).lower() not in _EXAMPLE_SECTIONS:
            continue
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > 0):
            body.append(lines[i])
            i += 1
        trailing = []
        while body and not body[-1].strip():
            trailing.append(body.pop())
        if body:
            pad = " " * min(_indent(b) for b in body if b.strip())
            out.extend([pad + "```pycon", *body, pad + "```"])
        out.extend(trailing)
    return out


def rewrite(text: str, public: set[str]) -> str:
    """The Markdown version of one docstring (see the module docstring)."""
    lines = _grouped_params(_math_blocks(text.splitlines()))
    out, section = [], None
    for line in lines:
        header = _SECTION.match(line) if _indent(line) == 0 else None
        if header:
            section = header.group(1).lower()
        elif line.strip() and _indent(line) == 0:
            section = None
        out.append(line if section in _EXAMPLE_SECTIONS else _roles(line, public))
    return _inline_math_outside_code("\n".join(_fence_examples(out)))


def _inline_math_outside_code(text: str) -> str:
    """:func:`_inline_math` on every part of the text but its fenced code blocks and ``$$`` blocks."""
    parts = re.split(r"(^\s*```.*?^\s*```$|^\s*\$\$$.*?^\s*\$\$$)", text, flags=re.M | re.S)
    return "".join(part if i % 2 else _inline_math(part) for i, part in enumerate(parts))


def _tidy_dataclass_signature(cls: griffe.Class) -> None:
    """The loss objects' ``__init__`` as users call it: without the ``function: ClassVar``
    (griffe does not recognise a bare ``ClassVar``), and ``static_field(x)`` defaults as ``x``."""
    init = cls.members.get("__init__")
    if "dataclass" not in cls.labels or not isinstance(init, griffe.Function):
        return
    for parameter in list(init.parameters):
        member = cls.members.get(parameter.name)
        if member is not None and not member.is_alias and str(member.annotation).startswith("ClassVar"):
            del init.parameters[parameter.name]
            continue
        default = parameter.default
        if isinstance(default, griffe.ExprCall) and str(default.function) == "static_field" and default.arguments:
            parameter.default = default.arguments[0]


def _functions(obj: griffe.Object, seen: set[int]) -> list[griffe.Function]:
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = [obj] if isinstance(obj, griffe.Function) else []
    for member in obj.members.values():
        if not member.is_alias:
            found += _functions(member, seen)  # type: ignore[arg-type]
    return found


def _typed_parameters(functions: list[griffe.Function]) -> None:
    """Parameters annotated ``Any`` (to keep mypy quiet about a JAX type) take the type that a
    parameter of the same name has elsewhere in the package (``targets: ArrayLike``), with
    ``| None`` added or removed by whether their default is ``None``; arrays nothing else
    names read ``ArrayLike``. Only the documentation changes, never the source."""
    known: dict[str, str] = {}
    for function in functions:
        for parameter in function.parameters:
            annotation = str(parameter.annotation) if parameter.annotation is not None else ""
            if annotation and annotation != "Any":
                known.setdefault(parameter.name, annotation.removesuffix(" | None"))
    for function in functions:
        for parameter in function.parameters:
            if str(parameter.annotation) != "Any":
                continue
            base = known.get(parameter.name, "ArrayLike")
            parameter.annotation = f"{base} | None" if str(parameter.default) == "None" else base


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        public = {str(name) for name in (pkg.exports or [])}
        seen: set[int] = set()

        def visit(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj.docstring.value, public)
            if isinstance(obj, griffe.Class):
                _tidy_dataclass_signature(obj)
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)  # type: ignore[arg-type]

        visit(pkg)
        _typed_parameters(_functions(pkg, set()))
