"""Random SIGKILLs during bench, train, video and export; then rerun and check the outputs.

Each trial starts a verb in its own session, kills it (SIGKILL, the whole process group is
*not* signalled: only the main process, as an OOM killer or ``kill -9 PID`` would) after a
random delay within the verb's normal run time, and checks:

* no process of the killed run survives it (bench workers, the resource tracker);
* what is on disk is whole: every output at its final name is complete (videos play to the
  end with the right frame count, JSON lines parse, ONNX graphs load, a run resumes);
* after a rerun (``--resume`` for train), the result is the uninterrupted one: nothing lost,
  duplicated or torn (bench: each case exactly once, same scores as a clean run; train: one
  record per epoch; export: graphs equal to a clean export; video: every frame once).

Usage::

    python benchmarks/kill_test.py --kills 44 --seed 0 --work /tmp/kills

Prints one line per trial and a summary table (the numbers in docs/robustness.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def tmatch(*args: str | os.PathLike, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "tmatch", *map(str, args)]


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def session_pids(sid: int) -> list[int]:
    """Processes (not zombies) of session ``sid``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            found.append(int(d.name))
    return found


def kill_after(cmd: list[str], cwd: Path, delay: float) -> tuple[bool, list[int]]:
    """Start ``cmd`` in a new session, SIGKILL its main process after ``delay`` s.

    Returns ``(finished before the kill, pids of the session still alive 5 s after)``."""
    p = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        p.wait(delay)
        return True, []
    except subprocess.TimeoutExpired:
        pass
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 5
    left = session_pids(p.pid)
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = session_pids(p.pid)
    for pid in left:  # clean up so the next trial starts clean, but count them
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return False, left


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hidden_leftovers(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob(".*") if ".tmp" in p.name or p.name.endswith(".old")]


@dataclass
class Tally:
    kills: int = 0
    finished_first: int = 0
    orphans: int = 0
    torn: int = 0
    unresumable: int = 0
    lost_or_duplicated: int = 0

    def bad(self) -> int:
        return self.orphans + self.torn + self.unresumable + self.lost_or_duplicated


class Verb:
    """One verb under test: ``name``, the range of kill delays ``seconds``, a folder of its own."""

    name = ""
    seconds = (1.0, 10.0)

    def __init__(self, work: Path):
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------------- bench
class Bench(Verb):
    name = "bench"
    seconds = (2.0, 12.0)

    def __init__(self, work: Path):
        super().__init__(work)
        self.args = ["bench", "--methods", "ncc,orb", "--protocols", "seed,warp", "--limit", "8",
                     "--workers", "2", "--gallery", "0", "--no-progress"]
        ref = run(tmatch(*self.args, "--out", "ref", cwd=self.work), self.work)
        assert ref.returncode == 0, ref.stderr
        self.ref = self.records(self.work / "ref")

    @staticmethod
    def records(run_dir: Path) -> dict[tuple[str, str], tuple]:
        out: dict[tuple[str, str], tuple] = {}
        dupes = 0
        for f in (run_dir / "records").glob("*.jsonl"):
            for line in f.read_text().splitlines():
                if not line.strip():
                    continue
                r = json.loads(line)
                key = (r["method"], r["case"])
                dupes += key in out
                out[key] = (r.get("found"), round(float(r.get("iou", 0)), 6))
        if dupes:
            raise ValueError(f"{dupes} duplicated records")
        return out

    def trial(self, k: int, delay: float, t: Tally) -> str:
        out = f"run{k}"
        finished, left = kill_after(tmatch(*self.args, "--out", out, cwd=self.work), self.work, delay)
        t.orphans += bool(left)
        rerun = run(tmatch(*self.args, "--out", out, cwd=self.work), self.work)
        if rerun.returncode != 0:
            t.unresumable += 1
            return f"rerun failed: {rerun.stderr.strip()[-200:]}"
        try:
            got = self.records(self.work / out)
        except (ValueError, json.JSONDecodeError) as e:
            t.lost_or_duplicated += 1
            return f"records: {e}"
        if got != self.ref:
            t.lost_or_duplicated += 1
            return f"records differ from a clean run ({len(got)} vs {len(self.ref)})"
        shutil.rmtree(self.work / out)
        return "ok" + (f" ({len(left)} orphans)" if left else "") + (" (finished first)" if finished else "")


