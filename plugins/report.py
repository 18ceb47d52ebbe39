"""``panel2patch report``: one self-contained HTML page about a corpus.

Summary statistics (figures, panels per figure, regions per panel, reject reasons, boxes removed per
cleaner, the diagnostics components counted, such as LVLM answer statuses and repairs) and per-figure overlays: the figure as an embedded JPEG thumbnail with SVG boxes for panels
(with label, kind and sub-caption), markers and regions (with their texts). No server, no scripts
from the network: it opens from disk.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from panel2patch.components import Command
from panel2patch.corpus import CorpusError, CorpusRecord, read_corpus, read_manifest, read_rejects
from panel2patch.errors import ImageError
from panel2patch.hookspecs import hookimpl

THUMB = 720
COLOURS = {"panel": "#1f77b4", "marker": "#d62728", "region": "#2ca02c"}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.fig{border-top:1px solid #ddd;padding:1em 0;display:flex;gap:1.5em}.fig svg{flex:none}
.fig ul{margin:.3em 0;padding-left:1.2em}.muted{color:#777}.p{color:#1f77b4}.m{color:#d62728}.r{color:#2ca02c}
"""


#: Diagnostics that count routine work, not something that went wrong: left out of a figure's list of problems.
ROUTINE = ("requests", "cache_hits", "tokens_in", "tokens_image", "tokens_out", "status.ok", "proposals", "kept")


def _problems(diagnostics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in diagnostics.items() if not any(k.endswith("." + r) for r in ROUTINE)}


def _histogram(counts: list[int]) -> dict[int, int]:
    return dict(sorted(Counter(counts).items()))


def _esc(value: Any) -> str:
    """Any corpus value as HTML text: every field of a corpus is untrusted (hand-edited JSON included)."""
    return html.escape(str(value))


def _table(rows: dict[Any, Any], head: tuple[str, str]) -> str:
    body = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rows.items())
    return f"<table><tr><th>{head[0]}</th><th>{head[1]}</th></tr>{body or '<tr><td colspan=2>none</td></tr>'}</table>"


def _svg(record: CorpusRecord) -> str:
    figure = record.figure
    try:
        image = record.decoded()
    except ImageError as exc:
        return f'<p class="m">image not shown: {_esc(exc.detail)}</p>'
    scale = min(1.0, THUMB / max(image.width, image.height))
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    buf = io.BytesIO()
    image.resize((w, h)).save(buf, format="JPEG", quality=80)
    uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    shapes = [f'<image href="{uri}" width="{w}" height="{h}"/>']

    def rect(box, colour: str, dash: str = "", title: str = "") -> None:
        x0, y0, x1, y1 = (v * scale for v in box)
        shapes.append(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"><title>{_esc(title)}</title></rect>'
        )

    for p in figure.panels:
        rect(p.box, COLOURS["panel"], title=f"{p.id} {p.label or ''} {p.kind}")
        if p.label:
            shapes.append(f'<text x="{p.box[0] * scale + 4:.1f}" y="{p.box[1] * scale + 14:.1f}" fill="{COLOURS["panel"]}" '
                          f'font-weight="bold">{_esc(p.label)}</text>')
    for m in figure.markers:
        rect(m.box, COLOURS["marker"], "3,2", f"{m.kind} {m.text or ''}")
        if m.tip:
            shapes.append(f'<circle cx="{m.tip[0] * scale:.1f}" cy="{m.tip[1] * scale:.1f}" r="3" fill="{COLOURS["marker"]}"/>')
    for r in figure.regions:
        rect(r.box, COLOURS["region"], "6,3", " | ".join(r.texts))
    return f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}">{"".join(shapes)}</svg>'


def _figure_block(record: CorpusRecord) -> str:
    figure = record.figure
    items = []
    for p in figure.panels:
        described = f' <i>{_esc(p.description)}</i>' if p.description else ""
        items.append(f'<li class="p"><b>{_esc(p.label or p.id)}</b> ({_esc(p.kind)}): '
                     f'<span class="muted">{_esc(p.subcaption or "no sub-caption")}</span>{described}</li>')
    for r in figure.regions:
        described = f' <i>{_esc(r.description)}</i>' if r.description else ""
        items.append(f'<li class="r">region {_esc(r.id)} in {_esc(r.panel_id)} ({_esc(r.provenance)}): '
                     f'{_esc(" | ".join(r.texts))}{described}</li>')
    markers = Counter(m.kind for m in figure.markers)
    problems = _problems(figure.diagnostics)
    noted = f'<p class="m">diagnostics: {_esc(problems)}</p>' if problems else ""
    return (
        f'<div class="fig">{_svg(record)}<div><h3>{_esc(figure.id)}</h3>'
        f'<p>{_esc(figure.caption)}</p><p class="m">markers: {_esc(dict(markers) if markers else "none")}</p>'
        f'{noted}<ul>{"".join(items)}</ul></div></div>'
    )


