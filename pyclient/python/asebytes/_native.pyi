"""Type stubs of the native extension ``asebytes._native`` (written by hand, checked by stubtest)."""

from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeAlias, TypeVar, final

from ase import Atoms

__version__: str

Tier: TypeAlias = Literal["object", "blob"]

_R = TypeVar("_R")

class StoreOps(Generic[_R]):
    """The operations ``Store`` and ``AsyncStore`` share, written once: a ``Store``
    (``StoreOps[Any]``) sends each at once and returns its result, as documented here; an
    ``AsyncStore`` (``StoreOps[Call]``) validates the same arguments, raising exactly what
    ``Store`` raises before sending, and returns a ``Call`` whose ``finish`` gives that
    result. Not constructed directly.

    Object tier: rows are ``dict[str, Any]`` encoded field by field in the msgpack-numpy
    layout; blob tier: rows are ``dict[bytes, bytes]`` stored as given. Indices may be any
    Python or numpy integer; negatives count from the end.
    """

    @property
    def location(self) -> str: ...
    @property
    def group(self) -> str | None: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def tier(self) -> Tier: ...
    def len(self) -> _R:
        """``int``: the number of rows."""
    def follow_wait(self, seen: int, timeout: float) -> _R:
        """Waits up to ``timeout`` seconds (the daemon caps it at a minute) for the store
        to have more than ``seen`` rows; ``(generation, len)`` as soon as a commit makes it
        so, or at the timeout (then ``len <= seen``). One ``Follow`` request (protocol 3;
        ``UnsupportedOperationError`` from an older daemon)."""
    def get(self, index: int, keys: Sequence[Any] | None = None) -> _R:
        """``dict | None``: row ``index`` (``None`` for a placeholder)."""
    def get_many(
        self,
        indices: Sequence[int],
        keys: Sequence[Any] | None = None,
        missing_ok: bool = True,
    ) -> _R:
        """``list[dict | None]``: rows in one request (one snapshot). With ``keys``, a
        row lacking a key omits it (``missing_ok=True``, as reference backends do) or
        raises ``KeyError("Invalid keys at index i: [...]")`` (``missing_ok=False``, as
        ``get`` does)."""
    def get_atoms(self, index: int, keys: Sequence[str] | None = None) -> _R:
        """``Atoms | None``: row ``index`` as ``ase.Atoms`` built natively (``None`` for
        a placeholder): the same Atoms as ``dict_to_atoms(self.get(index, keys))``, with
        writable arrays the caller owns."""
    def get_atoms_many(
        self,
        indices: Sequence[int],
        keys: Sequence[str] | None = None,
        missing_ok: bool = False,
    ) -> _R:
        """``list[Atoms | None]``: rows as ``ase.Atoms`` in one request. With ``keys``
        and ``missing_ok=True`` the rules of ASEIO column views apply: ``KeyError(key)``
        for a requested key that no real row has, ``TypeError`` for a placeholder row,
        ``None`` for a row that has none of the keys."""
    def get_column(self, key: Any, indices: Sequence[int] | None = None) -> _R:
        """``list``: one key's value per row (``None`` where absent)."""
    def get_column_numpy(self, key: str, indices: Sequence[int] | None = None) -> _R:
        """``numpy.ndarray``: one column as one packed, writable array the caller owns
        (``to_numpy()``), from one request: shape ``(n, *value_shape)``, dtype of the
        values (``float`` → float64, ``int`` → int64, ``bool`` → bool_, numpy scalars and
        arrays keep theirs); ``numpy.empty((0,))`` for an empty selection. ``ValueError``
        for a row without a value, a ragged column, mixed dtypes, or values only an object
        array could hold; ``KeyError(key)`` if no selected real row has the key;
        ``TypeError`` on the blob tier."""
    def keys(self, index: int) -> _R:
        """``list``: the keys of row ``index``."""
    def schema_keys(self) -> _R:
        """``list``: the keys of the store's rows."""
    def extend(self, rows: Sequence[dict[Any, Any] | None]) -> _R:
        """``int``: appends rows in one transaction; the new length."""
    def insert(self, index: int, row: dict[Any, Any] | None) -> _R:
        """``int``: inserts a row before ``index``; the new length."""
    def set(self, index: int, row: dict[Any, Any] | None) -> _R:
        """``None``: replaces row ``index`` (``index == len`` appends)."""
    def set_many(
        self,
        start_or_indices: int | Sequence[int],
        rows: Sequence[dict[Any, Any] | None],
    ) -> _R:
        """``None``: replaces rows ``start, start+1, ...`` (an int, the reference
        signature) or ``indices[j]`` (a sequence, one per row), in one transaction."""
    def update(self, index: int, data: dict[Any, Any]) -> _R:
        """``None``: merges ``data`` into row ``index``."""
    def update_many(
        self, start_or_indices: int | Sequence[int], data: Sequence[dict[Any, Any]]
    ) -> _R:
        """``None``: merges ``data[j]`` into row ``start + j`` (or ``indices[j]``), in
        one transaction."""
    def set_column(
        self, key: Any, start_or_indices: int | Sequence[int], values: Sequence[Any]
    ) -> _R:
        """``None``: writes ``values[j]`` under ``key`` into row ``start + j`` (or
        ``indices[j]``), other keys untouched, in one transaction."""
    def delete(self, index: int) -> _R:
        """``int``: removes row ``index``; the new length."""
    def delete_range(self, start: int, stop: int) -> _R:
        """``int``: removes rows ``start..stop``; the new length."""
    def delete_many(self, start: int, stop: int) -> _R:
        """``delete_range`` under the reference's name."""
    def drop_keys(
        self, keys: Sequence[Any], indices: Sequence[int] | None = None
    ) -> _R:
        """``None``: removes ``keys`` from every row (or from ``indices``)."""
    def reserve(self, n: int) -> _R:
        """``int``: appends ``n`` placeholder rows; the new length."""
    def clear(self) -> _R:
        """``None``: removes every row."""
    def remove(self) -> _R:
        """``None``: removes the container; the next use creates it afresh."""
    def __reduce__(self) -> tuple[Any, ...]: ...