# ----------------------------------------------------------------------------------- train
class Train(Verb):
    name = "train"
    seconds = (3.0, 20.0)

    def __init__(self, work: Path):
        super().__init__(work)
        self.args = ["train", "smoke", "--epochs", "4", "--train-pairs", "4", "--valid-pairs", "2",
                     "--no-progress", "--threads", "1"]

    def trial(self, k: int, delay: float, t: Tally) -> str:
        out = self.work / f"run{k}"
        finished, left = kill_after(tmatch(*self.args, "--out", out, cwd=self.work), self.work, delay)
        t.orphans += bool(left)
        resumable = (out / "resume").is_dir() and any((out / "resume").iterdir()) or (out / "state.pt").exists()
        rerun = run(tmatch(*self.args, "--out", out, *(["--resume"] if resumable else ["--overwrite"]),
                           cwd=self.work), self.work)
        if rerun.returncode != 0:
            t.unresumable += 1
            return f"rerun failed: {rerun.stderr.strip()[-300:]}"
        logs = json.loads((out / "logs.json").read_text())
        epochs = [e["epoch"] for e in logs["epochs"]]
        if epochs != [0, 1, 2, 3]:
            t.lost_or_duplicated += 1
            return f"epochs in logs.json: {epochs}"
        from tmatch.models.checkpoint import load_checkpoint

        _, _, meta = load_checkpoint(out / "last.safetensors")
        if meta.get("epoch") != 3:
            t.torn += 1
            return f"last.safetensors of epoch {meta.get('epoch')}"
        shutil.rmtree(out)
        return "ok" + (" (finished first)" if finished else "") + (" resumed" if resumable else " restarted")


# ----------------------------------------------------------------------------------- export
class Export(Verb):
    name = "export"
    seconds = (2.0, 14.0)

    def __init__(self, work: Path):
        import torch

        from tmatch.models import ModelConfig, build_model
        from tmatch.models.checkpoint import save_checkpoint

        super().__init__(work)
        cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, width=16, pretrained=False)
        self.weights = []
        self.ref = []
        for s in (0, 1):
            torch.manual_seed(s)
            w = save_checkpoint(self.work / f"w{s}.safetensors", build_model(cfg, pretrained=False), cfg)
            self.weights.append(w)
            r = run(tmatch("export", "--weights", w, "--out", f"ref{s}", "--no-check", cwd=self.work), self.work)
            assert r.returncode == 0, r.stderr
            self.ref.append({p.name: sha(p) for p in (self.work / f"ref{s}").iterdir()})

    def state(self, out: Path) -> int | None:
        """Which clean export ``out`` equals (0 or 1), None when absent; raises when torn."""
        if not out.exists():
            return None
        files = {p.name: sha(p) for p in out.iterdir()}
        for s, ref in enumerate(self.ref):
            if files == ref:
                return s
        raise ValueError(f"{out} is neither export: {sorted(files)}")

    def trial(self, k: int, delay: float, t: Tally) -> str:
        out = self.work / "out"
        old = k % 2  # re-export over the other weights' export
        if self.state(out) != old:
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(self.work / f"ref{old}", out)
        new = 1 - old
        cmd = tmatch("export", "--weights", self.weights[new], "--out", out, "--no-check", cwd=self.work)
        finished, left = kill_after(cmd, self.work, delay)
        t.orphans += bool(left)
        try:
            seen = self.state(out)
        except ValueError as e:
            t.torn += 1
            return str(e)
        r = run(cmd, self.work)
        if r.returncode != 0:
            t.unresumable += 1
            return f"rerun failed: {r.stderr.strip()[-200:]}"
        if self.state(out) != new:
            t.torn += 1
            return "rerun left another export"
        left_hidden = hidden_leftovers(self.work)
        if left_hidden:
            t.torn += 1
            return f"hidden leftovers after the rerun: {left_hidden}"
        return f"ok (killed with the {'new' if seen == new else 'old' if seen == old else 'no'} export in place)"


