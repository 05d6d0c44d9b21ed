"""`truthset import` as a user runs it (the real console script, in a subprocess) against a live
server: every format, a folder of images, re-imports, --no-wait, and bad input of every kind
answered in a line or a report, never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

SPEC = {
    "fields": [{"name": "text", "type": "text"}],
    "questions": [{"name": "sentiment", "type": "label", "options": ["pos", "neg"]}],
}
IMAGE_SPEC = {
    "fields": [{"name": "photo", "type": "image"}],
    "questions": [{"name": "kind", "type": "label", "options": ["cat", "dog"]}],
}
TRUTHSET = str(Path(sys.executable).with_name("truthset"))


def cli(live: Any, *args: str) -> tuple[int, str]:
    """Run the console script; its exit status and everything it printed (stdout and stderr)."""
    done = subprocess.run(
        [TRUTHSET, *args, "--url", live.url, "--api-key", live.api_key],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    return done.returncode, " ".join(output.split())


def new_project(live: Any, name: str, spec: dict[str, Any] = SPEC) -> str:
    with live.client() as client:
        return client.projects.create(name, spec=spec).id


def texts(live: Any, project_id: str) -> list[str]:
    with live.client() as client:
        return sorted(t.data["text"] for t in client.tasks.list(project_id=project_id))


def png(colour: str, size: tuple[int, int] = (4, 3)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def test_each_format_imports_and_a_second_import_adds_nothing(live: Any, tmp_path: Path) -> None:
    project = new_project(live, "cli formats")
    files = {
        "a.jsonl": "".join(json.dumps({"data": {"text": f"jsonl {i}"}}) + "\n" for i in range(3)),
        "b.json": json.dumps([{"data": {"text": "json 1"}}, {"data": {"text": "json 2"}}]),
        "c.csv": 'text,metadata.tags\ncsv 1,"[""x""]"\ncsv 2,\n',
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    pq.write_table(pa.table({"text": ["parquet 1", "parquet 2"], "label": [0, 1]}), tmp_path / "d.parquet")
    ls = [{"id": 1, "data": {"text": "ls 1"}, "annotations": [{"result": []}]}]
    (tmp_path / "e.json").write_text(json.dumps(ls))
    expected = {"a.jsonl": 3, "b.json": 2, "c.csv": 2, "d.parquet": 2, "e.json": 1}
    for name, created in expected.items():
        extra = ["--format", "label-studio"] if name == "e.json" else []
        code, output = cli(live, "import", str(tmp_path / name), "--project", project, *extra)
        assert code == 0 and f"created {created}, existing 0, invalid 0" in output, output
        code, output = cli(live, "import", str(tmp_path / name), "--project", project, *extra)
        assert code == 0 and f"created 0, existing {created}, invalid 0" in output, output
    assert len(texts(live, project)) == 10


def test_a_folder_of_images_and_no_wait(live: Any, tmp_path: Path) -> None:
    project = new_project(live, "cli images", IMAGE_SPEC)
    folder = tmp_path / "photos"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.png").write_bytes(png("red"))
    (folder / "b.png").write_bytes(png("blue", (7, 5)))
    code, output = cli(live, "import", str(folder), "--project", project)
    assert code == 0 and "created 2" in output, output
    with live.client() as client:
        sizes = sorted((t.metadata["file"], t.metadata["width"]) for t in client.tasks.list(project_id=project))
    assert sizes == [("b.png", 7), ("cats/a.png", 4)]
    code, output = cli(live, "import", str(folder), "--project", project, "--no-wait")
    assert code == 0 and "import job" in output and "truthset jobs show" in output, output
    job_id = output.split("import job ")[1].split()[0]
    code, output = cli(live, "jobs", "show", job_id, "--wait")
    assert code == 0 and '"existing": 2' in output, output


def test_bad_input_in_every_format_is_a_report_or_a_line_never_a_traceback(live: Any, tmp_path: Path) -> None:
    project = new_project(live, "cli bad input")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_bytes(b"text,priority\nfine,1\nbroken,x\ntoo,many,cells\n")
    code, output = cli(live, "import", str(bad_csv), "--project", project)
    assert code == 2 and "line 3:" in output and "line 4:" in output and "nothing was stored" in output, output
    code, output = cli(live, "import", str(bad_csv), "--project", project, "--on-error", "skip")
    assert code == 2 and "created 1" in output and "invalid 2" in output, output
    assert texts(live, project) == ["fine"]

    bad_json = tmp_path / "bad.json"
    bad_json.write_text('[{"data": {"text": "a"}}, {"data": ')
    code, output = cli(live, "import", str(bad_json), "--project", project)
    assert code == 1 and "not valid JSON" in output, output

    bad_parquet = tmp_path / "bad.parquet"
    bad_parquet.write_bytes(b"PAR1 this is not parquet")
    code, output = cli(live, "import", str(bad_parquet), "--project", project)
    assert code == 1 and "not a Parquet file" in output, output

    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK\x03\x04 not a zip")
    images = new_project(live, "cli bad zip", IMAGE_SPEC)
    code, output = cli(live, "import", str(bad_zip), "--project", images)
    assert code == 1 and "not a zip archive" in output, output
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("../../etc/evil.png", png("red"))
    code, output = cli(live, "import", str(slip), "--project", images)
    assert code == 1 and "zip-slip" in output, output

    unknown = tmp_path / "tasks.xml"
    unknown.write_text("<tasks/>")
    code, output = cli(live, "import", str(unknown), "--project", project)
    assert code == 1 and "cannot tell the format" in output, output
    assert texts(live, project) == ["fine"]
