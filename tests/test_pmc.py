"""The PMC Open Access source on locally made JATS article packages: figures with their article metadata, every bad
case a reject with its reason, nothing resolved from DTDs or entities."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from panel2patch.cli import main
from panel2patch.corpus import read_corpus, read_rejects
from panel2patch.plugins.pmc import PmcOaSource, caption_text, license_kind, parse_article

CC_BY = '<license xlink:href="https://creativecommons.org/licenses/by/4.0/"><license-p>This article is licensed under a ' \
        "Creative Commons Attribution 4.0 International License.</license-p></license>"
CC_BY_NC = '<license license-type="open-access" xlink:href="http://creativecommons.org/licenses/by-nc/3.0/">' \
           "<license-p>Attribution-NonCommercial</license-p></license>"


def jats(pmc: str, figures: str, licence: str = CC_BY, doctype: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>{doctype}
<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:ali="http://www.niso.org/schemas/ali/1.0/"
         article-type="research-article">
  <front>
    <journal-meta><journal-id journal-id-type="nlm-ta">EMBO J</journal-id>
      <journal-title-group><journal-title>The EMBO Journal</journal-title></journal-title-group></journal-meta>
    <article-meta>
      <article-id pub-id-type="pmc">{pmc}</article-id>
      <article-id pub-id-type="doi">10.1038/s44318-025-{pmc}</article-id>
      <pub-date pub-type="epub"><day>3</day><month>2</month><year>2025</year></pub-date>
      <permissions>{licence}</permissions>
    </article-meta>
  </front>
  <body><sec><p>Text citing <xref ref-type="fig" rid="F1">Fig. 1</xref>.</p>{figures}</sec></body>
</article>""".encode()


def figure(fig_id: str, *hrefs: str, caption: str = "<p>(A) Cells.</p>") -> str:
    graphics = "".join(f'<graphic xlink:href="{h}"/>' for h in hrefs)
    return f'<fig id="{fig_id}"><label>Figure {fig_id[1:]}</label><caption><title>Title {fig_id}</title>{caption}' \
           f"</caption>{graphics}</fig>"


