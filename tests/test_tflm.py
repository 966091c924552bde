"""course_lib.tflm: TFLM runs, arena search, C arrays; checked against LiteRT and TFLM itself."""

from __future__ import annotations

import re

import numpy as np
import pytest

from course_lib import tflite, tflm

pytest.importorskip(
    "tflite_micro",
    reason="tflite-micro publishes wheels for Linux x86-64 only; the TFLM tests need it",
)


@pytest.fixture(scope="module")
def int8_file(tiny_model, tiny_data) -> bytes:
    return tflite.convert(tiny_model, "int8", representative_data=tiny_data.x_train[:200])


def test_tflm_predicts_what_litert_predicts(int8_file, tiny_data):
    micro = tflm.MicroModel(int8_file)
    lite = tflite.LiteModel(int8_file)
    x, y = tiny_data.x_test, tiny_data.y_test
    ours, theirs = micro.predict(x), lite.predict(x)
    assert ours.shape == theirs.shape == (len(x), 10) and ours.dtype == np.float32
    # two int8 implementations (TFLM's reference kernels, LiteRT's XNNPACK) of the same
    # arithmetic: most outputs identical, none more than two output steps (2/256) apart
    step = lite.output_quantization[0]
    assert np.mean(ours == theirs) >= 0.9
    assert np.max(np.abs(ours - theirs)) <= 2 * step + 1e-7
    assert tflm.prediction_agreement(ours, theirs) >= 0.99
    assert micro.evaluate(x, y) == pytest.approx(lite.evaluate(x, y), abs=0.01)
    with pytest.raises(ValueError, match="differ in length"):
        micro.evaluate(x, y[:-1])
    with pytest.raises(ValueError, match="shape"):
        micro.predict(x[:, :27])


def test_min_arena_is_what_tflm_itself_counts_and_exact_to_16_bytes(int8_file):
    arena = tflm.min_arena_bytes(int8_file)
    report = tflm.MicroModel(int8_file).allocation_report()
    total = int(re.search(r"Arena allocation total (\d+) bytes", report).group(1))
    assert arena == total  # TFLM's RecordingMicroAllocator, an independent count
    assert arena % tflm.ARENA_ALIGNMENT == 0
    assert tflm.allocates(int8_file, arena) and not tflm.allocates(int8_file, arena - 16)
    micro = tflm.MicroModel(int8_file, arena)  # runs in exactly that arena
    assert micro.predict(np.zeros((1, 28, 28, 1), np.float32)).shape == (1, 10)
    with pytest.raises(tflm.MicroRuntimeError, match=rf"{arena - 16:,}-byte arena.*allocate"):
        tflm.MicroModel(int8_file, arena - 16)


def test_tflm_refuses_dynamic_range_and_float16_with_its_reason(tiny_model, monkeypatch):
    dynamic = tflite.convert(tiny_model, "dynamic")
    with pytest.raises(tflm.MicroRuntimeError, match="FLOAT32 with filter type: INT8 not supp"):
        tflm.MicroModel(dynamic)
    float16 = tflite.convert(tiny_model, "float16")
    with pytest.raises(tflm.MicroRuntimeError, match="DEQUANTIZE"):
        tflm.MicroModel(float16)
    monkeypatch.setattr(tflm, "MAX_ARENA_BYTES", 4096)  # the search gives up quickly
    with pytest.raises(tflm.MicroRuntimeError, match="even with a 4,096-byte arena.*not supp"):
        tflm.min_arena_bytes(dynamic)


def test_bad_arguments_are_refused(int8_file):
    for bad in (0, -16):
        with pytest.raises(ValueError, match="arena_bytes must be >= 1"):
            tflm.MicroModel(int8_file, bad)
        with pytest.raises(ValueError, match="arena_bytes must be >= 1"):
            tflm.allocates(int8_file, bad)
    with pytest.raises(ValueError, match="step must be >= 1"):
        tflm.min_arena_bytes(int8_file, step=0)


def test_c_array_holds_every_byte_aligned_and_named(int8_file):
    source = tflm.c_array(int8_file, "g_model", per_line=10)
    lines = source.splitlines()
    assert lines[1] == "alignas(16) const unsigned char g_model[] = {"
    assert lines[-1] == f"const unsigned int g_model_len = {len(int8_file)};"
    assert f"{len(int8_file):,} bytes" in lines[0] and source.endswith(";\n")
    body = lines[2:-2]
    assert lines[-2] == "};" and len(body) == -(-len(int8_file) // 10)
    assert all(len(row.split()) == 10 for row in body[:-1])
    parsed = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2}),", source))
    assert parsed == int8_file
    tiny = tflm.c_array(b"\x1c\x00\x00\x00TFL3" + bytes(8), "m")  # a hand-checked one
    assert "  0x1c, 0x00, 0x00, 0x00, 0x54, 0x46, 0x4c, 0x33, 0x00, 0x00, 0x00, 0x00," in tiny


