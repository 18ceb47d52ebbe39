"""PubMed Central Open Access article packages as a figure source (``pmc_oa``).

A package is what the PMC OA service ships: a ``.tar.gz`` (or the folder it extracts to) holding one JATS article
(``.nxml``) and its files. Every ``<fig>`` of the article is one item: its one ``<graphic>`` (an ``xlink:href``
without extension resolves to the package's image file of that name, best format first), its caption as plain
text (label, title and paragraphs, inline markup flattened) and the article's metadata (PMCID, DOI, journal, year,
licence, figure id and label; ``article_id`` is the group key that keeps one paper's figures in one split).

Whatever a package holds, nothing is lost: a figure with no or several graphics, a graphic that is missing or is
no image, a licence the recipe excludes, a package with no figures, malformed XML or an unreadable archive each
end as a reject with its reason. The XML is parsed without DTDs, entities or network access.
"""

from __future__ import annotations

import glob
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from panel2patch.components import Source
from panel2patch.data import SourceItem
from panel2patch.errors import Panel2PatchError, Reject
from panel2patch.hookspecs import hookimpl
from panel2patch.images import IMAGE_EXTS
from panel2patch.plugins.sources import encodable, shown

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
#: Licence kinds by the Creative Commons URL or wording that names them, most specific first.
LICENSE_KINDS = (
    ("cc-by-nc-nd", r"by-nc-nd|attribution[- ]noncommercial[- ]no ?deriv"),
    ("cc-by-nc-sa", r"by-nc-sa|attribution[- ]noncommercial[- ]share ?alike"),
    ("cc-by-nc", r"by-nc|attribution[- ]noncommercial"),
    ("cc-by-nd", r"by-nd|attribution[- ]no ?deriv"),
    ("cc-by-sa", r"by-sa|attribution[- ]share ?alike"),
    ("cc0", r"publicdomain/zero|\bcc0\b|public domain dedication"),
    ("cc-by", r"licenses/by/|\bcc[- ]by\b|creative commons attribution"),
)
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def license_kind(url: str, text: str) -> str:
    """``cc-by``, ``cc-by-nc``, ``cc0``, ... from a licence's URL and wording; ``other`` when neither names one."""
    for kind, pattern in LICENSE_KINDS:
        if re.search(pattern, f"{url} {text}", re.IGNORECASE):
            return kind
    return "other"


def plain_text(element: Any) -> str:
    """The text of an element with its inline markup (italics, links, sub/superscripts) flattened."""
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def caption_text(fig: Any) -> str:
    """``Figure 2. Title. Paragraph ...``: the printed label, the caption title and its paragraphs."""
    parts = [plain_text(fig.find("label"))]
    caption = fig.find("caption")
    if caption is not None:
        parts += [plain_text(child) for child in caption if child.tag in ("title", "p")]
    parts = [p for p in parts if p]
    return " ".join(p if p[-1] in ".:;!?" or n == len(parts) - 1 else p + "." for n, p in enumerate(parts))


class PmcOaSource(Source):
    """Figures of PMC Open Access article packages (see the module docstring).

    ``packages``: a folder (every ``.tar.gz``/``.tgz``/``.tar`` below it and every folder holding an ``.nxml``), a
    glob, or one package. ``licenses``: the licence kinds to keep (``[cc-by, cc0]``); figures under others become
    ``license_excluded`` rejects. ``max_bytes``: the largest image file read.
    """

    def __init__(self, packages: str = "", licenses: list[str] | None = None, max_bytes: int = 256_000_000) -> None:
        if not packages:
            raise Panel2PatchError("pmc_oa source: 'packages' is required (a folder, a glob or one package)")
        known = {kind for kind, _ in LICENSE_KINDS} | {"other", "none"}
        unknown = sorted(set(licenses or ()) - known)
        if unknown:
            raise ValueError(f"unknown licence kind {unknown[0]!r}; known: {', '.join(sorted(known))}")
        self.packages, self.licenses, self.max_bytes = packages, licenses, max_bytes

    def package_paths(self) -> list[Path]:
        root = Path(self.packages)
        if root.is_dir() and not any(root.glob("*.nxml")):
            found = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(ARCHIVE_SUFFIXES)]
            found += [p.parent for p in root.rglob("*.nxml") if not p.parent.name.startswith(".")]
        else:
            found = [Path(p) for p in sorted(glob.glob(self.packages))] or [root]
        paths = sorted(set(found))
        if not paths or not all(p.exists() for p in paths):
            raise Panel2PatchError(f"pmc_oa source: no article packages match {self.packages!r}")
        return paths

    def __iter__(self) -> Iterator[SourceItem]:
        for path in self.package_paths():
            for item in self._package(path):
                yield encodable(item)

    def _package(self, path: Path) -> Iterator[SourceItem]:
        name = path.name
        origin = f"{name}#package"

        def rejected(reason: str, detail: str) -> SourceItem:
            return SourceItem(origin, b"", None, origin, error=Reject(reason, detail))

        try:
            files, skipped = read_package(path, self.max_bytes)
        except (OSError, tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
            yield rejected("bad_package", f"{name} cannot be read as an article package: {exc or type(exc).__name__}")
            return
        articles = sorted(f for f in files if f.endswith(".nxml"))
        if len(articles) != 1:
            yield rejected("bad_package", f"{name} holds {len(articles)} .nxml article files, not one")
            return
        try:
            article = parse_article(files[articles[0]])
        except ValueError as exc:
            yield rejected("malformed_xml", f"{name}/{articles[0]}: {exc}")
            return
        meta = article_metadata(article, fallback_id=name.split(".")[0])
        figures = article.findall(".//fig")
        if not figures:
            yield rejected("no_figures", f"{name}: the article {meta['article_id']} has no <fig> elements")
            return
        for n, fig in enumerate(figures, 1):
            yield self._figure(fig, n, meta, files, skipped, name)

    def _figure(self, fig: Any, n: int, meta: dict[str, Any], files: dict[str, bytes], skipped: dict[str, int],
                package: str) -> SourceItem:
        fig_id = fig.get("id") or f"fig{n}"
        figure_id = f"{meta['article_id']}_{_UNSAFE_ID.sub('_', fig_id)}"
        metadata = {**meta, "figure_id": fig_id, "label": plain_text(fig.find("label")) or None}
        origin, caption = f"{package}:{fig_id[:60]}", caption_text(fig)

        def rejected(reason: str, detail: str) -> SourceItem:
            return SourceItem(figure_id, b"", caption, origin, metadata=metadata, error=Reject(reason, detail))

        if self.licenses is not None and meta["license_kind"] not in self.licenses:
            licence = f"{meta['license_kind']} ({meta['license_url'] or meta['license'] or 'no licence given'})"
            return rejected("license_excluded", f"licence {licence} is not one of {', '.join(self.licenses)}")
        hrefs = [g.get(XLINK_HREF) or "" for g in fig.iter("graphic")]
        if len(hrefs) != 1:
            what = "no <graphic>" if not hrefs else f"{len(hrefs)} graphics ({', '.join(shown(h, 40) for h in hrefs)})"
            return rejected("no_graphic" if not hrefs else "several_graphics", f"figure {shown(fig_id)} has {what}")
        name, problem = resolve_graphic(hrefs[0], files, skipped, self.max_bytes)
        if problem is not None:
            return rejected(*problem)
        return SourceItem(figure_id, files[name], caption, origin, metadata={**metadata, "graphic": name})


def read_package(path: Path, max_bytes: int) -> tuple[dict[str, bytes], dict[str, int]]:
    """``({file name: bytes}, {file name: size})`` of a package's article and image files, read in one streaming
    pass (names are base names: packages keep their files in one folder); files over ``max_bytes`` and files of
    other kinds (PDFs, supplements) are listed by size only, never read."""
    wanted = (".nxml", *(f".{e}" for e in IMAGE_EXTS))
    files: dict[str, bytes] = {}
    skipped: dict[str, int] = {}
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            size = file.stat().st_size
            if file.suffix.lower() in wanted and size <= max_bytes:
                files[file.name] = file.read_bytes()
            else:
                skipped[file.name] = size
        return files, skipped
    with tarfile.open(path, mode="r|*") as tar:
        for member in tar:
            if not member.isreg():
                continue
            base = PurePosixPath(member.name).name
            if PurePosixPath(base).suffix.lower() in wanted and member.size <= max_bytes:
                files[base] = tar.extractfile(member).read()
            else:
                skipped[base] = member.size
    return files, skipped


def parse_article(raw: bytes) -> Any:
    """The JATS root element; ``ValueError`` naming the line for malformed XML. No DTD, entity or network access."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"malformed XML: {exc}") from None
    if root is None or root.tag != "article":
        raise ValueError(f"the root element is {getattr(root, 'tag', None)!r}, not a JATS <article>")
    etree.strip_elements(root, etree.Entity, with_tail=False)  # unresolved references say nothing
    return root


def article_metadata(article: Any, fallback_id: str) -> dict[str, Any]:
    """PMCID, DOI, journal, year and licence of a JATS article; ``article_id`` is the PMCID (else the package name)."""
    meta = article.find("front/article-meta")
    ids = {i.get("pub-id-type"): plain_text(i) for i in (meta.findall("article-id") if meta is not None else [])}
    pmc = ids.get("pmcid") or ids.get("pmc") or ids.get("pmcaid") or ""
    pmcid = f"PMC{pmc.removeprefix('PMC')}" if pmc else None
    journal = article.find("front/journal-meta/journal-title-group/journal-title")
    journal_id = article.find("front/journal-meta/journal-id[@journal-id-type='nlm-ta']")
    years = [plain_text(d.find("year")) for d in (meta.findall("pub-date") if meta is not None else [])]
    licence = meta.find("permissions/license") if meta is not None else None
    url = (licence.get(XLINK_HREF) or "") if licence is not None else ""
    if licence is not None and not url:
        ref = licence.find("{http://www.niso.org/schemas/ali/1.0/}license_ref")
        url = plain_text(ref)
    text = plain_text(licence)
    return {
        "article_id": pmcid or _UNSAFE_ID.sub("_", fallback_id), "pmcid": pmcid, "doi": ids.get("doi") or None,
        "journal": plain_text(journal) or plain_text(journal_id) or None,
        "year": int(next((y for y in years if y.isdigit()), "0")) or None,
        "license": text or None, "license_url": url or None,
        "license_kind": license_kind(url, text) if licence is not None else "none",
    }


def resolve_graphic(href: str, files: dict[str, bytes], skipped: dict[str, int],
                    max_bytes: int) -> tuple[str, None] | tuple[None, tuple[str, str]]:
    """The package file a graphic's ``xlink:href`` names (``name.jpg``, or ``name`` with the best image format
    present), or ``(reason, detail)`` why there is none."""
    base = PurePosixPath(href).name
    suffix = PurePosixPath(base).suffix.lower().lstrip(".")
    if not base:
        return None, ("missing_image", "the <graphic> has no xlink:href")
    if suffix in IMAGE_EXTS and base in files:
        return base, None
    stem = base[: -len(suffix) - 1] if suffix in IMAGE_EXTS else base
    for ext in (*IMAGE_EXTS, *(e.upper() for e in IMAGE_EXTS)):
        if f"{stem}.{ext}" in files:
            return f"{stem}.{ext}", None
    big = [n for n in skipped if PurePosixPath(n).stem == stem and PurePosixPath(n).suffix.lower().lstrip(".") in IMAGE_EXTS]
    if big:
        return None, ("file_too_large", f"{shown(big[0])} is {skipped[big[0]]} bytes > {max_bytes}")
    others = [n for n in skipped if PurePosixPath(n).stem == stem or n == base]
    if others:
        return None, ("unsupported_graphic", f"graphic {shown(href)} is {shown(others[0])}, not an image format "
                                             f"({'/'.join(IMAGE_EXTS)})")
    return None, ("missing_image", f"graphic {shown(href)} is not in the package")


@hookimpl
def register_sources(register):
    register("pmc_oa", PmcOaSource)

