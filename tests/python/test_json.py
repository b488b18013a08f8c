"""AtomsEncoder / AtomsDecoder: the reference's JSON envelope, both ways with asebytes 0.3.3."""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _helpers import assert_same, make_atoms, rich_atoms
from ase import Atoms
from asebytes import AtomsDecoder, AtomsEncoder, encode

REF_PY = Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python"
needs_ref = pytest.mark.skipif(
    not REF_PY.exists(), reason="needs .venv-ref (./dev ref-venv)"
)


def _ref(code: str, stdin: str = "") -> str:
    """Run ``code`` with the reference asebytes; its stdout."""
    out = subprocess.run(
        [str(REF_PY), "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def _same_atoms(a: Atoms, b: Atoms) -> None:
    assert a == b
    assert_same(a.info, b.info)
    assert a.arrays.keys() == b.arrays.keys()
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    assert (a.calc is None) == (b.calc is None)
    if a.calc is not None:
        assert a.calc.results.keys() == b.calc.results.keys()
        for k, v in a.calc.results.items():
            np.testing.assert_array_equal(v, b.calc.results[k])
    assert [c.todict() for c in a.constraints] == [c.todict() for c in b.constraints]


def test_envelope_shape_is_pinned() -> None:
    atoms = make_atoms(1)
    envelope = json.loads(json.dumps(atoms, cls=AtomsEncoder))
    assert set(envelope) == {"__asebytes__", "data"}
    assert envelope["__asebytes__"] == 1
    packed = base64.b64decode(envelope["data"])
    n = len(encode(atoms))
    assert packed[0] == (0x80 | n if n < 16 else 0xDE)


def test_atoms_nested_anywhere_round_trip() -> None:
    tree = {"frames": [make_atoms(0), rich_atoms()], "meta": {"best": make_atoms(3)}}
    back = json.loads(json.dumps(tree, cls=AtomsEncoder), cls=AtomsDecoder)
    _same_atoms(back["frames"][0], tree["frames"][0])
    _same_atoms(back["frames"][1], tree["frames"][1])
    _same_atoms(back["meta"]["best"], tree["meta"]["best"])
    single = json.loads(json.dumps(make_atoms(2), cls=AtomsEncoder), cls=AtomsDecoder)
    _same_atoms(single, make_atoms(2))


def test_other_objects_pass_through_and_unknown_types_are_type_error() -> None:
    assert json.loads(json.dumps({"a": [1, 2.5, None]}, cls=AtomsEncoder)) == {
        "a": [1, 2.5, None]
    }
    assert json.loads('{"a": {"b": 1}}', cls=AtomsDecoder) == {"a": {"b": 1}}
    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps({"x": object()}, cls=AtomsEncoder)


def test_subclass_extends_default_and_delegates() -> None:
    class ComplexEncoder(AtomsEncoder):
        def default(self, o: Any) -> Any:
            if isinstance(o, complex):
                return {"re": o.real, "im": o.imag}
            return super().default(o)

    text = json.dumps({"z": 1 + 2j, "atoms": make_atoms(0)}, cls=ComplexEncoder)
    back = json.loads(text, cls=AtomsDecoder)
    assert back["z"] == {"re": 1.0, "im": 2.0}
    _same_atoms(back["atoms"], make_atoms(0))


def test_unsupported_envelope_version_is_value_error() -> None:
    with pytest.raises(ValueError, match="Unsupported asebytes envelope version: 2"):
        json.loads('{"__asebytes__": 2, "data": ""}', cls=AtomsDecoder)


def test_user_object_hook_replaces_the_envelope_hook() -> None:
    text = json.dumps(make_atoms(0), cls=AtomsEncoder)
    raw = json.loads(text, cls=AtomsDecoder, object_hook=lambda d: d)
    assert raw["__asebytes__"] == 1


@needs_ref
def test_reference_json_decodes_here_and_ours_is_byte_identical() -> None:
    text = _ref(
        """
        import json, numpy as np
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.constraints import FixAtoms
        from asebytes import AtomsEncoder
        rng = np.random.default_rng(7)
        frames = []
        for n in (2, 5):
            a = Atoms(numbers=rng.integers(1, 30, size=n), positions=rng.normal(size=(n, 3)),
                      cell=np.eye(3) * 4.0, pbc=True)
            a.info["step"] = n
            a.info["label"] = f"f{n}"
            a.arrays["charges"] = rng.normal(size=n)
            a.set_constraint(FixAtoms([0]))
            a.calc = SinglePointCalculator(a, energy=-1.5 * n, forces=rng.normal(size=(n, 3)))
            frames.append(a)
        print(json.dumps({"frames": frames, "n": 2}, cls=AtomsEncoder))
        """
    )
    back = json.loads(text, cls=AtomsDecoder)
    assert back["n"] == 2 and len(back["frames"]) == 2
    assert back["frames"][1].info == {"step": 5, "label": "f5"}
    assert back["frames"][1].get_potential_energy() == -7.5
    # Ours, written from what we decoded, is the same text.
    assert json.dumps(back, cls=AtomsEncoder) == text.strip()


@needs_ref
def test_our_json_decodes_in_the_reference() -> None:
    text = json.dumps([rich_atoms(), make_atoms(4)], cls=AtomsEncoder)
    out = _ref(
        """
        import json, sys
        from asebytes import AtomsDecoder, AtomsEncoder
        frames = json.loads(sys.stdin.read(), cls=AtomsDecoder)
        print(json.dumps(frames, cls=AtomsEncoder))
        """,
        stdin=text,
    )
    assert out.strip() == text