class Store(StoreOps[Any]):
    """A handle on one store (location + group) served by the daemon: every
    :class:`StoreOps` operation sent at once.

    Holds no file resources: it connects lazily through a per-process connection pool,
    re-opens transparently after a daemon restart, pickles (reconnects on unpickle) and
    survives ``fork``.
    """

    def __init__(
        self,
        location: str,
        *,
        group: str | None = None,
        readonly: bool = False,
        map_size: int | None = None,
        options: dict[str, bool | int | float | str | None] | None = None,
        tier: Tier = "object",
    ) -> None: ...
    @property
    def canonical(self) -> str: ...
    @property
    def backend_name(self) -> str: ...
    @property
    def capabilities(self) -> dict[str, bool]: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...

class AsyncStore(StoreOps[Call]):
    """``StoreOps`` for the asyncio client, without I/O: each operation returns a
    ``Call``, which the asyncio transport frames, sends and finishes. Same constructor,
    pickling and argument rules as ``Store``; holds no connection and no store id
    (``open()``'s result carries it). Once ``attach``-ed, it answers ``len`` and rows it
    read before while the store's published generation is unchanged (``Call.local``),
    and turns a missed row of a walk into one batched read, as ``Store`` does."""

    def __init__(
        self,
        location: str,
        *,
        group: str | None = None,
        readonly: bool = False,
        map_size: int | None = None,
        options: dict[str, bool | int | float | str | None] | None = None,
        tier: Tier = "object",
    ) -> None: ...
    def open(self) -> Call:
        """Finishes to ``dict(store=int, canonical=str, backend=str,
        capabilities=dict[str, bool], published=(index, tag, epoch) | None)``; ``store`` is
        the id the other calls are framed with (valid on every connection to the same
        daemon epoch), ``published`` where the daemon publishes the store's generation."""
    def close(self) -> Call: ...
    def attach(
        self, published: tuple[int, int, int] | None, typed_values: bool
    ) -> None:
        """The transport opened the store: ``published`` and the ``typed_values``
        capability from ``open()``'s result. From then on ``len`` and cached rows are
        answered without the daemon while the store's generation is unchanged (unless
        ``ASEBYTES_SHARED_GEN=0``); ``None`` turns that off."""

