"""Reading data files (:mod:`handnet.data.files`): CSVs that are malformed, hostile or large.

The CSV reader must refuse a stray quote rather than swallow the rest of the file,
keep integer labels exact beyond 2**53, refuse a gzip decompression bomb before it
fills the memory, refuse pipes, and read a large CSV in memory proportional to the
array it becomes. Memory is measured in child processes (``ru_maxrss``), the way a
user's run would see it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from handnet.data.files import (
    DataFileError,
    Dataset,
    detect_format,
    load_dataset,
    read_csv,
    read_npz,
)

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c CODE ARGS`` in a child process (same interpreter and handnet).

    The child's code may call ``reset_peak()`` and ``peak_bytes()`` (defined before
    it runs): the peak resident memory since the reset. ``ru_maxrss`` will not do:
    a child forked from a large pytest process inherits the parent's peak.
    """
    env = dict(os.environ, PYTHONIOENCODING="utf-8", **ONE_THREAD)
    return subprocess.run([sys.executable, "-c", PEAK_HELPERS + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


PEAK_HELPERS = textwrap.dedent(
    """
    def reset_peak():
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")  # resets VmHWM, the peak resident set size

    def peak_bytes():
        with open("/proc/self/status") as stream:
            for line in stream:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc/self/status")
    """
)

needs_proc_peak = pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK),
    reason="measuring peak memory needs Linux's /proc/self/clear_refs",
)


def labels_of(data: Dataset) -> NDArray[Any]:
    """The labels read (the tests read files that have them)."""
    assert data.y is not None
    return data.y


def moons_lines(n: int = 100) -> list[str]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 2))
    return ["x1,x2,label"] + [f"{a:.6f},{b:.6f},{i % 2}" for i, (a, b) in enumerate(X)]


# --- a stray quote -----------------------------------------------------------------------


def test_a_stray_quote_is_refused_with_its_line_number(tmp_path: Path) -> None:
    # Row 50 ends ',"1': the reader used to take the 51 lines after it as one field,
    # and training went on with 50 of the 100 rows and a third "class".
    lines = moons_lines(100)
    lines[50] = lines[50].rsplit(",", 1)[0] + ',"1'
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = r"stray\.csv, line 51: a quoted field runs from line 51"
    with pytest.raises(DataFileError, match=message):
        read_csv(path, target="label")


def test_a_space_after_a_closing_quote_is_read_as_before(tmp_path: Path) -> None:
    """`"cat" ,` is lenient CSV that earlier handnet read; only quotes that run on are refused."""
    path = tmp_path / "spaced.csv"
    path.write_text('x1,x2,label\n1,2,"cat" \n"3" ,4,dog\n', encoding="utf-8")
    data = read_csv(path, target="label")
    np.testing.assert_array_equal(data.X, [[1.0, 2.0], [3.0, 4.0]])
    assert sorted(str(label).strip() for label in labels_of(data)) == ["cat", "dog"]


def test_one_number_written_two_ways_is_one_label(tmp_path: Path) -> None:
    """1.5 and 1.50 (or 0.5 and 5e-1) are one class, not two classes of text."""
    path = tmp_path / "spellings.csv"
    rows = ["x,label", "0,1.5", "1,1.50", "2,2.25", "3,0.5", "4,5e-1", "5,2.25"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    labels = labels_of(read_csv(path, target="label"))
    assert labels.dtype == np.float64
    np.testing.assert_array_equal(labels, [1.5, 1.5, 2.25, 0.5, 0.5, 2.25])


def test_a_quote_that_closes_lines_later_is_refused_too(tmp_path: Path) -> None:
    # Two stray quotes: the field they enclose spans lines 4 to 6.
    lines = moons_lines(10)
    lines[3] = lines[3].rsplit(",", 1)[0] + ',"1'
    lines[5] = lines[5] + '"'
    path = tmp_path / "two.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 4: a quoted field runs from line 4 to line 6"):
        read_csv(path, target="label")


def test_quoted_fields_on_one_line_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('"a","b, c",y\n"1.5","2","cat, big"\n3,4,dog\n', encoding="utf-8")
    data = read_csv(path, target="y")
    assert data.feature_names == ["a", "b, c"]
    assert data.X.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert labels_of(data).tolist() == ["cat, big", "dog"]


