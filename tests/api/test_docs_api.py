"""docs/api.md: every curl example runs, in order, against the in-process app; every route is documented.

An example is a ```sh block with a ``curl`` command, followed by ``<!-- expect STATUS; NAME = json.path -->``
(the expected status, and values to capture as shell variables for the next examples). A ```jsonl NAME
block defines a file that ``--data-binary @NAME`` sends; ``-F file=@x.png`` sends a small PNG.
"""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path
from typing import Any

from .helpers import PNG, Api, Org, api_routes

DOC = Path(__file__).parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```(?:\s*<!--\s*expect\s+(.*?)\s*-->)?", re.S)


def _expand(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"docs/api.md uses ${name} before setting it"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def _run_curl(api: Api, command: str, variables: dict[str, str], files: dict[str, bytes]) -> Any:
    args = [_expand(a, variables) for a in shlex.split(command.replace("\\\n", " "))]
    assert args[0] == "curl", command
    method, url, headers, kwargs = None, None, {}, {}
    it = iter(args[1:])
    for arg in it:
        if arg in ("-s", "-i"):
            continue
        if arg == "-X":
            method = next(it)
        elif arg == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-binary"):
            data = next(it)
            kwargs["content"] = files[data[1:]] if data.startswith("@") else data.encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif arg == "-F":
            field, _, name = next(it).partition("=@")
            kwargs["files"] = {field: (name, PNG if name.endswith(".png") else files[name])}
        elif arg == "-u":
            headers["Authorization"] = "Basic " + base64.b64encode(next(it).encode()).decode()
        elif arg == "-o":
            next(it)
        else:
            assert not arg.startswith("-"), f"the docs test does not know curl option {arg}"
            url = arg
    assert url is not None
    method = method or ("POST" if kwargs else "GET")
    return api.request(method, url, headers=headers, **kwargs)


def test_every_curl_example_in_docs_api_md_works(api: Api, org: Org) -> None:
    variables = {"TRUTHSET_URL": "http://testserver", "TRUTHSET_API_KEY": org.owner.api_key}
    files: dict[str, bytes] = {}
    ran = 0
    for language, info, body, expect in BLOCK.findall(DOC.read_text()):
        if language == "jsonl" and info.strip():
            files[info.strip()] = body.encode()
            continue
        if language != "sh" or not body.lstrip().startswith("curl"):
            continue
        assert expect, f"a curl example without <!-- expect ... -->: {body}"
        status, *captures = [part.strip() for part in expect.split(";")]
        response = _run_curl(api, body.strip(), variables, files)
        assert response.status_code == int(status), f"{body}\n-> {response.status_code} {response.text}"
        for capture in captures:
            name, _, path = (p.strip() for p in capture.partition("="))
            value: Any = response.json()
            for key in path.split("."):
                value = value[key]
            variables[name] = str(value)
        ran += 1
    assert ran >= 15


def test_every_route_is_documented(api: Api) -> None:
    text = DOC.read_text()
    missing = [str(r) for r in api_routes(api.app) if f"`{r.method} {r.path}`" not in text]
    assert not missing, f"document these routes in docs/api.md: {missing}"
