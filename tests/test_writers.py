"""The corpus writer: one run per output folder and mining shard at a time."""

import pytest

from panel2patch.errors import Panel2PatchError
from panel2patch.plugins.writers import WebDatasetWriter


def test_a_second_writer_of_the_same_shard_is_refused_until_the_first_finishes(tmp_path):
    first, second = WebDatasetWriter(str(tmp_path)), WebDatasetWriter(str(tmp_path))
    assert first.completed("000-00000") is None
    first.begin("000-00000")
    with pytest.raises(Panel2PatchError, match=r"another run is writing mining shard 000 into .*\.lock-000"):
        second.completed("000-00000")
    other_shard = WebDatasetWriter(str(tmp_path))
    other_shard.begin("001-00000")  # shards of one corpus are written in parallel
    first.commit({"inputs": 0})
    first.finish({"shard": 0, "num_shards": 2})
    assert second.completed("000-00000")["inputs"] == 0  # released by finish


def _corpus_with_samples(tmp_path, n: int):
    from panel2patch.data import Figure

    writer = WebDatasetWriter(str(tmp_path))
    writer.begin("000-00000")
    for i in range(n):
        writer.write(Figure(id=f"f{i}", width=4, height=4, caption="c" * 700), b"\x89PNG fake", "png")
    writer.commit({"inputs": n})
    writer.finish({"shard": 0, "num_shards": 1})
    return next((tmp_path / "shards").glob("*.tar"))


@pytest.mark.parametrize("damage", ["header", "cut_at_header", "cut_in_member"])
def test_the_corpus_reader_reports_a_damaged_shard_instead_of_stopping_silently(tmp_path, damage):
    import tarfile

    from panel2patch.corpus import CorpusError, read_corpus

    shard = _corpus_with_samples(tmp_path, 4)
    with tarfile.open(shard) as tar:
        third = [m.offset for m in tar.getmembers()][6]  # the first member of the third sample
    raw = bytearray(shard.read_bytes())
    if damage == "header":
        raw[third + 148:third + 156] = b"99999999"  # a wrong header checksum
    shard.write_bytes(bytes(raw[:third]) if damage == "cut_at_header" else
                      bytes(raw[:third + 700]) if damage == "cut_in_member" else bytes(raw))
    seen = []
    with pytest.raises(CorpusError) as err:
        for record in read_corpus(tmp_path):
            seen.append(record.figure.id)
    assert seen == ["f0", "f1"]  # every sample before the damage, then the error
    if damage == "cut_in_member":  # tarfile itself notices data cut off
        assert str(err.value).startswith(f"cannot read shard {shard}: ")
    else:
        assert f"shard {shard} is damaged or truncated at byte {third}" in str(err.value)
