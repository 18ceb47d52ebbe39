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
    assert second.completed("000-00000") == {"inputs": 0}  # released by finish
