"""Row reads on MongoDB: one server call per ``db[i]`` once the daemon has seen the rows'
sort keys, and never a stale row when another writer moves rows in between.

The daemon guesses a row's sort key from what it read before and asks for the metadata's
slice of ``sort_keys`` with the guessed row in the same ``find``; the row is served only
when the slice confirms the guess. Here a plain pymongo client changes the collection
between two reads exactly as asebytes 0.3.3 does (a new row document and a ``$push`` at
position 0; a deleted document and ``sort_keys`` rewritten), and the next read must show
it. Server calls are counted by the server itself (``serverStatus`` opcounters: ``find``
is ``query``, cursor continuations ``getmore``; the daemon's reads are finds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import _mongo_server
import pytest
from asebytes import ObjectIO

pymongo = pytest.importorskip("pymongo")

pytestmark = pytest.mark.skipif(
    _mongo_server.program() is None and not os.environ.get("CI"),
    reason="needs secantusd-py (required in CI)",
)

ROWS = 40


@pytest.fixture
def location() -> str:
    return _mongo_server.fresh_location()


@pytest.fixture
def client(location: str) -> Iterator[Any]:
    c = pymongo.MongoClient(location)
    try:
        yield c
    finally:
        c.close()


def _reads(client: Any) -> int:
    """Reads the server has answered so far (finds and their continuations)."""
    counters = client.admin.command("serverStatus")["opcounters"]
    return int(counters["query"]) + int(counters["getmore"])


def _insert_at_zero(coll: Any, data: dict[str, Any] | None) -> None:
    """asebytes 0.3.3's ``insert(0, row)``: reserve a sort key, write the row document,
    push the key at position 0."""
    meta = coll.find_one_and_update(
        {"_id": "__meta__"},
        {"$inc": {"next_sort_key": 1}},
        upsert=True,
        return_document=pymongo.ReturnDocument.AFTER,
    )
    sk = meta["next_sort_key"] - 1
    coll.insert_one({"_id": sk, "data": data})
    coll.update_one(
        {"_id": "__meta__"},
        {"$push": {"sort_keys": {"$each": [sk], "$position": 0}}, "$inc": {"count": 1}},
    )


def _delete_at(coll: Any, index: int) -> None:
    """asebytes 0.3.3's ``delete(i)``: delete the document, rewrite ``sort_keys``."""
    sks = coll.find_one({"_id": "__meta__"})["sort_keys"]
    sk = sks.pop(index)
    coll.delete_one({"_id": sk})
    coll.update_one(
        {"_id": "__meta__"}, {"$set": {"sort_keys": sks, "count": len(sks)}}
    )


def test_reading_row_by_row_is_one_server_call_per_row(
    location: str, client: Any
) -> None:
    db = ObjectIO(location, group="calls")
    db.extend([{"i": i, "x": float(i)} for i in range(ROWS)])
    assert db[ROWS - 1] == {"i": ROWS - 1, "x": float(ROWS - 1)}
    before = _reads(client)
    rows = [db[i] for i in range(ROWS)]
    assert _reads(client) - before == ROWS
    assert [r["i"] for r in rows] == list(range(ROWS))
    before = _reads(client)
    picked = [db.get(i, keys=["x"]) for i in reversed(range(ROWS))]
    assert _reads(client) - before == ROWS
    assert picked == [{"x": float(i)} for i in reversed(range(ROWS))]


def test_a_row_another_client_inserts_at_zero_is_read_at_once(
    location: str, client: Any
) -> None:
    group = "moved"
    db = ObjectIO(location, group=group)
    db.extend([{"i": i} for i in range(ROWS)])
    assert [db[i]["i"] for i in range(ROWS)] == list(range(ROWS))
    coll = client.get_default_database()[group]
    _insert_at_zero(coll, {"i": -1})
    # Every position the daemon remembers moved by one: not one stale row is served.
    assert db[0] == {"i": -1}
    assert db[1] == {"i": 0}
    assert db.get(ROWS, keys=["i"]) == {"i": ROWS - 1}
    assert [db[i]["i"] for i in range(ROWS + 1)] == [-1, *range(ROWS)]
    with pytest.raises(IndexError):
        db[ROWS + 1]
    _insert_at_zero(coll, None)
    assert db[0] is None
    assert db[1] == {"i": -1}
    _delete_at(coll, 0)
    _delete_at(coll, 0)
    assert len(db) == ROWS
    assert [db[i]["i"] for i in range(ROWS)] == list(range(ROWS))
    with pytest.raises(IndexError):
        db[ROWS]


def test_a_row_deleted_under_its_sort_key_is_reported_not_replaced(
    location: str, client: Any
) -> None:
    group = "gone"
    db = ObjectIO(location, group=group)
    db.extend([{"i": i} for i in range(4)])
    assert [db[i]["i"] for i in range(4)] == [0, 1, 2, 3]
    coll = client.get_default_database()[group]
    # A client that died between deleting the document and rewriting sort_keys.
    sk = coll.find_one({"_id": "__meta__"})["sort_keys"][2]
    coll.delete_one({"_id": sk})
    with pytest.raises(ConnectionError, match="deleted or moved"):
        db[2]
    assert db[3] == {"i": 3}
