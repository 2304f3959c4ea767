"""What reaches the terminal: data as inert text, never as markup, links or escape sequences.

Workflow ids, search attributes and error messages come from whoever can write to the
namespace; printed as they are, `[/]` would crash Rich's markup parser, `[link=...]` or an OSC 8
sequence would show a spoofed link, and `ESC [2J` would clear the screen. So every string the
CLI prints goes through `inert`, and colour or links come only from `styled` parts the code
spells out itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

# ECMA-48 sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC strings up to their
# terminator (or the end: an unterminated one is cut whole), and two-byte escapes.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
)
_LINE_BREAKS = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]+")
# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a line shows.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

Part = str | tuple[str, str | Style]


def inert(value: object) -> str:
    """`value` as one line a terminal only displays: escape sequences and control characters
    removed, line breaks and tabs made spaces (a datum cannot forge a line of output)."""
    text = _ESCAPE_SEQUENCE.sub("", str(value))
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", text))


def styled(*parts: Part) -> Text:
    """One line of inert parts, some in a style of ours: `styled(("error:", "red"), " ", text)`."""
    return Text.assemble(
        *(inert(part) if isinstance(part, str) else (inert(part[0]), part[1]) for part in parts)
    )


def link(url: str) -> Text:
    """`url` shown as itself and clickable where the terminal supports links."""
    shown = inert(url)
    return Text(shown, style=Style(link=shown))


def _inert_lines(text: str) -> str:
    """`inert` line by line: for text already laid out, whose line breaks are ours."""
    return "\n".join(inert(line) for line in text.split("\n"))


class InertConsole(Console):
    """A Console that prints every string as inert text: no markup, emoji codes or highlighting,
    no control characters. Line breaks come from separate prints, `sep` and tables.

    What a `Text` or any other renderable holds is cut of escape sequences and control
    characters too, as it is rendered (its line breaks stay)."""

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, soft_wrap=True, markup=False, emoji=False, highlight=False)

    def render_str(self, text: str, **options: Any) -> Text:
        options.update(markup=False, emoji=False, highlight=False)
        return super().render_str(inert(text), **options)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control:  # Rich's own cursor moves (Live), never data
                yield segment
            else:
                yield Segment(_inert_lines(segment.text), segment.style)


# Every string printed through these is inert text: data can come from anyone who can write to
# the namespace. The CLI and the dev stack print through them.
console = InertConsole()
errors = InertConsole(stderr=True)
