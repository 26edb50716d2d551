"""Response bodies recorded from the real GitHub API (github3.py's betamax cassettes, see fixtures/README)."""

from __future__ import annotations

import base64
import functools
import gzip
import json
from pathlib import Path
from typing import Any

CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "github" / "api-cassettes"
RECORDED_API = "https://api.github.com"


@functools.lru_cache(maxsize=64)
def _recorded(name: str, method: str, path_suffix: str) -> str:
    data = json.loads((CASSETTES / f"{name}.json").read_text())
    for interaction in data["http_interactions"]:
        request, body = interaction["request"], interaction["response"]["body"]
        if request["method"] == method and request["uri"].split("?")[0].endswith(path_suffix):
            if body.get("base64_string"):
                return gzip.decompress(base64.b64decode(body["base64_string"])).decode()
            return str(body.get("string", ""))
    raise LookupError(f"{name}: no recorded {method} …{path_suffix}")


def recorded(name: str, method: str, path_suffix: str, recorded_repo: str, repo: str, base_url: str) -> Any:
    """A recorded body, moved to ``repo`` on the fake server at ``base_url`` (its links included)."""
    text = _recorded(name, method, path_suffix)
    text = text.replace(f"{RECORDED_API}/repos/{recorded_repo}", f"{base_url}/repos/{repo}")
    text = text.replace(RECORDED_API, base_url).replace(recorded_repo, repo)
    return json.loads(text)
