"""Downloaded result files: every line checked, ZIP archives extracted safely."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.reconcile.downloads import (
    CorruptDownload,
    LineTooLong,
    UnsafeArchive,
    finish_download,
)


def result_line(custom_id: str) -> str:
    return json.dumps(
        {
            "id": f"batch_req_{custom_id}",
            "custom_id": custom_id,
            "response": {"status_code": 200, "body": {}},
            "error": None,
        }
    )


def test_plain_jsonl_is_verified_and_moved_into_place(tmp_path: Path) -> None:
    """A whole JSONL file becomes the final file; the raw download is removed."""
    raw = tmp_path / "raw"
    raw.write_text("\n".join(result_line(c) for c in "abc") + "\n")
    final = tmp_path / "out.jsonl"
    assert finish_download(raw, final) == 3
    assert not raw.exists()
    assert [json.loads(x)["custom_id"] for x in final.read_text().splitlines()] == list("abc")


def test_a_cut_off_download_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    """A last line cut mid-object means the download was incomplete."""
    raw = tmp_path / "raw"
    raw.write_text(result_line("a") + "\n" + result_line("b")[:20])
    final = tmp_path / "out.jsonl"
    with pytest.raises(CorruptDownload, match="line 2 is not JSON"):
        finish_download(raw, final)
    assert not final.exists() and not (tmp_path / "out.jsonl.part").exists()


def test_a_zip_with_several_members_is_read_as_one_unordered_result_set(tmp_path: Path) -> None:
    """Results split over several JSONL members, in any order, end up in one file."""
    raw = tmp_path / "raw"
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("results/part-2.jsonl", result_line("d") + "\n" + result_line("b") + "\n")
        archive.writestr("results/", "")
        archive.writestr("results/part-1.jsonl", result_line("c") + "\n" + result_line("a"))
    final = tmp_path / "out.jsonl"
    assert finish_download(raw, final) == 4
    ids = sorted(json.loads(x)["custom_id"] for x in final.read_text().splitlines())
    assert ids == ["a", "b", "c", "d"]


@pytest.mark.parametrize("name", ["../escape.jsonl", "/etc/passwd", "a/../../b.jsonl", "C:/x"])
def test_zip_slip_members_are_refused(tmp_path: Path, name: str) -> None:
    """Absolute member names and `..` climbing out are refused before anything is read."""
    raw = tmp_path / "raw"
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("ok.jsonl", result_line("a"))
        archive.writestr(name, result_line("b"))
    with pytest.raises(UnsafeArchive, match="zip slip"):
        finish_download(raw, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_zip_bomb_is_refused_by_ratio(tmp_path: Path) -> None:
    """A member inflating far beyond its compressed size is stopped while inflating."""
    raw = tmp_path / "raw"
    padding = " " * 5_000_000
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.jsonl", json.dumps({"custom_id": "a", "pad": padding}))
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        finish_download(raw, tmp_path / "out.jsonl")


def test_a_zip_bomb_is_refused_by_total_size(tmp_path: Path) -> None:
    """The total inflated size is capped, whatever each member declares."""
    raw = tmp_path / "raw"
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
        for i in range(5):
            archive.writestr(f"m{i}.jsonl", result_line(str(i)) * 1 + "\n")
    with pytest.raises(UnsafeArchive, match="inflates past"):
        finish_download(raw, tmp_path / "out.jsonl", max_uncompressed=300)


def _peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(CorruptDownload, UnsafeArchive):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_line_longer_than_the_cap_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A 20 MB file with no newline is refused past the line cap, without reading it whole."""
    raw = tmp_path / "raw"
    raw.write_bytes(b'{"custom_id": "a", "pad": "' + b"x" * 20_000_000)
    with pytest.raises(LineTooLong, match="line 1 of the file is longer than"):
        finish_download(raw, tmp_path / "out.jsonl", max_line=1 << 20)
    raw.write_bytes(b'{"custom_id": "a", "pad": "' + b"x" * 20_000_000)
    peak = _peak_bytes(lambda: finish_download(raw, tmp_path / "o.jsonl", max_line=1 << 20))
    assert peak < 4 << 20


def test_a_zip_member_with_no_newline_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    """A 50 MB member of one line stops at the ratio cap, not after inflating it whole."""
    raw = tmp_path / "raw"
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("one.jsonl", b'{"custom_id": "a", "pad": "' + b" " * 50_000_000)
    peak = _peak_bytes(lambda: finish_download(raw, tmp_path / "out.jsonl"))
    assert peak < 32 << 20  # the ratio budget here is about 10 MB; the member is 50 MB
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("one.jsonl", b'{"custom_id": "a", "pad": "' + b" " * 50_000_000)
    with pytest.raises(UnsafeArchive, match="compresses more than"):
        finish_download(raw, tmp_path / "out.jsonl")