# --- exact labels ------------------------------------------------------------------------


def test_integer_labels_above_2_to_the_53_stay_exact(tmp_path: Path) -> None:
    # 2**53 + 1 is not a float64: through float64 both labels became 9007199254740992.0.
    path = tmp_path / "big.csv"
    rows = [f"{i},{-i},{2**53 + i % 2}" for i in range(6)]
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    y = labels_of(read_csv(path, target="y"))
    assert y.dtype == np.int64
    assert y.tolist() == [2**53, 2**53 + 1] * 3
    assert sorted(set(y.tolist())) == [9007199254740992, 9007199254740993]


def test_labels_keep_their_kind_and_stay_distinct(tmp_path: Path) -> None:
    def labels(*cells: str) -> list[object]:
        path = tmp_path / "labels.csv"
        path.write_text("a,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells)),
                        encoding="utf-8")
        return list(labels_of(read_csv(path, target="y")).tolist())

    assert labels("1", " 2 ", "1.0", "2e0") == [1, 2, 1, 2]  # whole numbers: int64
    assert labels("0.5", "1", "0.5") == [0.5, 1.0, 0.5]  # other numbers: float64
    assert labels("cat", " dog", "cat ") == ["cat", "dog", "cat"]
    # Beyond int64: exact as text, not wrapped or rounded.
    assert labels(str(2**64), str(2**64 + 1)) == [str(2**64), str(2**64 + 1)]
    # Distinct numbers float64 cannot tell apart: kept as their text.
    assert labels("0.1", "0.10000000000000001") == ["0.1", "0.10000000000000001"]
    long = "x" * 200  # long labels: Python strings, not a NumPy array 200 characters wide
    path = tmp_path / "long.csv"
    path.write_text(f"a,y\n1,{long}\n2,b\n", encoding="utf-8")
    y = labels_of(read_csv(path, target="y"))
    assert y.dtype == object and y.tolist() == [long, "b"]


def test_npz_labels_beyond_int64_are_not_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, X=np.zeros((2, 1)), y=np.array([2.0**63, 2.0**64]))
    # Floats, not int64's minimum twice (the cast wrapped).
    assert labels_of(read_npz(path)).tolist() == [2.0**63, 2.0**64]
    np.savez(path, X=np.zeros((2, 1)), y=np.array([2**63, 2**63 + 1], dtype=np.uint64))
    assert labels_of(read_npz(path)).tolist() == [str(2**63), str(2**63 + 1)]


# --- decompression bombs and pipes -------------------------------------------------------


