"""The pool of large host arrays (fastrnn._memory): reuse, safety, bounds."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import _memory

LARGE = (64, 1024)   # 256 KiB of float32: pooled


@pytest.fixture(autouse=True)
def empty_pool():
    _memory.release()
    yield
    _memory.release()


def test_block_is_reused_once_every_array_is_gone():
    a = _memory.empty(LARGE, np.float32)
    address = a.ctypes.data
    del a
    assert _memory.idle_bytes() > 0
    b = _memory.empty(LARGE, np.float32)
    assert b.ctypes.data == address
    assert _memory.idle_bytes() == 0


def test_block_is_not_reused_while_a_view_lives():
    a = _memory.empty(LARGE, np.float32)
    a[...] = 7.0
    view = a[3:5, ::2]
    del a
    assert _memory.idle_bytes() == 0
    b = _memory.empty(LARGE, np.float32)
    b[...] = -1.0
    assert (view == 7.0).all()
    del view
    assert _memory.idle_bytes() > 0


def test_arrays_are_aligned_writable_and_contiguous():
    a = _memory.empty((3, 50, 1000), np.float64)
    assert a.shape == (3, 50, 1000) and a.dtype == np.float64
    assert a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % 64 == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_weight_panels_start_on_32_bytes(dtype):
    from fastrnn.kernels.cpu._strips import packed_panel
    rng = np.random.default_rng(0)
    for rows, cols in ((128, 32), (128, 41), (96, 7), (1024, 256), (0, 5)):
        matrix = rng.standard_normal((rows, cols)).astype(dtype)
        panels = [packed_panel(matrix, transpose=True), packed_panel(matrix.T.copy())]
        for panel in panels + [packed_panel(matrix, transpose=True) for _ in range(6)]:
            assert panel.ctypes.data % 32 == 0 and panel.flags.c_contiguous


def test_zeros_are_zero_on_a_reused_block():
    a = _memory.empty(LARGE, np.float32)
    a[...] = np.nan
    del a
    z = _memory.zeros(LARGE, np.float32)
    assert not z.any()


def test_small_arrays_are_plain_numpy():
    small = _memory.empty((4, 4), np.float32)
    assert small.base is None
    del small
    assert _memory.idle_bytes() == 0


def test_idle_bytes_stay_under_the_bound(monkeypatch):
    one = _memory.block_bytes(np.prod(LARGE) * 4)
    monkeypatch.setattr(fr.config, "POOL_BYTES", 2 * one)
    arrays = [_memory.empty(LARGE, np.float32) for _ in range(5)]
    del arrays
    assert _memory.idle_bytes() == 2 * one


def test_zero_bound_turns_the_pool_off(monkeypatch):
    monkeypatch.setattr(fr.config, "POOL_BYTES", 0)
    a = _memory.empty(LARGE, np.float32)
    assert a.base is None


def test_freeing_while_the_pool_is_locked_does_not_wait():
    a = _memory.empty(LARGE, np.float32)
    done = threading.Event()

    def drop():
        nonlocal a
        del a
        done.set()

    with _memory._locked:
        drop()                     # the finaliser runs here, under the lock
        assert done.is_set()
    assert _memory.idle_bytes() == 0   # the block was freed, not kept


def test_a_block_freed_while_another_thread_holds_the_lock_is_kept():
    arrays = [_memory.empty(LARGE, np.float32)]
    holding, let_go = threading.Event(), threading.Event()

    def hold():
        with _memory._locked:
            holding.set()
            let_go.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    dropper = threading.Thread(target=arrays.clear)   # the finaliser runs there
    dropper.start()
    dropper.join(0.2)
    assert dropper.is_alive()          # it waits for the lock instead of freeing
    let_go.set()
    holder.join(10)
    dropper.join(10)
    assert _memory.idle_bytes() == _memory.block_bytes(np.prod(LARGE) * 4)


def test_lowering_the_bound_frees_idle_blocks(monkeypatch):
    arrays = [_memory.empty(LARGE, np.float32) for _ in range(4)]
    del arrays
    one = _memory.block_bytes(np.prod(LARGE) * 4)
    assert _memory.idle_bytes() == 4 * one
    monkeypatch.setattr(fr.config, "POOL_BYTES", one)
    kept = _memory.empty(LARGE, np.float32)
    assert _memory.idle_bytes() == 0    # trimmed to one block, which was then taken
    del kept
    assert _memory.idle_bytes() == one
    monkeypatch.setattr(fr.config, "POOL_BYTES", 0)
    assert _memory.empty(LARGE, np.float32).base is None
    assert _memory.idle_bytes() == 0


def test_power_of_two_arrays_take_a_block_of_their_own_class():
    assert _memory.block_bytes(2 ** 20) == 2 ** 20 + 64
    a = _memory.empty((2 ** 18,), np.float32)
    del a
    assert _memory.idle_bytes() == 2 ** 20 + 64


def test_arrays_alive_at_interpreter_exit_print_nothing():
    program = ("import numba, numpy as np\n"
               "from fastrnn import _memory\n"
               "f = numba.njit(lambda x: x.sum())\n"
               "f(np.ones(3))\n"
               "kept = _memory.zeros((64, 1024), np.float32)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True)
    assert result.stderr == ""


@pytest.mark.parametrize("nbytes", [1, 4095, 4096, 4097, 100_000, 131_072, 5_000_001, 2 ** 30 + 1])
def test_size_class_bounds(nbytes):
    size = _memory.size_class(nbytes)
    assert nbytes <= size < nbytes + max(4096, nbytes // 8 + 1)
    assert _memory.size_class(size) == size


def test_outputs_kept_by_the_caller_are_never_overwritten():
    layer = fr.LSTM(8, 64, seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((40, 16, 8)).astype(np.float32) for _ in range(2))
    y1, _, tape = layer.forward(x1)
    y1_kept = y1.copy()
    dx1 = layer.backward(tape, np.ones_like(y1))[0]
    dx1_kept = dx1.copy()
    for _ in range(3):
        y2, _, tape2 = layer.forward(x2)
        layer.backward(tape2, np.ones_like(y2))
        del y2, tape2
    np.testing.assert_array_equal(y1, y1_kept)
    np.testing.assert_array_equal(dx1, dx1_kept)


@pytest.mark.parametrize("kind, options", [("LSTM", {}), ("GRU", {}), ("RNN", {}),
                                           ("LSTM", {"bidirectional": True, "num_layers": 2})])
def test_outputs_on_a_reused_block_hold_no_stale_values(kind, options):
    """Full-length batches take an uninitialised pooled block for the output (every step
    is written); padded ones still get zeros past their lengths. Both on a block
    poisoned with NaN."""
    layer = getattr(fr, kind)(8, 64, seed=0, **options)
    x = np.random.default_rng(0).standard_normal((40, 16, 8)).astype(np.float32)
    want_full = layer(x)[0].copy()
    lengths = np.arange(16) % 40 + 25
    want_padded = layer(x, lengths=lengths)[0].copy()
    for lengths_arg, want in ((None, want_full), (lengths, want_padded)):
        _memory.release()
        poison = [_memory.empty(want.shape, np.float32) for _ in range(4)]
        for block in poison:
            block.fill(np.nan)
        del poison, block
        got = layer(x, lengths=lengths_arg)[0]
        np.testing.assert_array_equal(got, want)


def test_a_training_loop_reuses_its_tapes():
    layer = fr.LSTM(8, 64, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 16, 8)).astype(np.float32)
    y, _, tape = layer.forward(x)
    layer.backward(tape, np.ones_like(y))
    del y, tape
    idle = _memory.idle_bytes()
    assert idle > 0
    for _ in range(3):
        y, _, tape = layer.forward(x)
        layer.backward(tape, np.ones_like(y))
        del y, tape
        assert _memory.idle_bytes() == idle


def test_threads_never_share_a_live_block():
    """Four threads allocate, fill, check and drop pooled arrays at once: a block handed
    to two live arrays would show the other thread's values."""
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for step in range(200):
            shape = (int(rng.choice([40, 64, 90])), 1024)
            arrays = [_memory.empty(shape, np.float32) for _ in range(3)]
            for n, a in enumerate(arrays):
                a.fill(seed * 1000 + step * 3 + n)
            for n, a in enumerate(arrays):
                if not (a == seed * 1000 + step * 3 + n).all():
                    errors.append((seed, step, n))
            del arrays

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _memory.idle_bytes() <= fr.config.POOL_BYTES


