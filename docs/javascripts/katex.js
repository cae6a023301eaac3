// Render the formulas with KaTeX: pymdownx.arithmatex (generic mode) writes \( \) and \[ \]
// on every page; the notebooks (mkdocs-jupyter, which loads no math renderer of its own)
// keep their Markdown cells' $...$ and $$...$$.
document$.subscribe(({ body }) => {
  const brackets = [
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
  ];
  const dollars = [
    { left: "$$", right: "$$", display: true },
    { left: "$", right: "$", display: false },
  ];
  renderMathInElement(body, { delimiters: brackets, throwOnError: false });
  body.querySelectorAll(".jupyter-wrapper").forEach((notebook) =>
    renderMathInElement(notebook, { delimiters: dollars, throwOnError: false })
  );
});