def write_bomb(path: Path, megabytes: int) -> Path:
    """A gzipped CSV of ``megabytes`` MiB of ``0,0,0`` rows: about 1000 to 1 compressed."""
    block = b"0,0,0\n" * (2**20 // 6)
    with gzip.open(path, "wb", compresslevel=9) as stream:
        stream.write(b"a,b,y\n")
        for _ in range(megabytes):
            stream.write(block)
    return path


@needs_proc_peak
def test_a_gzip_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.csv.gz", 150)
    assert bomb.stat().st_size < 2**20  # a few hundred KB that expand to 150 MiB
    # In a child with 1.5 GB of address space first: the old reader went past 4.7 GB.
    result = run_python(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
        from handnet.data.files import DataFileError, read_csv
        reset_peak()
        try:
            read_csv(sys.argv[1], target="y")
        except DataFileError as error:
            print("refused:", error)
        print(f"peak {peak_bytes() / 2**20:.0f} MiB")
        """,
        str(bomb),
    )
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "decompression bomb" in result.stdout
    assert "--max-expansion" in result.stdout
    # The process's whole resident set (imports included): the 64 MiB that may always
    # be decompressed are counted, never held.
    assert float(result.stdout.split("peak ")[1].split()[0]) < 150
    with pytest.raises(DataFileError, match=r"bomb\.csv\.gz: the gzip data expands to more"):
        load_dataset(bomb, target="y")


def test_the_expansion_limit_can_be_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small files are never refused, whatever their ratio (64 MiB are always allowed).
    small = write_bomb(tmp_path / "small.csv.gz", 1)
    assert read_csv(small, target="y", max_expansion=1.5).X.shape[0] == 2**20 // 6
    # With that floor lowered to 1 MiB (to keep the test small), 2 MiB of text from a
    # 2 KB file are refused at the default ratio and read with a larger one.
    monkeypatch.setattr("handnet.data.dataset.MIN_DECOMPRESSED_LIMIT", 2**20)
    bomb = write_bomb(tmp_path / "regular.csv.gz", 2)
    with pytest.raises(DataFileError, match="decompression bomb"):
        read_csv(bomb, target="y")
    assert read_csv(bomb, target="y", max_expansion=1e4).X.shape == (2 * (2**20 // 6), 2)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    # In a child: opening a FIFO with no writer blocks forever.
    result = run_python(
        """
        import sys
        from handnet.data.files import DataFileError, load_dataset
        try:
            load_dataset(sys.argv[1], target="y")
        except DataFileError as error:
            print(error)
        """,
        str(fifo), timeout=30,
    )
    assert "not a regular file" in result.stdout, result.stderr
    with pytest.raises(DataFileError, match="not a regular file"):
        detect_format(fifo)


def test_an_idx_file_with_an_unknown_type_code_is_named_as_idx(tmp_path: Path) -> None:
    """IDX's two NUL bytes, then a type byte no IDX reader knows: the error is the IDX
    reader's, naming the known codes, not a CSV parse of binary data."""
    path = tmp_path / "images.idx3-ubyte"
    path.write_bytes(b"\x00\x00\x05\x03" + (2).to_bytes(4, "big") * 3 + bytes(8))
    assert detect_format(path) == "idx"
    labels = tmp_path / "labels.idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes(2))
    with pytest.raises(DataFileError, match=r"unknown IDX type code 0x05; known codes: 0x08"):
        load_dataset(path, labels=labels)
    # UTF-32's byte-order mark also starts with two NUL bytes: not taken for IDX.
    text = tmp_path / "utf32.csv"
    text.write_bytes("a,b\n1,2\n".encode("utf-32-be").join([b"\x00\x00\xfe\xff", b""]))
    assert detect_format(text) == "csv"


# --- memory and time on a large CSV ------------------------------------------------------


@needs_proc_peak
def test_a_large_csv_is_read_in_memory_proportional_to_its_array(tmp_path: Path) -> None:
    # About 15.7 MB: 160,000 rows of 10 features and a label. The old reader (a list of
    # every row's strings, then a NumPy string array) peaked 250 MiB above its start, 20
    # times the 12.2 MiB array; block by block it is about 2.5 times.
    path = tmp_path / "large.csv"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160_000, 10))
    labels = np.array(["c0", "c1", "c2"])[rng.integers(0, 3, 160_000)]
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(",".join([f"x{i}" for i in range(10)] + ["label"]) + "\n")
        for start in range(0, len(X), 10_000):
            block = X[start:start + 10_000]
            stream.writelines(",".join(f"{v:.6f}" for v in row) + f",{label}\n"
                              for row, label in zip(block, labels[start:start + 10_000],
                                                    strict=True))
    assert 14e6 < path.stat().st_size < 17e6
    result = run_python(
        """
        import json, sys, time
        from handnet.data.files import read_csv
        reset_peak()
        with open("/proc/self/status") as stream:
            before = next(int(line.split()[1]) * 1024 for line in stream
                          if line.startswith("VmRSS:"))
        start = time.perf_counter()
        data = read_csv(sys.argv[1], target="label")
        seconds = time.perf_counter() - start
        print(json.dumps({"shape": data.X.shape, "nbytes": data.X.nbytes,
                          "grown": peak_bytes() - before, "seconds": seconds}))
        """,
        str(path),
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["shape"] == [160_000, 10]
    # At most three times the array, plus the block of rows being parsed.
    assert measured["grown"] < 3 * measured["nbytes"] + 24 * 2**20, measured


# --- files as people have them: no header, positions, decimal commas, text, gaps ------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_first_row_of_numbers_is_not_taken_for_a_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "wine.csv", "1,14.23,1.71\n2,13.2,1.78\n1,13.16,2.36\n")
    with pytest.raises(DataFileError, match=r"the first row \(1, 14\.23, 1\.71\) looks like "
                       r"data.*pass --no-header.*--target 2 is the last of its 3 columns"):
        read_csv(path, target="0")
    data = read_csv(path, target="0", header=False)
    assert data.X.shape == (3, 2) and data.y.tolist() == [1, 2, 1]  # every row, none lost
    assert data.feature_names == ["1", "2"] and data.file_columns == ["0", "1", "2"]
    assert not data.header
    named = read_csv(path, target="c", header=False, names=["c", "a", "b"])
    assert named.feature_names == ["a", "b"]
    # A header of whole numbers can be forced; it is not refused when it holds names too.
    years = _write(tmp_path / "years.csv", "2023,2024,y\n1,2,0\n3,4,1\n")
    assert read_csv(years, target="y").feature_names == ["2023", "2024"]


def test_columns_by_position_drop_id_and_did_you_mean(tmp_path: Path) -> None:
    path = _write(tmp_path / "ids.csv", "id,a,b,target\nr1,1,2,0\nr2,3,4,1\n")
    data = read_csv(path, target="3", id_column="id", drop=["b"])
    assert data.feature_names == ["a"] and data.ids.tolist() == ["r1", "r2"]
    assert read_csv(path, target="target", features=["2", "a"], id_column="0").feature_names == [
        "b", "a"]
    with pytest.raises(DataFileError, match=r"no target column 'Target'.*did you mean 'target'\?"):
        read_csv(path, target="Target")
    with pytest.raises(DataFileError, match=r"no target column '7': the file has 4 columns"):
        read_csv(path, target="7")
    with pytest.raises(DataFileError, match=r"'target' cannot be both a feature and the target"):
        read_csv(path, target="target", features=["a", "target"], id_column="id")


def test_decimal_commas_are_named_and_read_with_decimal_comma(tmp_path: Path) -> None:
    path = _write(tmp_path / "comma.csv", "x;y;t\n14,23;1,5;1\n2,1;3;0\n")
    with pytest.raises(DataFileError, match=r"'14,23' is not a number; it is written with a "
                       r"decimal comma: pass --decimal ,"):
        read_csv(path, target="t")
    data = read_csv(path, target="t", decimal=",")
    assert data.X.tolist() == [[14.23, 1.5], [2.1, 3.0]]
    # Without a header the ';' is still found, though ',' splits the first line more.
    headerless = _write(tmp_path / "nohead.csv", "14,23;1,5;1\n2,1;3;0\n")
    assert read_csv(headerless, target="2", header=False, decimal=",").X.shape == (2, 2)


def test_text_mode_keeps_missing_cells_and_text_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "messy.csv",
                  "a,colour,b,y\n1,red,NA,0\n,blue,2.5,1\n3,,?,0\n4,red,1,1\n")
    with pytest.raises(DataFileError, match=r"line 2, column 'colour': 'red' is not a number"):
        read_csv(path, target="y")
    data = read_csv(path, target="y", text=True)
    assert np.isnan(data.X[1, 0]) and np.isnan(data.X[:, 1]).all()
    assert data.text_columns["colour"].tolist() == ["red", "blue", None, "red"]
    assert data.missing_lines == {"a": 3, "b": 2}
    # A number column with one stray word is a typo, not a text column.
    typo = _write(tmp_path / "typo.csv", "a,y\n1,0\n2,1\nx,0\n4,1\n")
    with pytest.raises(DataFileError, match=r"line 4, column 'a': 'x' is not a number"):
        read_csv(typo, target="y", text=True)


def test_a_text_column_first_seen_in_a_later_block_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handnet.data import csv_reader

    monkeypatch.setattr(csv_reader, "_CHUNK_ROWS", 2)
    path = _write(tmp_path / "late.csv", "a,b,y\n1,2,0\n3,4,1\n5,cat,0\n6,dog,1\n7,cow,0\n")
    data = read_csv(path, target="y", text=True)
    assert data.text_columns["b"].tolist() == ["2", "4", "cat", "dog", "cow"]
    assert data.X[:, 0].tolist() == [1, 3, 5, 6, 7]