def test_a_malformed_size_in_the_environment_is_named():
    env = dict(os.environ, FASTRNN_POOL_BYTES="256M")
    result = subprocess.run([sys.executable, "-c", "import fastrnn"], env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "FASTRNN_POOL_BYTES must be a whole number" in result.stderr
    assert "'256M'" in result.stderr


GIB = 1 << 30


@pytest.mark.parametrize("physical, cgroup, expected", [
    (24 * GIB, None, 24 * GIB // 16),          # a sixteenth of the machine
    (64 * GIB, 8 * GIB, 8 * GIB // 16),        # a lower cgroup limit wins
    (8 * GIB, 64 * GIB, 8 * GIB // 16),        # a higher one does not
    (2 * GIB, None, 256 << 20),                # never below 256 MiB
    (512 * GIB, None, 4 * GIB),                # nor above 4 GiB
    (None, None, 256 << 20),                   # unknown: 256 MiB
])
def test_the_default_pool_is_a_sixteenth_of_the_memory_within_bounds(physical, cgroup, expected):
    assert fr.config.default_pool_bytes(physical, cgroup) == expected


def test_the_cgroup_limit_is_read_from_the_first_file_that_exists(tmp_path):
    limited, unlimited = tmp_path / "limited", tmp_path / "unlimited"
    limited.write_text("4294967296\n")
    unlimited.write_text("max\n")
    missing = str(tmp_path / "missing")
    assert fr.config._cgroup_memory_limit((missing, str(limited))) == 4 * GIB
    assert fr.config._cgroup_memory_limit((str(unlimited), str(limited))) is None
    assert fr.config._cgroup_memory_limit((missing,)) is None


def test_the_pool_bound_is_the_default_unless_the_environment_sets_it():
    code = ("import fastrnn as fr; c = fr.config; "
            "print(c.POOL_BYTES == c.default_pool_bytes(c._physical_memory(), "
            "c._cgroup_memory_limit()), c.POOL_BYTES)")
    env = {k: v for k, v in os.environ.items() if k != "FASTRNN_POOL_BYTES"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
    assert default[0] == "True"
    assert 256 << 20 <= int(default[1]) <= 4 * GIB
    env["FASTRNN_POOL_BYTES"] = "1234567"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    assert chosen == ["False", "1234567"]
