"""``tmatch serve`` at the command line: help, and one-line errors with exit code 2 (checked
in-process with the ``run`` fixture; one real subprocess checks the script itself)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tmatch_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "tmatch", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _one_line_error(r, expected: str) -> None:
    assert r.exit_code == 2, (r.output, r.stderr)
    assert "Traceback" not in r.stderr and expected in r.stderr, r.stderr


def test_help_lists_the_options(run):
    out = run("serve", "--help").output
    for opt in ("--host", "--port", "--method", "--workers", "--token", "--queue", "--max-mb",
                "--head-timeout", "--body-timeout", "--max-connections", "--weights-for"):
        assert opt in out


def test_unknown_method_is_one_line_and_exit_2_from_the_script():
    r = tmatch_cli("serve", "--method", "magic", "--port", "0")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown matcher 'magic'" in r.stderr


def test_port_in_use_is_one_line_and_exit_2(run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("serve", "--method", "sift", "--port", str(port))
    _one_line_error(r, f"cannot listen on 127.0.0.1:{port}")
    assert r.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("args, expected", [(["--workers", "0"], "--workers"), (["--port", "70000"], "--port"),
                                            (["--max-mb", "0"], "--max-mb"), (["--log-level", "loud"], "--log-level")])
def test_bad_numbers_are_refused_naming_the_option(run, args, expected):
    _one_line_error(run("serve", "--method", "sift", *args), expected)


def test_doctests_of_the_service_pass():
    import doctest

    import tmatch.serve
    import tmatch.serve.app
    import tmatch.serve.config
    import tmatch.serve.errors
    import tmatch.serve.images
    import tmatch.serve.options
    import tmatch.serve.templates

    for mod in (tmatch.serve, tmatch.serve.app, tmatch.serve.config, tmatch.serve.errors,
                tmatch.serve.images, tmatch.serve.options, tmatch.serve.templates):
        result = doctest.testmod(mod)
        assert result.failed == 0, mod.__name__


def test_method_without_weights_is_one_line_and_exit_2():
    import tmatch
    from tmatch.errors import CheckpointError

    try:
        tmatch.load_matcher("dual-unet")
        pytest.skip("dual-unet weights are installed here")
    except CheckpointError:
        pass
    r = tmatch_cli("serve", "--method", "dual-unet", "--port", "0")
    assert r.returncode == 2 and r.stderr.startswith("error: no trained weights")
    assert "--weights-for dual-unet=PATH" in r.stderr  # serve's own option, not match's --weights


def test_the_service_defaults_to_the_library_default():
    """One default everywhere: `tmatch match`, `load_matcher` and `tmatch serve` (issue 23 item 6)."""
    import inspect

    from tmatch.cli.serve import serve_cmd
    from tmatch.registry import DEFAULT_MATCHER
    from tmatch.serve import ServeConfig

    assert ServeConfig().method == DEFAULT_MATCHER == "hybrid"
    assert inspect.signature(serve_cmd).parameters["method"].default == DEFAULT_MATCHER


@pytest.mark.parametrize("item, expected", [
    ("dual-unet=/no/such.safetensors", "weights file not found"),
    ("dual-unet", "takes METHOD=PATH"),
    ("magic=tmatch/weights/neural.safetensors", "unknown matcher 'magic'"),
    ("dual-unet=tmatch/weights/neural.safetensors", "dual-unet"),  # the weights of another matcher
])
def test_bad_weights_for_is_one_line_and_exit_2_before_the_server_starts(run, item, expected):
    r = run("serve", "--method", "sift", "--port", "0", "--weights-for", item)
    _one_line_error(r, expected)
    assert r.stderr.strip().count("\n") == 0
