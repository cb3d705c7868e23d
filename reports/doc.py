"""A tiny document model rendered both as Markdown and as self-contained HTML (plots embedded), so
the two formats of the report cannot drift apart."""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
           (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>')]


def _inline_html(text: str) -> str:
    out = html.escape(str(text), quote=False)
    for pat, rep in _INLINE:
        out = pat.sub(rep, out)
    return out


@dataclass
class Doc:
    """A tiny document model rendered both as Markdown and as self-contained HTML, so the two
    formats cannot drift apart. Text may use `code`, **bold** and [links](file)."""

    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if headers and rows:
            self.blocks.append(("table", list(headers), [[str(c) for c in r] for r in rows]))

    def img(self, path: Path, caption: str) -> None:
        self.blocks.append(("img", Path(path), caption))

    def images(self) -> list[Path]:
        """The image files placed so far."""
        return [b[1] for b in self.blocks if b[0] == "img"]

    def to_markdown(self, base: Path) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {x}" for x in b[1]))
            elif b[0] == "table":
                esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                lines = ["| " + " | ".join(esc(h) for h in b[1]) + " |",
                         "|" + "|".join("---" for _ in b[1]) + "|"]
                lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in b[2]]
                out.append("\n".join(lines))
            elif b[0] == "img":
                rel = b[1].relative_to(base) if b[1].is_relative_to(base) else b[1]
                out.append(f"![{b[2]}]({rel.as_posix()})\n\n*{b[2]}*")
        return "\n\n".join(out) + "\n"

    def to_html(self, title: str) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline_html(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline_html(b[1])}</p>")
            elif b[0] == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b[1]) + "</ul>")
            elif b[0] == "table":
                head = "".join(f"<th>{_inline_html(h)}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(
                    f'<td class="{"num" if _looks_numeric(c) else "txt"}">{_inline_html(c)}</td>' for c in r) + "</tr>"
                    for r in b[2])
                body.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
                            "</table></div>")
            elif b[0] == "img":
                data = base64.b64encode(b[1].read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{_inline_html(b[2])}</figcaption></figure>")
        return _HTML_PAGE.format(title=html.escape(title), css=_CSS, body="\n".join(body))


def _looks_numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.]+(%|x)?|—", cell.strip()))


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;
padding:0 16px;color:#1b1b1b;background:#fff;line-height:1.45}
h1{font-size:1.7em;border-bottom:2px solid #ddd;padding-bottom:4px}h2{margin-top:1.6em;font-size:1.3em}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f3f7;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td{white-space:nowrap}td:last-child{white-space:normal;min-width:12em}
tr:nth-child(even) td{background:#fafafa}.scroll{overflow-x:auto}
code{background:#f3f3f3;padding:0 3px;border-radius:3px;font-size:.95em}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #e3e3e3}
figcaption{font-size:.9em;color:#555}
"""
_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
{body}
</body></html>
"""

