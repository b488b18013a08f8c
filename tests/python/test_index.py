"""Index normalisation (``asebytes._index``): one pure function module for every index form."""

from __future__ import annotations

import numpy as np
import pytest
from asebytes._index import (
    ColumnSelector,
    IntIndex,
    RowSelector,
    check_index,
    parse_index,
    select,
)
from asebytes.exceptions import AsebytesError


def _no_len() -> int:
    raise AssertionError("length must not be read")


@pytest.mark.parametrize("value", [3, -2, np.int64(3), np.int32(-2), np.uint8(1), True])
def test_parse_index_integers_are_single_rows(value: object) -> None:
    parsed = parse_index(value)
    assert parsed == IntIndex(int(value))  # type: ignore[call-overload]
    assert type(parsed.value) is int  # type: ignore[union-attr]


def test_parse_index_zero_dim_integer_array_is_single_row() -> None:
    assert parse_index(np.array(4)) == IntIndex(4)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (slice(1, 5, 2), RowSelector(slice_=slice(1, 5, 2))),
        ([0, -1, 3], RowSelector(positions=(0, -1, 3))),
        ((2, 1), RowSelector(positions=(2, 1))),
        (np.array([1, 2], dtype=np.int32), RowSelector(positions=(1, 2))),
        (range(2, 4), RowSelector(positions=(2, 3))),
        ([np.int64(1), 2], RowSelector(positions=(1, 2))),
        ([True, False], RowSelector(mask=(True, False))),
        (np.array([False, True]), RowSelector(mask=(False, True))),
        ([np.bool_(True)], RowSelector(mask=(True,))),
        ([], RowSelector(positions=())),
        (np.array([]), RowSelector(positions=())),
        ("calc.energy", ColumnSelector(keys=("calc.energy",), single=True)),
        (["a", "b"], ColumnSelector(keys=("a", "b"), single=False)),
        (np.array(["a", "b"]), ColumnSelector(keys=("a", "b"), single=False)),
    ],
)
def test_parse_index_classifies_every_supported_form(
    index: object, expected: object
) -> None:
    assert parse_index(index) == expected


@pytest.mark.parametrize(
    "index",
    [
        1.5,
        None,
        {1: 2},
        np.float64(1.0),
        np.bool_(True),
        np.array([1.0, 2.0]),
        [1, "a"],
        [1, True],
        np.zeros((2, 2), dtype=int),
        b"key",
        object(),
    ],
)
def test_parse_index_rejects_other_types_naming_the_type(index: object) -> None:
    with pytest.raises(TypeError, match=r"Unsupported index type: <class '") as info:
        parse_index(index)
    assert isinstance(info.value, AsebytesError)
    assert type(index).__name__ in str(info.value)


def test_parse_index_bytes_are_keys_when_allowed() -> None:
    assert parse_index(b"k", key_types=(str, bytes)) == ColumnSelector(
        keys=(b"k",), single=True
    )


def test_check_index_normalises_and_names_the_original_index() -> None:
    assert check_index(-1, 5) == 4
    assert check_index(0, 5) == 0
    with pytest.raises(IndexError, match=r"^Index 5 out of range \[0, 5\)$"):
        check_index(5, 5)
    with pytest.raises(IndexError, match=r"^Index -6 out of range \[0, 5\)$"):
        check_index(-6, 5)


def test_select_positions_over_whole_store_read_no_length() -> None:
    assert select(None, RowSelector(positions=(3, -1)), _no_len) == [3, -1]


def test_select_slice_over_whole_store_reads_length_once() -> None:
    calls: list[int] = []

    def length() -> int:
        calls.append(1)
        return 10

    assert select(None, RowSelector(slice_=slice(None, None, -3)), length) == [
        9,
        6,
        3,
        0,
    ]
    assert calls == [1]


def test_select_slice_clips_like_python() -> None:
    assert select(None, RowSelector(slice_=slice(10, 20)), lambda: 3) == []
    assert select([5, 6, 7], RowSelector(slice_=slice(-2, None)), _no_len) == [6, 7]


def test_select_mask_keeps_true_positions() -> None:
    assert select(None, RowSelector(mask=(True, False, True)), lambda: 3) == [0, 2]
    assert select([7, 8], RowSelector(mask=(False, True)), _no_len) == [8]


def test_select_mask_of_wrong_length_is_index_error() -> None:
    with pytest.raises(IndexError, match="mask of length 2"):
        select(None, RowSelector(mask=(True, False)), lambda: 3)
    with pytest.raises(IndexError, match="mask of length 3"):
        select([1, 2], RowSelector(mask=(True, False, True)), _no_len)


def test_select_positions_inside_a_view_are_relative_and_checked() -> None:
    assert select([10, 11, 12], RowSelector(positions=(0, -1, 0)), _no_len) == [
        10,
        12,
        10,
    ]
    with pytest.raises(IndexError, match=r"Index 3 out of range \[0, 3\)"):
        select([10, 11, 12], RowSelector(positions=(3,)), _no_len)
