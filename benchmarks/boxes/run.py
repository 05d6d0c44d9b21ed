"""Boxes in the browser: the time from Submit to the next image task ready, on 2,000 x 1,500 images.

    .venv/bin/python benchmarks/boxes/run.py [--tasks 40] [--width 2000] [--height 1500] [--no-wait]

Starts ``truthset serve`` on 127.0.0.1 (``benchmarks/platform/run.py``'s Server) on a fresh SQLite
database, uploads ``--tasks`` distinct JPEG photos-like images made with Pillow (noise over
gradients, so that they neither compress to nothing nor decode in no time), and opens the annotator
workbench in Debian's Chromium (Playwright drives it). For every task it draws one box with the
mouse, waits until the workbench has the next task prefetched (``data-prefetch="ready"``: an
annotator takes seconds to draw, the prefetch well under one; ``--no-wait`` submits at once
instead), then measures inside the page, from the Submit click to the next task on screen with its
image decoded (``img.decode()`` resolved) and one frame painted. Prints every figure, the median and
the p95. A benchmark, not a test: nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from run import Server

from truthset.schemas import MemberCreate, ProjectCreate
from truthset.services import accounts, projects
from truthset.storage import Database, upgrade

EMAIL, PASSWORD = "annotator@bench.example", "annotator-password-123"
SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "objects", "type": "boxes", "field": "photo", "labels": ["car", "person"]}],
}
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

#: In the page: click Submit, then wait for the next task, its image decoded and a frame painted.
MEASURE = """async () => {
  const form = document.getElementById('task');
  const before = form.dataset.task;
  const started = performance.now();
  document.getElementById('submit').click();
  await new Promise((resolve) => {
    const done = () => form.dataset.task !== before && !form.hidden;
    if (done()) return resolve();
    new MutationObserver((_, observer) => { if (done()) { observer.disconnect(); resolve(); } })
      .observe(form, { attributes: true, attributeFilter: ['data-task', 'hidden'] });
  });
  const image = document.querySelector('[data-question="objects"] img.shape-image');
  await image.decode();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return performance.now() - started;
}"""


def photo(seed: int, width: int, height: int) -> bytes:
    """A JPEG that looks like a photo to a codec: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=85)
    return out.getvalue()


def set_up(url: str) -> tuple[str, str]:
    """An organization, an annotator, a boxes project; returns (owner API key, project id)."""
    upgrade(url)
    db = Database(url)
    try:
        created = accounts.init_organization(db, "Bench", "owner@bench.example")
        owner = accounts.authenticate(db, created["api_key"])
        accounts.add_member(db, owner, MemberCreate(email=EMAIL, name="Ann", role="annotator", password=PASSWORD))
        project = projects.create_project(db, owner, ProjectCreate(name="boxes bench", spec=SPEC))
    finally:
        db.dispose()
    return created["api_key"], project["id"]


def upload(server_url: str, key: str, project_id: str, tasks: int, width: int, height: int) -> int:
    """One distinct image per task (uploaded media); returns the mean image size in bytes."""
    sizes = []
    with httpx.Client(base_url=f"{server_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        for i in range(tasks):
            image = photo(i, width, height)
            sizes.append(len(image))
            media = http.post("/media", files={"file": (f"photo-{i}.jpg", image, "image/jpeg")})
            media.raise_for_status()
            task = http.post(f"/projects/{project_id}/tasks", json={"data": {"photo": f"media:{media.json()['id']}"}})
            task.raise_for_status()
    return int(statistics.fmean(sizes))


def measure(server_url: str, project_id: str, tasks: int, wait: bool) -> list[float]:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    timings: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=server_url, viewport={"width": 1280, "height": 900})
        page.goto("/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda u: "/login" not in u)
        page.goto(f"/projects/{project_id}/label")
        for _ in range(tasks - 1):  # the last task has no next one
            image = page.locator('[data-question="objects"] img.shape-image')
            expect(image).to_be_visible()
            expect(page.locator(".shape-stage")).to_have_attribute("data-ready", "true")
            box = image.bounding_box()
            page.mouse.move(box["x"] + 20, box["y"] + 20)
            page.mouse.down()
            page.mouse.move(box["x"] + 120, box["y"] + 90, steps=5)
            page.mouse.up()
            if wait:
                expect(page.locator("#workbench")).to_have_attribute("data-prefetch", "ready", timeout=30_000)
            timings.append(float(page.evaluate(MEASURE)))
            print(f"  {len(timings)}: {timings[-1]:.0f} ms", flush=True)
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--no-wait", dest="wait", action="store_false", help="submit without waiting for the prefetch")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="truthset-boxes-bench-"))
    url = f"sqlite:///{data_dir / 'truthset.db'}"
    key, project_id = set_up(url)
    server = Server(data_dir, url)
    try:
        size = upload(server.url, key, project_id, args.tasks, args.width, args.height)
        print(f"{args.tasks} tasks, {args.width} x {args.height} JPEG images of {size / 1024:.0f} KiB on average")
        timings = measure(server.url, project_id, args.tasks, args.wait)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print("submit -> next task ready (ms):", " ".join(f"{t:.0f}" for t in timings))
    summary: dict[str, Any] = {
        "submits": len(timings),
        "median_ms": round(statistics.median(timings), 1),
        "p95_ms": round(float(np.percentile(timings, 95)), 1),
        "max_ms": round(max(timings), 1),
        "waited_for_prefetch": args.wait,
    }
    print(summary)


if __name__ == "__main__":
    main()
