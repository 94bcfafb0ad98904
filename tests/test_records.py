import os

import pytest

from emgen.errors import InvalidRecordError
from emgen.records import AtomicFile, dumps, read_records, write_records
from tests.conftest import make_record


def test_write_then_read_roundtrip(tmp_path):
    path = tmp_path / "data.jsonl"
    records = [make_record(id=f"r{i}") for i in range(3)]
    assert write_records(path, records) == 3
    assert list(read_records(path)) == records
    assert path.read_text().count("\n") == 3


def test_reader_names_file_and_line_of_bad_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(dumps(make_record()) + "\n\n{not json\n")
    with pytest.raises(InvalidRecordError, match=r"bad\.jsonl:3: not valid JSON"):
        list(read_records(path))


def test_reader_names_file_and_line_of_invalid_record(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(dumps(make_record()) + "\n" + dumps(make_record(variant="evil")) + "\n")
    with pytest.raises(InvalidRecordError, match=r"bad\.jsonl:2: metadata/variant"):
        list(read_records(path))


def test_writer_refuses_an_invalid_record_and_keeps_the_old_file(tmp_path):
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    path = tmp_path / "data.jsonl"
    write_records(path, [make_record()])
    before = path.read_bytes()
    with pytest.raises(InvalidRecordError, match="record 2"):
        write_records(path, [make_record(), make_record(flaw=None)])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]


def test_atomic_file_leaves_nothing_on_failure(tmp_path):
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    path = tmp_path / "out.txt"
    with pytest.raises(OSError), AtomicFile(path) as handle:
        handle.write("partial")
        raise OSError(28, "No space left on device")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_respects_umask(tmp_path):
    path = tmp_path / "out.txt"
    old = os.umask(0o022)
    try:
        with AtomicFile(path) as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
