"""``tmatch.screen.locate`` speed and hits on 1920x1080 screens: icons of 24-64 px cut from
drawn screens (tmatch.data.text_ui, random panels, buttons and text), searched as captured (1x)
and as captured on a 2x display (the crop drawn at twice its size), one thread.

    python benchmarks/bench_screen.py --screens 6

Prints, per icon size and capture scale: found with the right box (IoU >= 0.5), the median
time of ``locate`` (display factors 0.5-2), and single-scale ``cv2.matchTemplate`` (pyautogui's
method) in the same run for the ratio. Flat crops (grey std < 12) and crops repeated on the
screen (a second place with NCC >= 0.95: no single right answer) are skipped.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from tmatch import geometry, screen
from tmatch.data.text_ui import render_ui
from tmatch.threads import limit_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screens", type=int, default=6)
    ap.add_argument("--per-screen", type=int, default=4)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    rows: dict[tuple[int, float], list] = {}
    with limit_threads(1):
        for _ in range(args.screens):
            shot = render_ui(rng, (1080, 1920))
            gray = cv2.cvtColor(shot, cv2.COLOR_RGB2GRAY)
            for side in (24, 32, 48, 64):
                done = 0
                for _ in range(200):
                    if done == args.per_screen:
                        break
                    x, y = int(rng.integers(0, 1920 - side)), int(rng.integers(0, 1080 - side))
                    crop = shot[y:y + side, x:x + side]
                    if cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).std() < 12:
                        continue
                    r = geometry.ncc_map(gray, cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))
                    r[max(0, y - side // 2):y + side // 2 + 1, max(0, x - side // 2):x + side // 2 + 1] = -1
                    if float(r.max()) >= 0.95:  # the crop is repeated on the screen: no one right answer
                        continue
                    done += 1
                    truth = geometry.rect_polygon(x, y, side, side)
                    for cap in (1.0, 2.0):
                        tpl = crop if cap == 1.0 else cv2.resize(crop, (2 * side, 2 * side), interpolation=cv2.INTER_CUBIC)
                        t0 = time.perf_counter()
                        m = screen.locate(tpl, screenshot=shot)
                        dt = time.perf_counter() - t0
                        ok = m is not None and geometry.polygon_iou(m.polygon, truth) >= 0.5
                        t0 = time.perf_counter()
                        e = screen.locate(tpl, screenshot=shot, exhaustive=True)
                        dt_e = time.perf_counter() - t0
                        ok_e = e is not None and geometry.polygon_iou(e.polygon, truth) >= 0.5
                        t0 = time.perf_counter()
                        cv2.matchTemplate(gray, cv2.cvtColor(tpl, cv2.COLOR_RGB2GRAY), cv2.TM_CCOEFF_NORMED)
                        single = time.perf_counter() - t0
                        rows.setdefault((side, cap), []).append((ok, dt, single, ok_e, dt_e))
    print("| icon | captured at | cases | right box: locate / exhaustive | median ms: locate / exhaustive "
          "| single-scale matchTemplate ms |")
    print("|---|---|---|---|---|---|")
    for (side, cap), r in sorted(rows.items()):
        ok, ok_e = np.mean([v[0] for v in r]), np.mean([v[3] for v in r])
        print(f"| {side} px | {cap:g}x | {len(r)} | {ok:.2f} / {ok_e:.2f} | {1000 * np.median([v[1] for v in r]):.1f} / "
              f"{1000 * np.median([v[4] for v in r]):.0f} | {1000 * np.median([v[2] for v in r]):.1f} |")


if __name__ == "__main__":
    main()