@pytest.mark.parametrize("name", ["", "2model", "my-model", "model name", "a.b"])
def test_c_array_refuses_names_c_cannot_take(int8_file, name):
    with pytest.raises(ValueError, match="not a C identifier"):
        tflm.c_array(int8_file, name)


def test_c_array_needs_a_positive_line_length(int8_file):
    with pytest.raises(ValueError, match="per_line must be >= 1"):
        tflm.c_array(int8_file, "m", per_line=0)


def test_prediction_agreement_counts_the_same_top_class():
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    b = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.0, 1.0]])
    assert tflm.prediction_agreement(a, b) == 0.75  # rows 1, 2 and 4 agree
    with pytest.raises(ValueError, match="same, non-empty shape"):
        tflm.prediction_agreement(a, b[:3])
    with pytest.raises(ValueError, match="same, non-empty shape"):
        tflm.prediction_agreement(np.empty((0, 2)), np.empty((0, 2)))


def _board(flash_kib, ram_kib):
    return tflm.Board("test board", "test chip", flash_kib * 1024, ram_kib * 1024, "a test")


def test_a_model_fits_when_flash_and_ram_both_keep_the_reserve():
    board = _board(256, 32)  # 25 % reserve: 192 KiB of flash and 24 KiB of RAM usable
    assert tflm.fits(board, 192 * 1024, 24 * 1024)  # exactly at both limits
    assert not tflm.fits(board, 192 * 1024 + 1, 24 * 1024)  # flash one byte over
    assert not tflm.fits(board, 192 * 1024, 24 * 1024 + 1)  # RAM one byte over
    assert tflm.fits(board, 250 * 1024, 30 * 1024, reserve=0.0)
    assert not tflm.fits(board, 250 * 1024, 30 * 1024)
    assert tflm.fits(board, 128 * 1024, 16 * 1024, reserve=0.5)
    assert not tflm.fits(board, 128 * 1024 + 1, 16 * 1024, reserve=0.5)
    for reserve in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"reserve must be a fraction in \[0, 1\)"):
            tflm.fits(board, 1, 1, reserve)
    for sizes in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match="sizes must be >= 1 byte"):
            tflm.fits(board, *sizes)


