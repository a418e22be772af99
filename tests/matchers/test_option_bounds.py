"""Every option that multiplies work is bounded (numbers by a maximum, lists by their length,
a scales x rotations grid by a budget), checked before any work: InputError from the API, exit
code 2 from the CLI, 422 from the service."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tmatch
from tests.matchers.base import option_tables
from tmatch.errors import InputError
from tmatch.matchers.options import MAX_VALUES, MAX_VARIANTS

#: numeric options that do not multiply work (thresholds, ratios): a bound is not needed.
UNBOUNDED_OK = {"sure", "threshold", "presence_threshold", "consistency", "ratio"}




def test_every_integer_option_has_a_maximum():
    missing = [f"{n}.{o.name}" for n, table in option_tables() for o in table.values()
               if o.type is int and o.high is None]
    assert missing == []


def test_every_list_option_has_a_length_limit():
    for _, table in option_tables():
        for o in table.values():
            if o.type is tuple:
                assert 1 <= o.max_len <= MAX_VALUES


# name, options, what the message names; values past the bounds found by the trial
PAST = [
    ("ncc", {"scales": (0.5, 2.0), "steps": 10**9}, "steps must be in"),
    ("neural", {"threads": 100000}, "threads must be in"),
    ("neural-local", {"min_side": 10**9}, "min_side must be in"),
    ("neural", {"rotations": [float(a % 360) for a in range(360 * 30)]}, "at most 72"),
    ("neural", {"rotations": [float(a) for a in range(0, 360, 5)], "scales": [1.0 + i / 100 for i in range(10)]},
     "template variants"),
    ("neural-local", {"max_points": 10**8}, "max_points must be in"),
    ("sift", {"nfeatures": 10**9}, "nfeatures must be in"),
    ("hybrid", {"ecc_side": 10**6}, "ecc_side must be in"),
    ("hybrid", {"work_side": 10**7}, "work_side must be in"),
]


@pytest.mark.parametrize("name, options, message", PAST)
def test_past_the_bounds_is_an_input_error_before_any_work(name, options, message):
    with pytest.raises(InputError, match=message):
        tmatch.load_matcher(name, **options)


@pytest.mark.parametrize("name, options", [
    ("ncc", {"scales": (0.5, 2.0), "steps": 64}),
    ("neural", {"rotations": [float(a) for a in range(0, 360, 5)], "scales": (0.8, 1.0, 1.25)}),
])
def test_at_the_bounds_is_accepted(name, options):
    m = tmatch.load_matcher(name, **options)
    if name == "neural":
        assert len(m.scales) * len(m.rotations) <= MAX_VARIANTS


@pytest.mark.parametrize("args, message", [
    (["-m", "ncc", "--scales", "0.5,2", "--steps", "1000000000"], "steps must be in"),
    (["-m", "neural", "--threads", "100000"], "threads must be in"),
    (["-m", "neural-local", "--min-side", "1000000000"], "min_side must be in"),
])
def test_the_cli_says_the_limit_with_exit_code_2(tmp_path, astronaut, args, message):
    from tmatch import io

    img = io.write_image(tmp_path / "a.png", astronaut)
    tpl = io.write_image(tmp_path / "t.png", astronaut[100:200, 100:200])
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
    code = limit + "import sys; from tmatch.cli.main import main; sys.argv = ['tmatch'] + sys.argv[1:]; main()"
    r = subprocess.run([sys.executable, "-c", code, "match", str(tpl), str(img), *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr
