"""course_lib.memo: content digests and answers remembered on disk under them."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from course_lib import config, memo


def test_digest_is_sha256_of_each_part_tagged_with_its_kind_and_length():
    # the format written out by hand: "<kind>:<length>:" then the payload, part after part
    by_hand = hashlib.sha256(b"text:2:ab" + b"bytes:3:\x00\x01\x02" + b"int:2:-7").hexdigest()
    assert memo.digest("ab", b"\x00\x01\x02", -7) == by_hand
    array = np.arange(3, dtype=np.int16)
    payload = b"<i2(3,)|" + array.tobytes()
    expected = hashlib.sha256(f"array:{len(payload)}:".encode() + payload).hexdigest()
    assert memo.digest(array) == expected


def test_parts_that_only_look_alike_give_different_digests():
    assert memo.digest("ab", "c") != memo.digest("a", "bc")  # the boundary is part of the key
    assert len({memo.digest(1), memo.digest("1"), memo.digest(1.0), memo.digest(True)}) == 4
    assert memo.digest(None) != memo.digest("") != memo.digest(b"")
    a = np.zeros((2, 3), np.float32)
    assert memo.digest(a) != memo.digest(a.reshape(3, 2))  # same bytes, other shape
    assert memo.digest(a) != memo.digest(a.view(np.int32))  # same bytes, other dtype
    assert memo.digest(a) == memo.digest(a.copy()) == memo.digest(np.asfortranarray(a))
    assert memo.digest(np.int64(5)) == memo.digest(5)


def test_digest_refuses_what_it_cannot_key():
    with pytest.raises(TypeError, match="got dict"):
        memo.digest({"a": 1})
    with pytest.raises(ValueError, match="at least one part"):
        memo.digest()


def test_an_array_is_computed_once_then_read_back(tmp_root):
    calls = []

    def compute():
        calls.append(1)
        return np.array([[0.25, 0.75]], np.float32)

    key = memo.digest("test", 1)
    first = memo.remembered_array("unit", key, compute)
    second = memo.remembered_array("unit", key, compute)
    assert calls == [1]
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32
    stored = config.artifacts_dir("outputs", "unit") / f"{key}.npy"
    np.testing.assert_array_equal(np.load(stored), first)  # a plain .npy file
    assert memo.is_remembered("unit", key)
    assert not memo.is_remembered("unit", memo.digest("test", 2))
    memo.remembered_array("unit", memo.digest("test", 2), compute)  # another key: computed
    assert calls == [1, 1]
    assert not list(stored.parent.glob(".*tmp*"))  # no temporary file left behind


def test_a_json_answer_is_computed_once_then_read_back(tmp_root):
    calls = []
    key = memo.digest("arena", b"model")
    for _ in range(2):
        assert memo.remembered_json("unit", key, lambda: calls.append(1) or 4_096) == 4_096
    assert calls == [1]
    path = config.artifacts_dir("outputs", "unit") / f"{key}.json"
    assert json.loads(path.read_text()) == 4_096
    assert memo.is_remembered("unit", key, ".json") and not memo.is_remembered("unit", key)


def test_bytes_are_computed_once_then_read_back(tmp_root):
    calls = []
    key = memo.digest("tflite", b"model")
    for _ in range(2):
        content = memo.remembered_bytes("unit", key, lambda: calls.append(1) or b"TFL3\x00\x01")
        assert content == b"TFL3\x00\x01" and isinstance(content, bytes)
    assert calls == [1]
    path = config.artifacts_dir("outputs", "unit") / f"{key}.bin"
    assert path.read_bytes() == b"TFL3\x00\x01"  # the raw bytes, nothing around them
    assert memo.is_remembered("unit", key, ".bin") and not memo.is_remembered("unit", key)


def test_a_failed_computation_stores_nothing(tmp_root):
    key = memo.digest("boom")

    def fail():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        memo.remembered_array("unit", key, fail)
    assert not memo.is_remembered("unit", key)
    assert list((config.artifacts_dir("outputs", "unit")).iterdir()) == []


@pytest.mark.parametrize("folder", ["", "a/b", "..", ".hidden"])
def test_bad_folders_are_refused(tmp_root, folder):
    with pytest.raises(ValueError, match="one plain folder name"):
        memo.remembered_array(folder, memo.digest(1), lambda: np.zeros(1))


@pytest.mark.parametrize("key", ["", "abc", "g" * 64, "A" * 64, "0" * 63])
def test_keys_that_are_not_digests_are_refused(tmp_root, key):
    with pytest.raises(ValueError, match="64-character hex digest"):
        memo.remembered_json("unit", key, lambda: 1)


def test_is_remembered_takes_only_its_three_suffixes(tmp_root):
    with pytest.raises(ValueError, match="suffix must be one of '.npy', '.json', '.bin'"):
        memo.is_remembered("unit", memo.digest(1), ".pkl")


def test_package_version_is_the_installed_one():
    import numpy

    assert memo.package_version("numpy") == numpy.__version__


def test_remembered_lists_every_stored_answer_by_folder_and_file(tmp_root):
    assert memo.remembered() == set()
    a, b = memo.digest("a"), memo.digest("b")
    memo.remembered_array("tflm", a, lambda: np.zeros(2))
    memo.remembered_json("other", b, lambda: 3)
    memo.remembered_bytes("tflite", a, lambda: b"x")
    assert memo.remembered() == {f"tflm/{a}.npy", f"other/{b}.json", f"tflite/{a}.bin"}
    assert memo.remembered("fast") == set()  # each mode has its own store
