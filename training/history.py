"""Git history: check a repository, walk first-parent commits, find the lines each added."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git

from ..code_index.languages import LANGUAGE_BY_SUFFIX

log = logging.getLogger(__name__)

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class RepoError(Exception):
    """The repository cannot be trained on; the message says why in one line."""


@dataclass(frozen=True, kw_only=True)
class Commit:
    """One commit of the first-parent history."""

    sha: str
    parent: str | None
    time: int  # committer time, seconds since the epoch
    author: str
    email: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Span:
    """Lines a commit added or changed in one file, 0-based and end-exclusive, post-commit."""

    start: int
    end: int


@dataclass(frozen=True, kw_only=True)
class FileChange:
    """A supported file a commit touched, with its post-commit text and its added spans."""

    commit: Commit
    path: str  # repository-relative, POSIX
    text: str
    spans: tuple[Span, ...]


def supported(path: str) -> bool:
    """Whether completions are served for this file (the server's language table)."""
    return Path(path).suffix.lower() in LANGUAGE_BY_SUFFIX


def open_repo(root: Path) -> git.Repo:
    """Open ``root`` as a trainable repository or raise :class:`RepoError` saying why not."""
    try:
        repo = git.Repo(root)
    except git.NoSuchPathError:
        raise RepoError(f"{root}: no such directory") from None
    except git.InvalidGitRepositoryError:
        raise RepoError(f"{root}: not a git repository (run `git init` or pass --repo)") from None
    if repo.bare:
        raise RepoError(f"{root}: is a bare repository; train on a checkout")
    if (Path(repo.git_dir) / "shallow").exists():
        raise RepoError(
            f"{root}: is a shallow clone; fetch the history first (`git fetch --unshallow`)"
        )
    try:
        repo.head.commit  # noqa: B018 - raises on an empty history
    except ValueError:
        raise RepoError(f"{root}: has no commits yet") from None
    if repo.head.is_detached:
        raise RepoError(
            f"{root}: HEAD is detached; check out a branch (`git switch <branch>`) first"
        )
    return repo


def first_parent_commits(
    repo: git.Repo, *, rev: str = "HEAD", max_commits: int = 0, since: str = ""
) -> list[Commit]:
    """First-parent history of ``rev``, oldest first; ``max_commits`` keeps the newest ones."""
    kwargs: dict[str, object] = {"first_parent": True}
    if max_commits > 0:
        kwargs["max_count"] = max_commits
    if since:
        kwargs["since"] = since
    commits = [
        Commit(
            sha=c.hexsha,
            parent=c.parents[0].hexsha if c.parents else None,
            time=int(c.committed_date),
            author=str(c.author.name or ""),
            email=str(c.author.email or ""),
            message=str(c.message).strip(),
        )
        for c in repo.iter_commits(rev, **kwargs)  # pyright: ignore[reportArgumentType]
    ]
    commits.reverse()
    return commits


def added_spans(diff_text: str) -> dict[str, list[Span]]:
    """Per post-commit path, the line spans a zero-context unified diff adds."""
    spans: dict[str, list[Span]] = {}
    current: str | None = None
    for line in diff_text.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            current = target[2:] if target.startswith("b/") else None
            if current is not None:
                spans.setdefault(current, [])
            continue
        match = _HUNK.match(line)
        if match and current is not None:
            start = int(match.group(1))
            count = int(match.group(2)) if match.group(2) is not None else 1
            if count > 0:
                spans[current].append(Span(start=start - 1, end=start - 1 + count))
    return spans


def file_changes(
    repo: git.Repo, commit: Commit, *, max_file_bytes: int = 1_000_000
) -> Iterator[FileChange]:
    """The supported files ``commit`` added lines to, against its first parent."""
    base = commit.parent or EMPTY_TREE
    diff = repo.git.diff(
        base, commit.sha, "--unified=0", "--no-color", "--no-renames", "--no-ext-diff"
    )
    tree = repo.commit(commit.sha).tree
    for path, spans in added_spans(diff).items():
        if not spans or not supported(path):
            continue
        try:
            blob = tree / path
        except KeyError:
            continue
        if blob.size > max_file_bytes:
            continue
        data: bytes = blob.data_stream.read()
        text = decode_text(data)
        if text is None:
            continue
        yield FileChange(commit=commit, path=path, text=text, spans=tuple(spans))


def decode_text(data: bytes) -> str | None:
    """UTF-8 text, or ``None`` for binary or undecodable content."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def files_at(repo: git.Repo, sha: str, *, max_file_bytes: int = 1_000_000) -> dict[str, str]:
    """Every supported text file of the tree at ``sha``, by repository-relative path."""
    out: dict[str, str] = {}
    for item in repo.commit(sha).tree.traverse():
        if not isinstance(item, git.Blob) or not supported(str(item.path)):
            continue
        if item.size > max_file_bytes:
            continue
        text = decode_text(item.data_stream.read())
        if text is not None:
            out[str(item.path)] = text
    return out


def remote_url(repo: git.Repo) -> str:
    """The ``origin`` remote's URL, or an empty string."""
    try:
        return str(repo.remotes.origin.url)
    except (AttributeError, IndexError, ValueError):
        return ""