def write_report(corpus: str, out: str, figures: int = 50, progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    root = Path(corpus)
    try:
        manifest = read_manifest(corpus)
    except CorpusError:
        manifest = {}
    removed_per_cleaner: dict[str, Counter] = {}
    diagnostics: Counter = Counter()
    for part in manifest.get("shards", [manifest]) if isinstance(manifest, dict) else []:
        counted = part.get("diagnostics") if isinstance(part, dict) else None
        diagnostics.update({str(k): n for k, n in counted.items() if isinstance(n, int)} if isinstance(counted, dict) else {})
        cleaners = part.get("cleaners") if isinstance(part, dict) else None
        for name, removed in (cleaners or {}).items() if isinstance(cleaners, dict) else []:
            counts = removed_per_cleaner.setdefault(name, Counter())
            counts.update({t: n for t, n in removed.items() if isinstance(n, int)} if isinstance(removed, dict) else {})
    panels_per_figure, regions_per_panel, kinds = [], [], Counter()
    blocks, skipped = [], []
    for record in tqdm(read_corpus(corpus, skipped=skipped), desc="report", unit="fig", disable=not progress, file=sys.stderr):
        figure = record.figure
        panels_per_figure.append(len(figure.panels))
        per_panel = Counter(r.panel_id for r in figure.regions)
        regions_per_panel.extend(per_panel.get(p.id, 0) for p in figure.panels)
        kinds.update(p.kind for p in figure.panels)
        if len(blocks) < figures:
            blocks.append(_figure_block(record))
    rejects = [r if isinstance(r, dict) else {"detail": r} for r in read_rejects(corpus)]
    reasons = Counter(str(r.get("reason", "?")) for r in rejects)
    cleaners = {name: ", ".join(f"{t}: {n}" for t, n in removed.items() if n) or "0"
                for name, removed in removed_per_cleaner.items()}
    summary = {
        "figures": len(panels_per_figure),
        "panels": sum(panels_per_figure),
        "regions": sum(regions_per_panel),
        "rejects": len(rejects),
        "unreadable members": len(skipped),
    }
    for problem in skipped[:5]:
        print(f"report: skipped {problem}", file=sys.stderr)
    page = [
        f"<!doctype html><meta charset=utf-8><title>panel2patch corpus report</title><style>{STYLE}</style>",
        f"<h1>Corpus {_esc(root)}</h1>",
        _table(summary, ("", "count")),
        "<h2>Panels per figure</h2>", _table(_histogram(panels_per_figure), ("panels", "figures")),
        "<h2>Regions per panel</h2>", _table(_histogram(regions_per_panel), ("regions", "panels")),
        "<h2>Panel kinds</h2>", _table(dict(kinds), ("kind", "panels")),
        "<h2>Reject reasons</h2>", _table(dict(reasons), ("reason", "inputs")),
        "<h2>Boxes removed per cleaner</h2>", _table(cleaners, ("cleaner", "removed")),
        "<h2>Diagnostics (all inputs, rejects included)</h2>", _table(dict(sorted(diagnostics.items())), ("signature", "count")),
        f"<h2>Figures (first {len(blocks)})</h2>",
        '<p><span class="p">■ panels</span> <span class="m">■ markers</span> <span class="r">■ regions</span> — hover a box for details</p>',
        *blocks,
    ]
    if skipped:
        items = "".join(f"<li>{_esc(problem)}</li>" for problem in skipped[:500])
        page.append(f"<h2>Unreadable corpus members (left out above)</h2><ul>{items}</ul>")
    if rejects:
        rows = "".join(f"<tr><td>{_esc(r.get('id'))}</td><td>{_esc(r.get('reason'))}</td><td>{_esc(r.get('detail'))}</td></tr>"
                       for r in rejects[:500])
        page.append(f"<h2>Rejects</h2><table><tr><th>id</th><th>reason</th><th>detail</th></tr>{rows}</table>")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(page), encoding="utf-8")
    return summary


class ReportCommand(Command):
    help = "write a static HTML report of a corpus"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("corpus", help="corpus directory (with manifest.json)")
        parser.add_argument("out", help="output .html file")
        parser.add_argument("--figures", type=int, default=50, help="figures to draw overlays for")

    def run(self, args: argparse.Namespace) -> int:
        summary = write_report(args.corpus, args.out, args.figures)
        print(f"wrote {args.out}: {summary}")
        return 0


@hookimpl
def register_commands(register):
    register("report", ReportCommand)
