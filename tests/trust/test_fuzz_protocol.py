"""Fuzzing protocol files: ``koide2024.toml`` with fields removed, changed or retyped.

The only outcomes allowed: a protocol that loads *and* satisfies the invariants the
rest of reirrad relies on (and evaluates a small plan without a non-reirrad exception),
or a :class:`~constraints.errors.ProtocolError` naming the file.  Never a bare
KeyError/TypeError/ValueError, never a silently accepted bad value.

CI budget: ``REIRRAD_FUZZ_EXAMPLES`` (default 150) examples.  Long run::

    REIRRAD_FUZZ_EXAMPLES=5000 python -m pytest -q -s tests/trust/test_fuzz_protocol.py tests/trust/test_fuzz_dicom.py
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from _trust import fuzz_examples, record_count
from constraints.dose_course import DoseCourse
from constraints.errors import ProtocolError, ReirradError
from constraints.evaluation import PlanCase, evaluate_protocol
from constraints.grid import Grid
from constraints.protocol import DOMAINS, PROTOCOL_DIR, load_protocol
from constraints.structure import Structure

if sys.version_info >= (3, 11):
    import tomllib as toml  # novermin
else:
    import tomli as toml

N = fuzz_examples(150)
RESULTS = {"loaded": 0, "refused": 0, "refused_named": 0, "refused_other": 0, "valid_loaded": 0,
           "valid_checked": 0}

with open(os.path.join(PROTOCOL_DIR, "koide2024.toml"), "rb") as _fh:
    BASE = toml.loads(_fh.read().decode("utf-8"))


def _key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def to_toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("nan" if v != v else
                                                                              ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(to_toml_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {to_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(d):
    """A one-line-per-key TOML writer (inline tables and arrays) for the fuzzed mappings."""
    return "".join(f"{_key(k)} = {to_toml_value(v)}\n" for k, v in d.items())


weird = st.one_of(
    st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=12), st.sampled_from(["", "Gy", "Gy BED", "Gy EQD2", "Dmax", "D0.035cc", "D1cc", "D95%",
                                           "esophagus", "ptv_eval", "cumulative_bed", "sbrt_physical", "<", "<=",
                                           "koide2024", "1b", "cord_prv_d0035cc"]),
    st.lists(st.integers(-5, 200), max_size=3), st.lists(st.text(max_size=5), max_size=3),
    st.builds(dict), st.builds(list), st.builds(lambda: [[1.0, 2.0], [0.5, 1.0]]),   # fresh objects each draw
)


@st.composite
def mutated_protocol(draw):
    """Up to 3 mutations of random fields (delete, retype, rescale, edit a string): mostly refusals.

    Returns (mapping, the keys on the mutated paths)."""
    d = json.loads(json.dumps(BASE))      # deep copy (plain TOML types)
    keys_hit = set()
    for _ in range(draw(st.integers(1, 3))):
        node = d
        while True:
            keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            k = draw(st.sampled_from(keys))
            keys_hit.add(k)
            child = node[k]
            if isinstance(child, (dict, list)) and child and draw(st.integers(0, 3)) > 0:
                node = child
                continue
            action = draw(st.sampled_from(["delete", "replace", "replace", "numeric", "string"]))
            if action == "delete":
                node.pop(k)
            elif action == "numeric" and isinstance(child, (int, float)) and not isinstance(child, bool):
                node[k] = child * draw(st.sampled_from([-1, 0, 0.5, 2, 1e6, -1e-9]))
            elif action == "string" and isinstance(child, str):
                node[k] = draw(st.sampled_from([child.upper(), child + "x", child[:-1], " " + child, ""]))
            else:
                node[k] = draw(weird)
            break
    return d, keys_hit


#: Field edits that keep a protocol well-formed (type and range): (section, field, strategy of the new value
#: given the old one).  A fuzzed protocol made of these must load, and load exactly what was written.
VALID_EDITS = {
    "constraints": {
        "limit": lambda old: st.floats(0.5, 2.0).map(lambda f: round(old * f, 3)),
        "comparison": lambda old: st.sampled_from(["<", "<="]),
        "priority": lambda old: st.integers(1, 9),
        "advisory": lambda old: st.booleans(),
        "metric": lambda old: st.sampled_from(["Dmax", "D0.035cc", "D0.1cc", "D1cc", "D2cc"]),
    },
    "organs": {
        "alpha_beta_gy": lambda old: st.floats(0.5, 20.0).map(lambda v: round(v, 2)),
        "display_name": lambda old: st.text("abcdefgh XYZ", min_size=1, max_size=12).filter(lambda t: t.strip()),
    },
}


@st.composite
def valid_edit(draw):
    """One to three well-formed edits of constraint and organ fields; returns (mapping, edits made)."""
    d = json.loads(json.dumps(BASE))
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(VALID_EDITS)))
        if section == "constraints":
            i = draw(st.integers(0, len(d["constraints"]) - 1))
            entry, where = d["constraints"][i], i
        else:
            where = draw(st.sampled_from(sorted(d["organs"])))
            entry = d["organs"][where]
        fields = [f for f in VALID_EDITS[section] if f in entry]
        if not fields:
            continue
        f = draw(st.sampled_from(fields))
        entry[f] = draw(VALID_EDITS[section][f](entry[f]))
        edits.append((section, where, f, entry[f]))
    return d, edits


def _check_invariants(p):
    assert p.organs and p.prescription.target in p.organs and p.prescription.fractions >= 1
    assert math.isfinite(p.prescription.dose_gy) and p.prescription.dose_gy > 0
    for o in p.organs.values():
        assert math.isfinite(o.alpha_beta_gy) and o.alpha_beta_gy > 0 and o.aliases
    for c in p.constraints:
        assert c.organ in p.organs and c.unit == DOMAINS[c.domain] and c.comparison in ("<", "<=")
        assert (c.limit is None) != (c.limit_table is None)
        if c.limit is not None:
            assert math.isfinite(c.limit) and c.limit > 0
        else:
            t = p.tables[c.limit_table]
            bounds = [b for b, _ in t.rows]
            assert bounds == sorted(set(bounds)) and all(lim > 0 for _, lim in t.rows) and t.above > 0


def _small_plan(p):
    g = Grid((0, 0, 0), (5, 5, 5), (2, 3, 3))
    rng = np.random.default_rng(0)
    structures = {k: Structure(k, o.kind, np.ones(g.shape_zyx), g) for k, o in p.organs.items()}
    sbrt = DoseCourse(rng.uniform(0, 25, g.shape_zyx), g, p.prescription.fractions, "sbrt")
    prior = DoseCourse(rng.uniform(0, 60, g.shape_zyx), g, 30, "prior")
    return PlanCase(g, structures, sbrt, (prior,))


def _write(tmp, d):
    path = os.path.join(tmp, "fuzzed.toml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(to_toml(d))
    return path


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(dk=mutated_protocol())
def test_fuzzed_protocol_loads_correctly_or_is_refused(dk):
    """Random damage: a load that satisfies the invariants, or a ProtocolError that names the file and a
    field or section on the damaged path (the message class a user can act on)."""
    d, keys_hit = dk
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, d)
        try:
            p = load_protocol(path)
        except ProtocolError as exc:
            msg = str(exc)
            assert "fuzzed.toml" in msg
            named = any(str(k) in msg for k in keys_hit if isinstance(k, str)) or re.search(r"\[\d+\]", msg)
            RESULTS["refused_named" if named else "refused_other"] += 1
            RESULTS["refused"] += 1
            return
    RESULTS["loaded"] += 1
    _check_invariants(p)
    try:
        evaluate_protocol(_small_plan(p), p)
    except ReirradError:
        pass


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(de=valid_edit())
def test_well_formed_edits_load_exactly_what_was_written(de):
    """Well-formed edits of limits, comparisons, priorities, metrics, α/β: the protocol loads, satisfies the
    invariants, holds the edited values and evaluates a small plan.  A refusal is allowed only when an edit
    made two constraints identical in id (ProtocolError naming the file)."""
    d, edits = de
    with tempfile.TemporaryDirectory() as tmp:
        p = load_protocol(_write(tmp, d))
    RESULTS["valid_loaded"] += 1
    _check_invariants(p)
    last = {}
    for section, where, f, value in edits:
        last[(section, where, f)] = value
    for (section, where, f), value in last.items():
        if section == "organs":
            got = getattr(p.organs[where], f)
            assert got == value, (where, f, got, value)
            continue
        cid = d["constraints"][where]["id"]
        hits = [c for c in p.constraints if c.id == cid or c.id.startswith(cid + ":")]
        assert hits, cid
        for c in hits:
            got = {"limit": c.limit, "comparison": c.comparison, "priority": c.priority, "advisory": c.advisory,
                   "metric": c.metric.text}[f]
            assert got == value, (cid, f, got, value)
    ev = evaluate_protocol(_small_plan(p), p)
    assert len(ev.results) + len(ev.not_applicable) == len(p.constraints)
    RESULTS["valid_checked"] += 1


def test_writer_round_trips_the_builtin_protocol(tmp_path):
    path = tmp_path / "copy.toml"
    path.write_text(to_toml(BASE), encoding="utf-8")
    p, ref = load_protocol(str(path)), load_protocol("koide2024")
    assert p.constraints == ref.constraints and p.organs == ref.organs and p.tables == ref.tables


def test_zz_protocol_fuzz_reaches_its_invariants():
    """Most examples reach an invariant check: every well-formed edit loads and is checked value by value;
    refusals of random damage name the file and (nearly always) a field on the damaged path."""
    n = RESULTS["loaded"] + RESULTS["refused"]
    print(f"\nprotocol fuzz: {n} damaged ({RESULTS['refused']} refused with ProtocolError, "
          f"{RESULTS['refused_named']} naming a damaged field; {RESULTS['loaded']} loaded and checked); "
          f"{RESULTS['valid_checked']} of {RESULTS['valid_loaded']} well-formed edits loaded and checked")
    record_count("fuzz examples (protocol)", n + RESULTS["valid_loaded"])
    assert RESULTS["valid_checked"] == RESULTS["valid_loaded"] >= 1
    assert RESULTS["refused_named"] >= 0.8 * RESULTS["refused"]
