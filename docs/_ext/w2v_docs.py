"""Sphinx extension of the manual: the ``w2v-params`` directive renders a params section's keys from the
code's definitions (w2v/params.py), so the parameters page cannot disagree with the code, and the build warns
(so fails) when a section of the code has no such table."""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

log = logging.getLogger(__name__)


def section_table(section: str) -> list[str]:
    """Markdown: the section's keys with their defaults, in the code's order (the rows `w2v params` prints)."""
    from stages.cli import key_rows

    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key, default, allowed, meaning in key_rows(section):
        cells = [f"`{key}`", f"`{default}`", allowed, meaning]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


class ParamsDirective(SphinxDirective):
    """```{w2v-params} SECTION``` : the table of one params section."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from w2v.params import SECTIONS

        section = self.arguments[0]
        if section not in SECTIONS:
            raise self.error(f"no params section {section!r}; the code has {', '.join(SECTIONS)}")
        rendered = getattr(self.env, "w2v_params_sections", set())
        rendered.add(section)
        self.env.w2v_params_sections = rendered  # type: ignore[attr-defined]
        container = nodes.container()
        self.state.nested_parse(StringList(section_table(section), source="w2v/params.py"), self.content_offset,
                                container)
        return list(container.children)


def every_section_rendered(app, env) -> None:
    from w2v.params import SECTIONS

    missing = [s for s in SECTIONS if s not in getattr(env, "w2v_params_sections", set())]
    if missing:
        log.warning("the manual has no w2v-params table for the params section(s) %s", ", ".join(missing))


def setup(app):
    app.add_directive("w2v-params", ParamsDirective)
    app.connect("env-check-consistency", every_section_rendered)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
