"""The container of a model file: a ZIP archive of a JSON description and ``.npy`` arrays.

What a file may hold (``FORMAT``, ``FORMAT_VERSION``, the limits ``MAX_*`` that
keep a hostile file from exhausting memory or the stack, the dtypes an array may
have), writing the archive (:func:`_write_archive`), and reading it back
(:func:`_read_archive`): only a regular file, its structure, member sizes, JSON
size and depth, both checksums and every array's header checked before anything
is decompressed or allocated. Also what every check of a file's content shares:
the error a problem becomes (:class:`_Invalid`, :func:`_require`, :func:`_bad`)
and the predicates on JSON values (:func:`_is_int`, :func:`_is_number`,
:func:`_check_keys`).

The format
----------
A model file is a ZIP archive (a NumPy ``.npz``: ``numpy.load`` opens it) of
uncompressed members:

``handnet.json``
    UTF-8 JSON, at most 1 MiB, nested at most 32 deep::

        {"format": "handnet-model", "format_version": 1,
         "content_sha256": "<hex SHA-256 of the content, serialised canonically>",
         "content": {...}}

    ``content`` holds

    * ``type``: ``"Sequential"`` or the model's class name, ``handnet_version``;
    * ``network``: ``dtype`` (``"float32"``/``"float64"``), ``layers`` (each
      layer's ``config()``, e.g. ``{"type": "Dense", "n_inputs": 4, "n_outputs": 8}``)
      , ``parameters`` (a reference to the flat parameter vector) and, for networks
      whose layers keep non-trained state, ``buffers`` (per layer, its
      :meth:`~handnet.nn.layers.Layer.buffers` by name; the layer checks them on load);
    * for a model: ``params`` (the hyperparameters of ``get_params``; tuples,
      dicts, and optimizer / schedule objects as tagged objects such as
      ``{"$optimizer": "Adam", "settings": {"learning_rate": 0.001, ...}}``),
      ``dropped_params`` (hyperparameters that cannot be written, e.g. a
      ``Generator`` as ``random_state``: they load as their defaults),
      ``fitted`` (``classes_``, ``n_features_in_``, ``feature_names_in_``,
      ``loss_curve_``, ``n_iter_``, ...), ``training`` (the trainer's
      :meth:`~handnet.training.Trainer.state_dict`: optimizer, schedule and
      generator state, epoch, history, early-stopping counters, where an
      interrupted epoch stopped; or ``null``) and ``run`` (the early-stopping
      split and a fingerprint of the training data, for ``resume``);
    * ``arrays``: ``{name: {"dtype": "<f8", "shape": [n], "sha256": "<hex>"}}``,
      one entry per array member.

    An array appears in the content as ``{"$array": name}``. A list of more than
    :data:`MAX_INLINE_FLOATS` floats (a long run's loss curve and history) is
    stored as a float64 array and appears as ``{"$floats": name}``: it reads back
    as the same list, and the description stays small however long the run.

``<name>.npy``
    One NumPy ``.npy`` (format 1.0 or 2.0, C order, little-endian, numeric dtypes
    only) per array: ``parameters`` and, as needed, ``classes`` (numeric labels;
    other labels are JSON), optimizer moments, best parameters, L-BFGS memory, an
    interrupted epoch's row order, the early-stopping split.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import IO, Any, Union

import numpy as np
from numpy.typing import NDArray

from ..base import ESTIMATORS
from ..exceptions import ModelFileError

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "handnet-model"
FORMAT_VERSION = 1
DESCRIPTION_MEMBER = "handnet.json"

#: Limits that keep a hostile file from exhausting memory or the stack.
MAX_DESCRIPTION_BYTES = 1 << 20
#: Lists of more floats than this go to an array member (``{"$floats": name}``), not
#: into the JSON: one float per epoch in each of the history's lists would otherwise
#: fill :data:`MAX_DESCRIPTION_BYTES` after some ten thousand epochs.
MAX_INLINE_FLOATS = 64
MAX_JSON_DEPTH = 32
MAX_MEMBERS = 256
#: The most bytes one member's central-directory entry may take (46 fixed, then its
#: name, extra fields and comment): handnet's are under 300.
MAX_DIRECTORY_ENTRY = 2048
MAX_LAYERS = 1000
#: The longest string an optimizer's or schedule's setting may hold in a file.
MAX_SETTING_LENGTH = 256
MAX_LAYER_WIDTH = 1 << 31
#: A member may expand (DEFLATE) at most this much relative to the whole file;
#: handnet writes uncompressed members, whose size equals their stored size.
MAX_EXPANSION = 64
_NPY_MAX_HEADER = 10_000

#: The estimators model files may name (:data:`handnet.base.ESTIMATORS`, which the
#: models register themselves into: this module does not import them).
MODEL_TYPES = ESTIMATORS

#: The dtypes an array member may have (as ``dtype.str``, little-endian).
ARRAY_DTYPES = frozenset(
    {"<f4", "<f8", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8", "|b1", "|i1", "|u1"}
)
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- errors -------------------------------------------------------------------------------


def _bad(path: str, problem: str) -> ModelFileError:
    return ModelFileError(f"{path!r} is not a valid handnet model file: {problem}")


class _Invalid(Exception):
    """A problem found while checking a file's content (turned into ModelFileError)."""


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise _Invalid(problem)


