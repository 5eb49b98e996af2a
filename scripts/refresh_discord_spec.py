"""Re-vendor Discord's OpenAPI spec at a commit of discord/discord-api-spec, and pin that commit.

    python scripts/refresh_discord_spec.py COMMIT
        downloads specs/openapi.json and LICENSE from raw.githubusercontent.com at COMMIT (a full hash, or a
        branch such as main, resolved through GitHub's API);
    python scripts/refresh_discord_spec.py [COMMIT] --from GIT_DIR
        reads them from a clone (bare or not) at COMMIT (default HEAD);
    python scripts/refresh_discord_spec.py COMMIT --from FILE [--date ISO_DATE]
        copies an openapi.json already downloaded (the LICENSE beside it, if any, else the vendored one).

The spec is written byte for byte; SOURCE.json and README.md beside it name the repository, the commit and
its date. Then run tests/fake/test_spec*.py: a new spec may need an erratum (testing/spec_errata.py).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = "discord/discord-api-spec"
SPEC_PATH = "specs/openapi.json"
TARGET = Path(__file__).resolve().parent.parent / "flask_discord_roles" / "testing" / "discord_spec"
FULL_HASH = re.compile(r"^[0-9a-f]{40}$")

README = """\
# Discord's OpenAPI spec, vendored

`openapi.json` is `{path}` of <https://github.com/{repository}>, byte for byte, at commit
`{commit}` ({date}). `LICENSE` is that repository's licence (MIT, Discord).

FakeDiscord holds every exchange to it when `check_spec` or `strict_spec` is on (see
`docs/fake-discord-spec.md`), with the corrections listed in `flask_discord_roles/testing/spec_errata.py`.

Do not edit these files: refresh them with `python scripts/refresh_discord_spec.py COMMIT`.
"""


class RefreshError(Exception):
    """The spec could not be fetched or read; nothing was written."""


@dataclass(frozen=True)
class Fetched:
    spec: bytes
    licence: bytes | None
    commit: str
    date: str


def _git(git_dir: Path, *args: str) -> bytes:
    git = shutil.which("git")
    if git is None:
        raise RefreshError("reading a clone needs git on PATH")
    try:
        # The arguments are a path and a commit given on our own command line, never a shell string.
        command = [git, "--git-dir", str(git_dir), *args]
        return subprocess.run(command, check=True, capture_output=True).stdout  # noqa: S603
    except subprocess.CalledProcessError as exc:
        raise RefreshError(f"git {' '.join(args)}: {exc.stderr.decode().strip()}") from None


def from_git(path: Path, commit: str) -> Fetched:
    git_dir = path / ".git" if (path / ".git").is_dir() else path
    full = _git(git_dir, "rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
    return Fetched(
        spec=_git(git_dir, "show", f"{full}:{SPEC_PATH}"),
        licence=_git(git_dir, "show", f"{full}:LICENSE"),
        commit=full,
        date=_git(git_dir, "log", "-1", "--format=%cI", full).decode().strip(),
    )


def from_file(path: Path, commit: str, date: str | None) -> Fetched:
    if not FULL_HASH.match(commit):
        raise RefreshError("with --from FILE, give the full 40-character commit the file comes from")
    licence_file = path.parent / "LICENSE"
    return Fetched(
        spec=path.read_bytes(),
        licence=licence_file.read_bytes() if licence_file.is_file() else None,
        commit=commit,
        date=date or "unknown",
    )


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (a fixed https URL)
        data: bytes = answer.read()
        return data


def from_github(commit: str) -> Fetched:
    about = json.loads(_download(f"https://api.github.com/repos/{REPOSITORY}/commits/{commit}"))
    full = about["sha"]
    raw = f"https://raw.githubusercontent.com/{REPOSITORY}/{full}"
    return Fetched(
        spec=_download(f"{raw}/{SPEC_PATH}"),
        licence=_download(f"{raw}/LICENSE"),
        commit=full,
        date=about["commit"]["committer"]["date"],
    )


def write(fetched: Fetched, target: Path) -> None:
    try:
        document = json.loads(fetched.spec)
    except ValueError:
        raise RefreshError("that openapi.json is not JSON") from None
    if not str(document.get("openapi", "")).startswith("3.1") or "paths" not in document:
        raise RefreshError("that file is not an OpenAPI 3.1 document")
    target.mkdir(parents=True, exist_ok=True)
    (target / "openapi.json").write_bytes(fetched.spec)
    if fetched.licence is not None:
        (target / "LICENSE").write_bytes(fetched.licence)
    source = {
        "repository": f"https://github.com/{REPOSITORY}",
        "commit": fetched.commit,
        "date": fetched.date,
        "path": SPEC_PATH,
    }
    (target / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")
    readme = README.format(path=SPEC_PATH, repository=REPOSITORY, commit=fetched.commit, date=fetched.date)
    (target / "README.md").write_text(readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "commit", nargs="?", help="a commit of discord/discord-api-spec (default HEAD with --from)"
    )
    parser.add_argument(
        "--from", dest="source", type=Path, help="a clone's git directory, or an openapi.json"
    )
    parser.add_argument("--date", help="the commit's date, with --from FILE")
    parser.add_argument("--to", type=Path, default=TARGET, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.source is None:
            if not args.commit:
                parser.error("name the commit to vendor (or --from a local copy)")
            fetched = from_github(args.commit)
        elif args.source.is_dir():
            fetched = from_git(args.source, args.commit or "HEAD")
        else:
            fetched = from_file(args.source, args.commit or "", args.date)
        write(fetched, args.to)
    except (RefreshError, OSError) as exc:
        print(f"refresh_discord_spec: {exc}", file=sys.stderr)
        return 1
    print(f"vendored {REPOSITORY}@{fetched.commit} ({fetched.date}) into {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
