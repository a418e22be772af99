"""Every option of every matcher at and past its bounds, generated from the option tables
(issue 25: a table fuzz through the API, the CLI and the service). Past a bound: the API raises
InputError naming the option, the CLI exits 2 with one line, the service answers 422 — all
before any work, with the process's peak memory bounded. At a bound: the API accepts it."""

from __future__ import annotations

import json
import resource
from typing import Any

import numpy as np
import pytest

import tmatch
from tests.matchers.base import option_tables
from tmatch.errors import InputError
from tmatch.registry import matcher_class

#: options whose values a load needs more than (weights files, mappings): not fuzzed here
SKIP_TYPES = (dict,)
SKIP_NAMES = {"weights", "features"}
#: matchers loaded with these options in the "at the bound" test (no shipped weights needed)
LOAD = {"dual-unet": {"allow_untrained": True}}




def _past(opt) -> list[Any]:
    """Values just past the option's bounds (and the wrong kind of value)."""
    out: list[Any] = []
    if opt.type is bool:
        return ["maybe", 2]
    if opt.choices is not None:
        return ["no-such-choice"]
    if opt.type in (int, float):
        step = 1 if opt.type is int else max(1e-3, 0.01 * abs(opt.high if opt.high is not None else 1.0))
        if opt.high is not None:
            out += [opt.type(opt.high + step), opt.type(opt.high * 10 + 10 ** 6)]
        if opt.low is not None:
            out.append(opt.type(opt.low - step))
        out.append(float("nan") if opt.type is float else "many")
    elif opt.type is tuple:
        ok = float(opt.default[0]) if opt.default else 1.0
        out.append([ok] * (opt.max_len + 1))
        if opt.high is not None:
            out.append([float(opt.high) * 2 + 1])
        if opt.low is not None:
            out.append([float(opt.low) - 1])
    return out


def _at(opt) -> list[Any]:
    if opt.type in (int, float):
        return [opt.type(v) for v in (opt.low, opt.high) if v is not None]
    if opt.type is tuple and opt.low is not None and opt.high is not None:
        return [[float(opt.low), float(opt.high)]]
    return []


CASES = [(name, o.name, v) for name, table in option_tables() for o in table.values()
         if o.type not in SKIP_TYPES and o.name not in SKIP_NAMES for v in _past(o)]
AT = [(name, o.name, v) for name, table in option_tables() for o in table.values()
      if o.type not in SKIP_TYPES and o.name not in SKIP_NAMES for v in _at(o)]


def test_the_table_covers_every_matcher():
    assert {c[0] for c in CASES} == {n for n, _ in option_tables()}
    assert len(CASES) > 100


@pytest.mark.parametrize("name, option, value", CASES, ids=lambda v: str(v)[:30])
def test_past_a_bound_the_api_refuses_naming_the_option(name, option, value):
    with pytest.raises(InputError, match=option):
        tmatch.load_matcher(name, **{**LOAD.get(name, {}), option: value})


@pytest.mark.parametrize("name, option, value", AT, ids=lambda v: str(v)[:30])
def test_at_a_bound_the_api_accepts(name, option, value):
    try:
        tmatch.load_matcher(name, **{**LOAD.get(name, {}), option: value})
    except InputError as e:  # another option's rule may forbid the pair; never this bound
        assert "must be in [" not in str(e) or option not in str(e), str(e)


def _cli_value(v: Any) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, list) else str(v)


def test_past_a_bound_the_cli_exits_2_in_one_line(run, tmp_path, astronaut):
    from tmatch import io
    from tmatch.cli._options import flag_name

    img = io.write_image(tmp_path / "a.png", astronaut[:200, :200])
    tpl = io.write_image(tmp_path / "t.png", astronaut[50:110, 50:110])
    flags = {o.name for _, t in option_tables() for o in t.values()}
    checked = 0
    for name, option, value in CASES:
        if option not in flags or isinstance(value, str) and option == "threads":
            continue
        if option == "threads" and matcher_class(name).option_table().get("threads") is None:
            continue
        flag = flag_name(option)
        if matcher_class(name).option_table()[option].type is bool:
            continue  # a boolean flag takes no value (--x/--no-x): typer's own check
        r = run("match", tpl, img, "-m", name, flag, _cli_value(value))
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.exit_code == 2, (name, option, value, r.output, r.stderr)
        assert len(lines) == 1 or "Usage:" in r.stderr, (name, option, value, r.stderr)
        checked += 1
    assert checked > 80


def test_past_a_bound_the_service_answers_422_with_bounded_memory(astronaut):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import encode, make_client
    from tmatch.serve.options import SERVER_OWNED

    files = {"template": ("t.png", encode(np.ascontiguousarray(astronaut[50:110, 50:110])), "image/png"),
             "image": ("i.png", encode(np.ascontiguousarray(astronaut[:200, :200])), "image/png")}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    checked = 0
    with make_client(method="ncc") as client:
        for name, option, value in CASES:
            if option in SERVER_OWNED or (isinstance(value, float) and not np.isfinite(value)):
                continue  # JSON has no NaN; server-owned options are refused by name (tested elsewhere)
            r = client.post("/v1/match", files=files,
                            data={"method": name, "options": json.dumps({option: value})})
            assert r.status_code == 422, (name, option, value, r.text)
            assert r.json()["error"] in ("bad_option", "unavailable_method"), r.text
            checked += 1
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert checked > 80 and grown_mb < 400, (checked, grown_mb)