# --- JSON ---------------------------------------------------------------------------------


def _canonical_json(value: Any) -> bytes:
    """The one serialisation the checksum is computed over (sorted keys, no spaces)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
    ).encode("ascii")


def _json_depth_ok(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays/objects at most ``limit`` deep (strings skipped).

    Checked before parsing so that a deeply nested document cannot exhaust the
    parser's recursion.
    """
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Invalid(f"the description repeats the key {key!r}")
        result[key] = value
    return result


def _is_int(value: Any, low: int = 0, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def _is_number(value: Any, finite: bool = True) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (not finite or math.isfinite(value))
    )


def _check_keys(
    value: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> None:
    _require(isinstance(value, dict), f"{where} must be an object")
    keys = set(value)
    missing = sorted(required - keys)
    extra = sorted(keys - required - set(optional))
    _require(not missing, f"{where} lacks {missing}")
    _require(not extra, f"{where} has unknown entries {extra}")


# --- writing ------------------------------------------------------------------------------


def _little_endian(array: NDArray[Any]) -> NDArray[Any]:
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder not in "|" else array.dtype
    # np.require, not np.ascontiguousarray, which makes a 0-d array 1-d.
    return np.require(array, dtype=dtype, requirements="C")


def _write_member(archive: zipfile.ZipFile, name: str, array: NDArray[Any]) -> None:
    """One ``.npy`` member, streamed into the archive (no copy of the data in memory)."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    big = array.nbytes + _NPY_MAX_HEADER > zipfile.ZIP64_LIMIT
    with archive.open(info, "w", force_zip64=big) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def _write_archive(
    stream: IO[bytes], content: dict[str, Any], arrays: Mapping[str, NDArray[Any]]
) -> None:
    content, arrays = _floats_to_arrays(content, arrays)
    table = {}
    prepared = {}
    for name, array in arrays.items():
        data = _little_endian(np.asarray(array))
        if data.dtype.str not in ARRAY_DTYPES:
            raise TypeError(
                f"array {name!r} has dtype {data.dtype}, which a model file cannot hold"
            )
        prepared[name] = data
        table[name] = {
            "dtype": data.dtype.str,
            "shape": list(data.shape),
            "sha256": hashlib.sha256(data.data).hexdigest(),
        }
    content = {**content, "arrays": table}
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "content_sha256": hashlib.sha256(_canonical_json(content)).hexdigest(),
        "content": content,
    }
    text = _canonical_json(description)
    if len(text) > MAX_DESCRIPTION_BYTES:
        raise ValueError(
            f"the model's description is {len(text)} bytes, over the {MAX_DESCRIPTION_BYTES} "
            "a model file allows (a very long loss curve or feature-name list?)"
        )
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(DESCRIPTION_MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, text)
        for name, data in prepared.items():
            _write_member(archive, name, data)


def _floats_to_arrays(
    content: dict[str, Any], arrays: Mapping[str, NDArray[Any]]
) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """``content`` with each list of more than :data:`MAX_INLINE_FLOATS` floats moved to an array.

    Only lists whose items are all Python floats (a history's values): a list of
    integers or strings stays in the JSON as it is. The arrays are named
    ``floats.0``, ``floats.1``, ... in the order of a walk over sorted keys, so the
    same content always gives the same file.
    """
    arrays = dict(arrays)
    count = 0

    def walk(value: Any) -> Any:
        nonlocal count
        if isinstance(value, dict):
            return {key: walk(value[key]) for key in sorted(value)}
        if isinstance(value, list):
            if len(value) > MAX_INLINE_FLOATS and set(map(type, value)) == {float}:
                while f"floats.{count}" in arrays:
                    count += 1
                name = f"floats.{count}"
                arrays[name] = np.array(value, dtype=np.float64)
                return {"$floats": name}
            return [walk(v) for v in value]
        return value

    return walk(content), arrays


# --- reading ------------------------------------------------------------------------------


def _read_archive(path: str) -> tuple[dict[str, Any], int]:
    """The checked content of the file at ``path``, with arrays in place of references.

    Also the most bytes anything the file declares may take once in memory
    (``MAX_EXPANSION`` times the file's size), for the checks of the content.
    """
    stream = _open_regular_file(path)
    with stream:
        try:
            return _read_open_archive(stream, path)
        except _Invalid as error:
            raise _bad(path, str(error)) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, struct.error) as error:
            raise _bad(path, f"the archive is truncated or corrupted ({error})") from None
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as error:
            raise _bad(path, f"unreadable content ({type(error).__name__}: {error})") from None
        except (NotImplementedError, RuntimeError) as error:
            # Unsupported compression methods, encrypted members.
            raise _bad(path, f"unsupported archive feature ({error})") from None
        except RecursionError:
            raise _bad(path, "the description nests too deeply") from None
        except OSError as error:
            raise ModelFileError(f"cannot read the model file {path!r}: {error}") from None


def _open_regular_file(path: str) -> IO[bytes]:
    """``path`` opened for reading, or ``ModelFileError`` unless it is a regular file.

    Opened without blocking and checked on the open descriptor (no race with a
    rename in between): reading a FIFO would wait forever for a writer, and a
    device or socket is no model file either.
    """
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise ModelFileError(f"no model file at {path!r} (file not found)") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path!r} is a directory, not a model file") from None
    except OSError as error:
        raise ModelFileError(f"cannot open the model file {path!r}: {error}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise ModelFileError(f"{path!r} is a directory, not a model file")
        if not stat.S_ISREG(mode):
            raise ModelFileError(
                f"{path!r} is not a regular file (a {_file_kind(mode)}): a model file is read "
                "from disk; copy the model to a file first"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")


#: The end-of-central-directory record: signature, disk numbers and this disk's count
#: (skipped), the total count of members, the directory's size and offset, comment length.
_EOCD = struct.Struct("<4s6xHII2x")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2I2Q2Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"


def _check_central_directory(stream: IO[bytes], size: int) -> None:
    """Refuse an archive whose end records declare too big a directory, before parsing it.

    ``zipfile`` reads the whole central directory into ``ZipInfo`` objects
    before anyone can count them (a million members: 40 s and 570 MB). It finds
    the directory through the end-of-central-directory record and, where a ZIP64
    locator precedes that, through the ZIP64 record (found next to the locator
    or where the locator points, depending on the Python version), and parses
    as many bytes as the record says. Every record it might use is checked here:
    at most :data:`MAX_MEMBERS` members, in at most ``MAX_MEMBERS *
    MAX_DIRECTORY_ENTRY`` bytes.
    """
    tail_size = min(size, _EOCD.size + 0xFFFF)  # the record, then a comment of <= 64 KiB
    tail_start = size - tail_size
    stream.seek(tail_start)
    tail = stream.read(tail_size)
    at = tail.rfind(_EOCD_SIGNATURE)  # as zipfile searches for it
    _require(
        at >= 0 and at + _EOCD.size <= len(tail),
        "the archive has no end-of-central-directory record (truncated?)",
    )
    _, count, directory_size, _ = _EOCD.unpack_from(tail, at)
    records = [(count, directory_size)]
    locator_at = tail_start + at - _ZIP64_LOCATOR.size
    if locator_at >= 0:
        stream.seek(locator_at)
        locator = stream.read(_ZIP64_LOCATOR.size)
        signature, _, record_offset, _ = _ZIP64_LOCATOR.unpack(locator)
        if signature == _ZIP64_LOCATOR_SIGNATURE:
            for offset in {locator_at - _ZIP64_EOCD.size, record_offset}:
                if not 0 <= offset <= size - _ZIP64_EOCD.size:
                    continue
                stream.seek(offset)
                record = stream.read(_ZIP64_EOCD.size)
                if record[:4] == _ZIP64_EOCD_SIGNATURE:
                    fields = _ZIP64_EOCD.unpack(record)
                    records.append((fields[6], fields[8]))
    limit = MAX_MEMBERS * MAX_DIRECTORY_ENTRY
    for count, directory_size in records:
        _require(
            count <= MAX_MEMBERS,
            f"the archive declares {count} members; a model file has at most {MAX_MEMBERS}",
        )
        # zipfile parses the directory by its size, not by the count: bound both.
        _require(
            directory_size <= limit,
            f"the archive's central directory declares {directory_size} bytes, more than "
            f"{MAX_MEMBERS} members need ({limit} bytes at most)",
        )
    stream.seek(0)


def _read_open_archive(stream: IO[bytes], path: str) -> tuple[dict[str, Any], int]:
    size = os.fstat(stream.fileno()).st_size
    start = stream.read(6)
    _require(size > 0, "the file is empty")
    _require(
        start != b"\x93NUMPY",
        "it is a single .npy array, not a model file (write one with handnet.save)",
    )
    _require(start[:2] == b"PK", "it is not a ZIP/.npz archive (wrong leading bytes)")
    _check_central_directory(stream, size)
    archive = zipfile.ZipFile(stream)
    names, budget = _check_members(archive, size)
    content = _parse_description(_read_description(archive, names))
    table = content.get("arrays")
    _check_array_table(table, budget, size)
    arrays = _read_arrays(archive, names, table)
    used: set[str] = set()
    resolved = _resolve_refs({k: v for k, v in content.items() if k != "arrays"}, arrays, used)
    unused = sorted(set(arrays) - used)
    _require(not unused, f"arrays {unused} are never referenced")
    return dict(resolved), budget


def _check_members(archive: zipfile.ZipFile, size: int) -> tuple[list[str], int]:
    """The members' names, after checking what each declares against the file's ``size``.

    Also the budget: the most bytes anything the file declares may take once in memory.
    """
    infos = archive.infolist()
    _require(len(infos) <= MAX_MEMBERS, f"the archive has {len(infos)} members")
    names = [info.filename for info in infos]
    _require(len(set(names)) == len(names), "the archive holds two members of the same name")
    budget = MAX_EXPANSION * size + (1 << 16)
    declared = 0
    for info in infos:
        _require(
            info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED),
            f"member {info.filename!r} uses an unsupported compression method",
        )
        _require(not info.flag_bits & 0x1, f"member {info.filename!r} is encrypted")
        _require(
            info.header_offset + info.compress_size <= size,
            f"member {info.filename!r} extends past the end of the file (truncated?)",
        )
        if info.compress_type == zipfile.ZIP_STORED:
            _require(
                info.file_size == info.compress_size,
                f"member {info.filename!r} declares {info.file_size} bytes but stores "
                f"{info.compress_size}",
            )
        declared += info.file_size
        _require(
            declared <= budget,
            f"the members declare {declared} bytes, far more than a {size}-byte file can hold "
            "(a decompression bomb?)",
        )
    return names, budget


def _read_description(archive: zipfile.ZipFile, names: list[str]) -> str:
    """The description member's text, read no further than its size limit."""
    _require(DESCRIPTION_MEMBER in names, f"it has no {DESCRIPTION_MEMBER} description")
    info = archive.getinfo(DESCRIPTION_MEMBER)
    _require(
        info.file_size <= MAX_DESCRIPTION_BYTES,
        f"the description is {info.file_size} bytes, over the {MAX_DESCRIPTION_BYTES} limit",
    )
    with archive.open(info) as member:
        raw = member.read(MAX_DESCRIPTION_BYTES + 1)
    _require(len(raw) <= MAX_DESCRIPTION_BYTES, "the description is over the size limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("the description is not UTF-8 text") from None
    return text


def _parse_description(text: str) -> dict[str, Any]:
    """The description's ``content``, after checking its depth, format, version and checksum."""
    _require(
        _json_depth_ok(text, MAX_JSON_DEPTH),
        f"the description nests deeper than {MAX_JSON_DEPTH} levels",
    )
    try:
        description = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise _Invalid(f"the description is not valid JSON ({error})") from None
    _require(isinstance(description, dict), "the description is not a JSON object")
    _require(
        description.get("format") == FORMAT,
        f"the description's format is {description.get('format')!r}, not {FORMAT!r}",
    )
    version = description.get("format_version")
    _require(
        isinstance(version, int) and not isinstance(version, bool),
        f"the format version {version!r} is not an integer",
    )
    _require(
        version == FORMAT_VERSION,
        f"format version {version} is unknown: this handnet reads version {FORMAT_VERSION}"
        + (" (the file was written by a newer handnet)" if version > FORMAT_VERSION else ""),
    )
    _require(
        set(description) == {"format", "format_version", "content_sha256", "content"},
        f"the description has unexpected keys {sorted(description)}",
    )
    content = description["content"]
    _require(isinstance(content, dict), "content must be a JSON object")
    _require(
        description["content_sha256"] == hashlib.sha256(_canonical_json(content)).hexdigest(),
        "the description does not match its checksum (edited or corrupted)",
    )
    return content


def _read_arrays(archive: zipfile.ZipFile, names: list[str], table: Any) -> dict[str, NDArray[Any]]:
    """Every array member the (checked) ``table`` describes, each checked as it is read."""
    members = {n[: -len(".npy")] for n in names if n != DESCRIPTION_MEMBER and n.endswith(".npy")}
    others = [n for n in names if n != DESCRIPTION_MEMBER and not n.endswith(".npy")]
    _require(not others, f"the archive holds unexpected members {sorted(others)}")
    missing, extra = sorted(set(table) - members), sorted(members - set(table))
    _require(not missing, f"arrays {missing} are described but missing from the archive")
    _require(not extra, f"the archive holds undescribed arrays {extra}")
    return {
        name: _read_member_array(archive, archive.getinfo(f"{name}.npy"), name, spec)
        for name, spec in table.items()
    }


def _read_member_array(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, spec: Mapping[str, Any]
) -> NDArray[Any]:
    """Read one ``.npy`` member after checking its header against the description."""
    dtype = np.dtype(spec["dtype"])
    shape = tuple(spec["shape"])
    nbytes = math.prod(shape) * dtype.itemsize
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member, max_header_size=_NPY_MAX_HEADER)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(member, max_header_size=_NPY_MAX_HEADER)
        else:
            raise _Invalid(f"array {name!r} is in .npy format {version}; 1.0 or 2.0 expected")
        header_shape, fortran_order, header_dtype = header
        _require(
            header_dtype.str in ARRAY_DTYPES,
            f"array {name!r} has dtype {header_dtype.str!r} in its header; only plain numbers "
            "are allowed (an object array would need unpickling, which handnet never does)",
        )
        _require(
            header_dtype.str == dtype.str and tuple(header_shape) == shape and not fortran_order,
            f"array {name!r} is {header_dtype.str} {tuple(header_shape)} in its header but "
            f"{dtype.str} {shape} in the description",
        )
        header_size = member.tell()
        _require(
            info.file_size == header_size + nbytes,
            f"array {name!r} declares {nbytes} bytes of data but its member holds "
            f"{info.file_size - header_size}",
        )
        data = member.read(nbytes)
        _require(len(data) == nbytes and member.read(1) == b"", f"array {name!r} is truncated")
    _require(
        hashlib.sha256(data).hexdigest() == spec["sha256"],
        f"array {name!r} does not match its checksum (corrupted, or arrays swapped)",
    )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return np.array(array, dtype=dtype.newbyteorder("="), copy=True)


def _check_array_table(table: Any, budget: int, size: int) -> None:
    _require(isinstance(table, dict), "content.arrays must be an object")
    total = 0
    for name, spec in table.items():
        _require(
            _ARRAY_NAME.fullmatch(name) is not None and len(name) <= 200,
            f"array name {name!r} is not allowed",
        )
        _require(
            isinstance(spec, dict) and set(spec) == {"dtype", "shape", "sha256"},
            f"array {name!r} must be described by dtype, shape and sha256",
        )
        _require(
            isinstance(spec["dtype"], str) and spec["dtype"] in ARRAY_DTYPES,
            f"array {name!r} has dtype {spec['dtype']!r}; allowed: {sorted(ARRAY_DTYPES)}",
        )
        shape = spec["shape"]
        _require(
            isinstance(shape, list)
            and len(shape) <= 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape),
            f"array {name!r} has an invalid shape {shape!r}",
        )
        _require(
            isinstance(spec["sha256"], str) and _HEX64.fullmatch(spec["sha256"]) is not None,
            f"array {name!r} has an invalid checksum",
        )
        total += math.prod(shape) * np.dtype(spec["dtype"]).itemsize
        _require(
            total <= budget,
            f"the arrays declare {total} bytes, far more than a {size}-byte file can hold",
        )


def _resolve_refs(value: Any, arrays: Mapping[str, NDArray[Any]], used: set[str]) -> Any:
    """``value`` with every ``{"$array": name}`` replaced by its array (which must be
    finite) and every ``{"$floats": name}`` by its list of floats (any float: a
    history may hold ``inf``; what reads the list checks its values)."""
    if isinstance(value, dict):
        for tag in ("$array", "$floats"):
            if tag in value:
                name = value[tag]
                _require(set(value) == {tag} and isinstance(name, str), "bad array reference")
                _require(name in arrays, f"reference to an unknown array {name!r}")
                _require(name not in used, f"array {name!r} is referenced twice")
                used.add(name)
                array = arrays[name]
                if tag == "$floats":
                    _require(
                        array.dtype == np.float64 and array.ndim == 1,
                        f"array {name!r} holds a list of floats: it must be 1-d float64",
                    )
                    return array.tolist()
                if array.dtype.kind == "f":
                    _require(
                        bool(np.isfinite(array).all()),
                        f"array {name!r} holds NaN or infinite values",
                    )
                return array
        return {k: _resolve_refs(v, arrays, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, arrays, used) for v in value]
    return value
