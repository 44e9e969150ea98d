"""Generated numbers in READMEs: a block between `<!-- name:start -->` and `<!-- name:end -->`
is replaced by the command that measures it, so a README never holds hand-typed results."""

from __future__ import annotations

import re
from pathlib import Path

from common.app.paths import REPO_ROOT


def system_readme(system: str) -> Path:
    return REPO_ROOT / "systems" / system / "README.md"


def replace_block(path: Path, name: str, text: str) -> None:
    """Put `text` between the block's markers; the markers must already be in the file."""
    content = path.read_text()
    pattern = re.compile(rf"(<!-- {re.escape(name)}:start -->\n).*?(<!-- {re.escape(name)}:end -->)", re.DOTALL)
    if not pattern.search(content):
        raise ValueError(f"{path} has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    path.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip("\n") + "\n" + m.group(2), content))