# ----------------------------------------------------------------------------------- video
class Video(Verb):
    name = "video"
    seconds = (2.5, 7.0)
    frames = 120

    def __init__(self, work: Path):
        import cv2

        from tmatch.data.clips import synthetic_clip

        super().__init__(work)
        (self.work / "frames").mkdir(parents=True, exist_ok=True)
        clip = synthetic_clip(n_frames=self.frames, size=(360, 480), seed=0)
        for i, f in enumerate(clip.frames):
            cv2.imwrite(str(self.work / "frames" / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        tpl = cv2.resize(clip.template, (80, 80))
        cv2.imwrite(str(self.work / "t.png"), cv2.cvtColor(tpl, cv2.COLOR_RGB2BGR))

    def check(self, video: Path, jsonl: Path) -> str | None:
        import cv2

        if video.exists():
            cap = cv2.VideoCapture(str(video))
            n = 0
            while cap.read()[0]:
                n += 1
            cap.release()
            if n != self.frames:
                return f"{video.name} has {n} frames, not {self.frames}"
        if jsonl.exists():
            rows = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
            idx = [r.get("index") for r in rows]
            if len(idx) != len(set(idx)):
                return f"{jsonl.name}: duplicated frames"
        return None

    def trial(self, k: int, delay: float, t: Tally) -> str:
        video, jsonl = self.work / f"out{k}.mp4", self.work / f"out{k}.jsonl"
        cmd = tmatch("video", "frames", "--template", "t.png", "--method", "ncc", "--out", video.name,
                     "--jsonl", jsonl.name, cwd=self.work)
        finished, left = kill_after(cmd, self.work, delay)
        t.orphans += bool(left)
        bad = self.check(video, jsonl)
        if bad:
            t.torn += 1
            return bad
        r = run(cmd, self.work)
        if r.returncode != 0:
            t.unresumable += 1
            return f"rerun failed: {r.stderr.strip()[-200:]}"
        bad = self.check(video, jsonl)
        rows = [x for x in jsonl.read_text().splitlines() if x.strip()] if jsonl.exists() else []
        if bad or not video.exists() or len(rows) != self.frames:
            t.lost_or_duplicated += 1
            return bad or f"after the rerun: video {video.exists()}, {len(rows)} JSON lines"
        video.unlink()
        jsonl.unlink()
        return "ok" + (" (finished first)" if finished else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=44, help="total random kills (split over the verbs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tmatch-kills"))
    ap.add_argument("--verbs", default="bench,train,export,video")
    ap.add_argument("--delays", nargs=2, type=float, metavar=("LO", "HI"), default=None,
                    help="kill delay range in seconds for every verb (default: each verb's own)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: v for k, v in ENV.items() if k == "OMP_NUM_THREADS"})
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    ENV["TMATCH_CACHE"] = str(args.work / "cache")
    rng = random.Random(args.seed)
    kinds = {"bench": Bench, "train": Train, "export": Export, "video": Video}
    verbs = [v for v in args.verbs.split(",") if v]
    tallies = {v: Tally() for v in verbs}
    t0 = time.time()
    setups = {}
    for v in verbs:
        setups[v] = kinds[v](args.work)
    for k in range(args.kills):
        v = verbs[k % len(verbs)]
        verb = setups[v]
        delay = rng.uniform(*(args.delays or verb.seconds))
        t = tallies[v]
        t.kills += 1
        try:
            msg = verb.trial(k, delay, t)
        except Exception as e:  # noqa: BLE001 - a checker failure is a finding, not a crash
            t.torn += 1
            msg = f"check failed: {type(e).__name__}: {e}"
        t.finished_first += "finished first" in msg
        print(f"{k + 1:3d} {v:6s} kill at {delay:5.1f} s: {msg}", flush=True)
    print(f"\n{args.kills} kills in {time.time() - t0:.0f} s (seed {args.seed})")
    print("| verb | kills | finished before the kill | orphan processes | torn outputs | "
          "unresumable | lost or duplicated |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for v, t in tallies.items():
        print(f"| {v} | {t.kills} | {t.finished_first} | {t.orphans} | {t.torn} | {t.unresumable} | "
              f"{t.lost_or_duplicated} |")
    bad = sum(t.bad() for t in tallies.values())
    print(f"\nfailures: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