def test_the_boards_name_their_documented_memory():
    assert len(tflm.BOARDS) >= 3
    for board in tflm.BOARDS:
        assert board.flash_bytes % 1024 == 0 and board.ram_bytes % 1024 == 0
        assert board.flash_bytes > board.ram_bytes  # every one of them: more flash than RAM
        # the source quotes the RAM size it documents, in its own words
        assert str(board.ram_bytes // 1024) in board.source, board.name
    assert 0 < tflm.RESERVE < 1


def test_a_model_with_its_weights_after_the_flatbuffer_is_refused_not_run_wrong(
    tiny_model, tiny_data
):
    from tflite_micro.python.tflite_micro import runtime

    converter = tflite.tf.lite.TFLiteConverter.from_keras_model(tiny_model)
    converter._experimental_use_buffer_offset = True
    content = converter.convert()
    assert tflite.offset_buffers(content)
    # what the guard prevents: TFLM prepares the file, runs it without an error, and its
    # answers have nothing to do with the ones LiteRT (which reads the weights) gives
    raw = runtime.Interpreter.from_bytes(content, arena_size=tflm.DEFAULT_ARENA_BYTES)
    x = tiny_data.x_test[:100]
    answers = []
    for image in x:
        raw.set_input(image[None], 0)
        raw.invoke()
        answers.append(int(np.argmax(raw.get_output(0))))
    lite = tflite.LiteModel(content).predict(x).argmax(1)
    assert np.mean(np.array(answers) == lite) < 0.5
    assert np.mean(lite == tiny_data.y_test[:100]) > 0.7  # the file itself is fine
    for call in (tflm.MicroModel, tflm.min_arena_bytes):
        with pytest.raises(tflm.MicroRuntimeError, match="stored after the flatbuffer"):
            call(content)


def test_a_guess_speeds_the_arena_search_up_and_never_changes_its_answer(int8_file, monkeypatch):
    tries = []
    probe = tflm._probe
    monkeypatch.setattr(tflm, "_probe", lambda path, n: tries.append(n) or probe(path, n))
    exact = tflm.min_arena_bytes(int8_file)
    assert len(tries) > 10  # without a guess: doubling from 16 bytes, then bisection
    micro = tflm.MicroModel(int8_file)
    assert micro.recorded_arena_bytes() == exact  # TFLM's own count, for this model
    tries.clear()
    assert tflm.min_arena_bytes(int8_file, guess=exact) == exact
    assert tries == [exact, exact - 16]  # an exact guess: one success, one failure
    for guess in (1, exact - 17, exact + 40_000):  # far below, just below, far above
        tries.clear()
        assert tflm.min_arena_bytes(int8_file, guess=guess) == exact, guess
        assert all(n % 16 == 0 and 0 < n <= tflm.MAX_ARENA_BYTES for n in tries)


def test_predict_many_gives_each_models_own_outputs(int8_file, tiny_model, tiny_data):
    other = tflite.convert(  # other calibration images: other scales, other outputs
        tiny_model, "int8", representative_data=tiny_data.x_train[300:320], num_calibration=20
    )
    x = tiny_data.x_test[:60]
    found = tflm.predict_many([int8_file, other, other], x, processes=2)
    expected = [tflm.MicroModel(m).predict(x) for m in (int8_file, other, other)]
    assert len(found) == 3
    for got, want in zip(found, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(found[0], found[1])  # the order is kept: model i -> output i
    assert tflm.predict_many([], x) == []
    with pytest.raises(ValueError, match="processes must be >= 1"):
        tflm.predict_many([int8_file], x, processes=0)


def test_cache_gives_the_same_answers_and_runs_only_what_changed(
    int8_file, tiny_model, tiny_data, tmp_root, monkeypatch
):
    other = tflite.convert(
        tiny_model, "int8", representative_data=tiny_data.x_train[300:320], num_calibration=20
    )
    x = tiny_data.x_test[:40]
    want = [tflm.MicroModel(m).predict(x) for m in (int8_file, other)]
    # TFLM's own count, which the search matches exactly (the test above checks that), so
    # this test need not search without the cache first
    exact = tflm.MicroModel(int8_file).recorded_arena_bytes()
    found = tflm.predict_many([int8_file, other], x, processes=1, cache=True)
    assert tflm.min_arena_bytes(int8_file, guess=exact, cache=True) == exact
    for got, expected in zip(found, want, strict=True):
        np.testing.assert_array_equal(got, expected)

    def no_run(*args, **kwargs):
        raise AssertionError("ran TFLM although the answer was stored")

    monkeypatch.setattr(tflm, "ProcessPoolExecutor", no_run)
    monkeypatch.setattr(tflm, "_probe", no_run)
    again = tflm.predict_many([other, int8_file], x, cache=True)  # any order: keyed by content
    np.testing.assert_array_equal(again[0], want[1])
    np.testing.assert_array_equal(again[1], want[0])
    # a guess is no key: stored after a search from the exact guess, read back for another
    assert tflm.min_arena_bytes(int8_file, guess=1, cache=True) == exact
    assert tflm.min_arena_bytes(int8_file, cache=True) == exact
    # other images, another arena, another step, another TFLM version: computed again
    for changed in (
        lambda: tflm.predict_many([int8_file], x[:39], cache=True),
        lambda: tflm.predict_many([int8_file], x, arena_bytes=1 << 19, cache=True),
        lambda: tflm.min_arena_bytes(int8_file, step=32, cache=True),
    ):
        with pytest.raises(AssertionError, match="ran TFLM"):
            changed()
    monkeypatch.setattr(tflm.memo, "package_version", lambda name: "0.other")
    with pytest.raises(AssertionError, match="ran TFLM"):
        tflm.predict_many([int8_file], x, cache=True)
    with pytest.raises(AssertionError, match="ran TFLM"):
        tflm.min_arena_bytes(int8_file, cache=True)


def test_micro_model_remembers_its_probe_only_with_cache(int8_file, tmp_root, monkeypatch):
    tries = []
    probe = tflm._probe
    monkeypatch.setattr(tflm, "_probe", lambda path, n: tries.append(n) or probe(path, n))
    tflm.MicroModel(int8_file)
    tflm.MicroModel(int8_file)
    assert len(tries) == 2  # without cache: a probe every time
    tries.clear()
    first = tflm.MicroModel(int8_file, cache=True)
    again = tflm.MicroModel(int8_file, cache=True)
    assert tries == [tflm.DEFAULT_ARENA_BYTES]  # read back the second time
    x = np.zeros((2, *first.reference.input_shape[1:]), np.float32)
    np.testing.assert_array_equal(first.predict(x), again.predict(x))
    tflm.MicroModel(int8_file, 2 * tflm.DEFAULT_ARENA_BYTES, cache=True)  # another arena
    assert tries == [tflm.DEFAULT_ARENA_BYTES, 2 * tflm.DEFAULT_ARENA_BYTES]
    # a refusal is remembered with TFLM's words, and raised again without a new probe
    for _ in range(2):
        with pytest.raises(tflm.MicroRuntimeError, match="16-byte arena: .+"):
            tflm.MicroModel(int8_file, 16, cache=True)
    assert tries[2:] == [16]