@final
class Call:
    """One planned request of an ``AsyncStore`` (made only by its methods)."""

    @property
    def local(self) -> tuple[Any] | None:
        """``(result,)`` when the call was answered without the daemon (the published
        length, a cached row): nothing to send. ``None``: send it."""

    def frame(
        self,
        id: int,
        store: int,
        max_frame: int | None = None,
        typed_values: bool = False,
    ) -> bytes:
        """The complete wire frame (4-byte big-endian length, then the MessagePack
        envelope) with envelope id ``id``, aimed at store ``store`` (ignored by ``open``),
        whose capabilities say ``typed_values`` (blob values then travel as msgpack bins,
        and ``finish`` unwraps them). May be called again, e.g. after a reconnect.
        ``ValueError`` ("split it into smaller batches") if the body is over
        ``max_frame`` (default: this process's limit)."""
    def finish(self, frame: bytes | bytearray | memoryview) -> Any:
        """The result the ``Store`` method of the same name returns, from the reply body
        (the frame without its length prefix; any C-contiguous byte buffer, read in
        place, which must not change during the call), or the exception it raises.
        ``UnknownStore`` raises ``AsebytesError``: check ``reply_header`` first and
        re-open."""
    @property
    def is_read(self) -> bool:
        """The request changes nothing: safe to resend after a lost connection."""
    def fall_back(self) -> bool:
        """After the call failed: whether it was a read-ahead batch, now turned into the
        one row asked for, to be sent again with a fresh retry policy (as the sync client
        falls back). Once per call."""
    def may_reopen(self) -> bool:
        """Whether to re-open the store and send again after the daemon answered
        ``UnknownStore`` (once per call: the sync client's retry policy)."""
    def may_resend(self, refused: bool) -> bool:
        """Whether to send again on a fresh connection after the connection failed:
        ``refused`` when the daemon answered without running the request (shutting
        down); otherwise only a read may be resent. Once per call: the sync client's
        retry policy."""
    def check_protocol(self, protocol: int) -> None:
        """``UnsupportedOperationError`` unless a daemon that negotiated ``protocol``
        understands this request (the transport checks before sending)."""
    @property
    def name(self) -> str:
        """The request's name (``get_many``, ``extend``, ...), for messages."""

def hello_frame() -> bytes:
    """The complete ``Hello`` frame the sync client sends first on a connection."""

def finish_hello(frame: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The daemon's answer to ``Hello`` (reply body): ``max_frame`` (the frame limit to
    use), ``protocol``, ``daemon_version``, ``build_id``, ``pid``, ``started_at`` and
    ``epoch`` (``(pid, started_at)``: another value means another daemon, whose store ids
    are meaningless). ``ProtocolVersionError`` on a version refusal,
    ``DaemonUnavailableError`` for a reply that is not a handshake."""

def reply_header(frame: bytes | bytearray | memoryview) -> tuple[int, bool]:
    """``(envelope id, the reply is an UnknownStore error)`` of a reply body, without
    decoding the rest."""

def ensure_daemon() -> str:
    """Makes sure a daemon answers (starting one as the sync client does); returns the
    absolute socket path to connect to."""

def list_groups(location: str) -> list[str]: ...
def backends() -> list[dict[str, Any]]: ...
def sniff(scheme: str, path: str) -> bool: ...
def encode_value(value: Any, key: str = "") -> bytes: ...
def decode_value(data: bytes) -> Any: ...
def encode_row(row: dict[str, Any]) -> dict[bytes, bytes]: ...
def encode_atoms(atoms: Atoms) -> dict[bytes, bytes]:
    """``atoms`` as a stored row, converted in Rust: ``encode_row(atoms_to_dict(atoms))``."""

def decode_row(row: dict[bytes, bytes]) -> dict[str, Any]: ...
def decode_atoms(row: dict[bytes, bytes]) -> Atoms:
    """An encoded ASE row (``asebytes.encode``) as ``ase.Atoms``, built natively."""

def ping() -> None: ...
def daemon_status() -> dict[str, Any]: ...
def daemon_main(argv: list[str]) -> int: ...
def socket_path() -> str: ...
def round_trips() -> int:
    """Requests this process has sent to the daemon, over sync handles and asyncio calls
    (diagnostics)."""

def redact_location(location: str) -> str:
    """``location`` with passwords and tokens hidden (``user:***@host``, ``token=***``)."""

def set_daemon_command(argv: list[str]) -> None: ...
