"""Finding and running the documentation's runnable examples.

A block is runnable when the line before its fence is an HTML comment starting with
``run`` (invisible on the site)::

    <!-- run -->
    ```bash
    modelyard train task=digits train=fast
    ```

Options after ``run``, space-separated:

- ``exit=N``: the block must end with exit code N (an example of a refusal, say);
- ``background``: a long-running command (a server); it is started, the page's
  next blocks run while it lives, and it is stopped when the page is done. It must
  not have died on its own by then.

Shell blocks run with ``bash -e`` and Python blocks with the project's interpreter,
each in its own process, in one working folder per page, with ``modelyard`` on
``PATH``. The port the pages use, 8000, is swapped for a free one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PORT = "8000"

_BLOCK = re.compile(
    r"^<!-- run(?P<options>[^>]*?) -->\n```(?P<lang>\w+)[^\n]*\n(?P<code>.*?)^```",
    re.M | re.S,
)


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    lang: str
    code: str
    exit_code: int = 0
    background: bool = False

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def examples(page: str) -> list[Example]:
    text = (DOCS / page).read_text()
    found = []
    for match in _BLOCK.finditer(text):
        options = match.group("options").split()
        exit_code, background = 0, False
        for option in options:
            if option.startswith("exit="):
                exit_code = int(option.removeprefix("exit="))
            elif option == "background":
                background = True
            else:
                raise ValueError(f"docs/{page}: unknown run option {option!r}")
        if match.group("lang") not in ("bash", "python"):
            raise ValueError(f"docs/{page}: a runnable block must be bash or python")
        found.append(
            Example(
                page=page,
                line=text.count("\n", 0, match.start()) + 2,
                lang=match.group("lang"),
                code=match.group("code"),
                exit_code=exit_code,
                background=background,
            )
        )
    return found


def marked_but_unparsed(page: str) -> list[int]:
    """Lines of ``<!-- run`` comments that no block was found for (a typo in a marker)."""
    text = (DOCS / page).read_text()
    parsed = {e.line - 1 for e in examples(page)}
    return [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if line.startswith("<!-- run") and number not in parsed
    ]


def pages() -> list[str]:
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