def image(fmt: str = "JPEG", size: tuple[int, int] = (200, 120)) -> bytes:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).rectangle((10, 10, 90, 110), fill=(40, 80, 160))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def package(path: Path, folder: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def packages(tmp_path) -> Path:
    root = tmp_path / "oa"
    root.mkdir()
    good = figure("F1", "embj-1-g001", caption="<p>(A) <italic>Wnt3a</italic> cells, 10<sup>3</sup> per well. "
                                              "(B) Blots.</p><p>Source data are available online.</p>")
    figures = good + figure("F2", "embj-1-g002.png") + figure("F3", "embj-1-g003a", "embj-1-g003b") \
        + figure("F4", "embj-1-g004") + figure("F5", "embj-1-g005") + figure("F6")
    package(root / "PMC1001.tar.gz", "PMC1001", {
        "embj-1.nxml": jats("1001", figures), "embj-1-g001.jpg": image(), "embj-1-g001.gif": image("GIF", (40, 24)),
        "embj-1-g002.png": image("PNG"), "embj-1-g003a.jpg": image(), "embj-1-g003b.jpg": image(),
        "embj-1-g005.pdf": b"%PDF-1.4 not an image", "embj-1.pdf": b"%PDF-1.4 the article",
    })
    package(root / "PMC1002.tar.gz", "PMC1002", {"a.nxml": jats("1002", figure("F1", "b-g001"), CC_BY_NC),
                                                 "b-g001.jpg": image()})
    package(root / "PMC1003.tar.gz", "PMC1003", {"a.nxml": jats("1003", "")})
    package(root / "PMC1004.tar.gz", "PMC1004", {"a.nxml": jats("1004", figure("F1", "x"))[:-40]})
    (root / "PMC1005.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    folder = root / "PMC1006"
    folder.mkdir()
    (folder / "c.nxml").write_bytes(jats("1006", figure("F1", "c-g001")))
    (folder / "c-g001.tif").write_bytes(image("TIFF"))
    return root


EXPECTED = Counter({
    ("PMC1001_F1", None), ("PMC1001_F2", None), ("PMC1001_F3", "several_graphics"), ("PMC1001_F4", "missing_image"),
    ("PMC1001_F5", "unsupported_graphic"), ("PMC1001_F6", "no_graphic"), ("PMC1002_F1", None),
    ("PMC1003.tar.gz#package", "no_figures"), ("PMC1004.tar.gz#package", "malformed_xml"),
    ("PMC1005.tar.gz#package", "bad_package"), ("PMC1006_F1", None),
})


def outcomes(source) -> Counter:
    return Counter((item.id, item.error.reason if item.error else None) for item in source)


def test_every_figure_and_every_bad_case_ends_as_one_item(packages):
    assert outcomes(PmcOaSource(str(packages))) == EXPECTED


def test_a_figure_carries_its_article_metadata_and_plain_caption(packages):
    item = next(i for i in PmcOaSource(str(packages)) if i.id == "PMC1001_F1")
    assert item.caption == ("Figure 1. Title F1. (A) Wnt3a cells, 103 per well. (B) Blots. "
                            "Source data are available online.")
    assert Image.open(io.BytesIO(item.image)).size == (200, 120)  # the JPEG, not the GIF thumbnail
    assert item.metadata == {
        "article_id": "PMC1001", "pmcid": "PMC1001", "doi": "10.1038/s44318-025-1001", "journal": "The EMBO Journal",
        "year": 2025, "license_kind": "cc-by", "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "license": "This article is licensed under a Creative Commons Attribution 4.0 International License.",
        "figure_id": "F1", "label": "Figure 1", "graphic": "embj-1-g001.jpg",
    }


def test_reject_details_name_the_problem(packages):
    details = {item.id: item.error.detail for item in PmcOaSource(str(packages)) if item.error}
    assert "2 graphics ('embj-1-g003a', 'embj-1-g003b')" in details["PMC1001_F3"]
    assert "'embj-1-g004' is not in the package" in details["PMC1001_F4"]
    assert "'embj-1-g005.pdf', not an image format" in details["PMC1001_F5"]
    assert "has no <graphic>" in details["PMC1001_F6"]
    assert details["PMC1003.tar.gz#package"] == "PMC1003.tar.gz: the article PMC1003 has no <fig> elements"
    assert "malformed XML" in details["PMC1004.tar.gz#package"]
    assert "cannot be read as an article package" in details["PMC1005.tar.gz#package"]


def test_the_licence_filter_turns_other_licences_into_rejects(packages):
    found = outcomes(PmcOaSource(str(packages), licenses=["cc-by", "cc0"]))
    assert found[("PMC1002_F1", "license_excluded")] == 1 and sum(found.values()) == sum(EXPECTED.values())
    with pytest.raises(ValueError, match="unknown licence kind 'cc-by-4'"):
        PmcOaSource(str(packages), licenses=["cc-by-4"])


@pytest.mark.parametrize("url, text, kind", [
    ("https://creativecommons.org/licenses/by/4.0/", "", "cc-by"),
    ("http://creativecommons.org/licenses/by-nc-nd/4.0/", "", "cc-by-nc-nd"),
    ("https://creativecommons.org/publicdomain/zero/1.0/", "", "cc0"),
    ("", "This is an open access article under the CC BY-SA license.", "cc-by-sa"),
    ("", "Creative Commons Attribution-NonCommercial License", "cc-by-nc"),
    ("", "Copyright the authors. All rights reserved.", "other"),
])
def test_licence_kinds_from_url_or_wording(url, text, kind):
    assert license_kind(url, text) == kind


def test_entities_and_external_dtds_are_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doctype = f'<!DOCTYPE article [<!ENTITY leak SYSTEM "file://{secret}">]>'
    article = parse_article(jats("7", figure("F1", "g", caption="<p>(A) &leak; cells.</p>"), doctype=doctype))
    assert caption_text(article.find(".//fig")) == "Figure 1. Title F1. (A) cells."


def test_mining_pmc_packages_keeps_the_metadata_and_accounts_for_everything(packages, tmp_path, capsys):
    recipe = tmp_path / "pmc.yaml"
    recipe.write_text(f"""
mine:
  source: {{name: pmc_oa, args: {{packages: '{packages}'}}}}
  parser: {{name: cpu_layout}}
  splitter: {{name: label_splitter}}
  writer: {{name: webdataset_corpus, args: {{out: '{tmp_path / "corpus"}'}}}}
""")
    assert main(["mine", str(recipe)]) == 0
    mined = {r.figure.id: r.figure for r in read_corpus(tmp_path / "corpus")}
    found = Counter((i, None) for i in mined) + Counter((r["id"], r["reason"]) for r in read_rejects(tmp_path / "corpus"))
    assert found == EXPECTED
    assert mined["PMC1002_F1"].metadata["license_kind"] == "cc-by-nc"
    assert mined["PMC1006_F1"].metadata["article_id"] == "PMC1006" and mined["PMC1006_F1"].source == "PMC1006:F1"


def test_the_held_out_split_keeps_the_figures_of_one_article_together(tmp_path):
    from panel2patch.data import Figure, Panel
    from panel2patch.manager import build
    from panel2patch.plugins.training.corpus_scan import group_of, scan
    from panel2patch.plugins.writers import WebDatasetWriter

    writer = WebDatasetWriter(str(tmp_path / "corpus"))
    writer.begin("000-00000")
    for article in range(12):
        for n in range(4):
            panels = [Panel("p0", (0, 0, 20, 20), label="A", subcaption=f"article {article} figure {n}")]
            figure = Figure(id=f"PMC{article}_F{n}", width=20, height=20, caption="c", panels=panels,
                            metadata={"article_id": f"PMC{article}"})
            writer.write(figure, image("PNG", (20, 20)), "png")
    writer.commit({"inputs": 48})
    writer.finish({"shard": 0, "num_shards": 1})
    records = list(read_corpus(tmp_path / "corpus", members=("json",)))
    assert {group_of(r.key, r.figure) for r in records} == {f"article:PMC{a}" for a in range(12)}
    counts = scan(str(tmp_path / "corpus"), [build("levels", "figure", {})], held_out=0.5)
    assert counts.figures["held_out"] % 4 == 0 and 0 < counts.figures["held_out"] < 48  # whole articles only
    record = counts.split_record(0.5)
    assert len(record["held_out_groups"]) * 4 == counts.figures["held_out"]
    assert all(g.startswith("article:PMC") for g in record["held_out_groups"])
    assert group_of("key_1", Figure(id="f", width=1, height=1, caption="c")) == "key_1"
