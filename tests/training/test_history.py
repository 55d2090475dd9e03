from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pilotfish.training.history import (
    RepoError,
    Span,
    added_spans,
    file_changes,
    first_parent_commits,
    open_repo,
)

DIFF = """diff --git a/a.py b/a.py
index 1..2 100644
--- a/a.py
+++ b/a.py
@@ -3,0 +4,2 @@ def f():
+    x = 1
+    y = 2
@@ -10 +12 @@
-old
+new
@@ -20,3 +22,0 @@
-gone
diff --git a/b.py b/b.py
deleted file mode 100644
--- a/b.py
+++ /dev/null
@@ -1 +0,0 @@
-x
diff --git a/c.py b/c.py
new file mode 100644
--- /dev/null
+++ b/c.py
@@ -0,0 +1,3 @@
+a
+b
+c
"""


def test_added_spans_parses_zero_context_hunks() -> None:
    spans = added_spans(DIFF)
    assert spans == {
        "a.py": [Span(start=3, end=5), Span(start=11, end=12)],
        "c.py": [Span(start=0, end=3)],
    }


def test_walks_first_parent_history_oldest_first(make_repo, history) -> None:
    root, commit = make_repo()
    history(commit, n=4)
    repo = open_repo(root)
    commits = first_parent_commits(repo)
    assert [c.message for c in commits] == ["start", "add scaled_1", "add scaled_2", "add scaled_3"]
    assert commits[0].parent is None and commits[1].parent == commits[0].sha
    assert [c.message for c in first_parent_commits(repo, max_commits=2)] == [
        "add scaled_2",
        "add scaled_3",
    ]
    # The root commit's spans are its whole new files (supported languages only).
    changes = list(file_changes(repo, commits[0]))
    assert [c.path for c in changes] == ["pkg/geometry.py"]
    assert changes[0].spans == (Span(start=0, end=5),)
    later = list(file_changes(repo, commits[3]))
    geometry = next(c for c in later if c.path == "pkg/geometry.py")
    lines = geometry.text.split("\n")
    added = [lines[i] for s in geometry.spans for i in range(s.start, s.end)]
    assert "def scaled_3(value, factor=3):" in added
    assert "def scaled_2(value, factor=2):" not in added


def test_merge_commits_are_walked_by_first_parent(make_repo, run_git) -> None:
    git = run_git
    root, commit = make_repo()
    commit({"a.py": "x = 1\n"}, "one")
    git(root, "checkout", "-q", "-b", "side")
    commit({"b.py": "y = 2\n"}, "side work")
    git(root, "checkout", "-q", "main")
    commit({"a.py": "x = 1\nz = 3\n"}, "two")
    git(root, "merge", "-q", "--no-ff", "side", "-m", "merge side")
    repo = open_repo(root)
    messages = [c.message for c in first_parent_commits(repo)]
    assert messages == ["one", "two", "merge side"]
    merge = first_parent_commits(repo)[-1]
    # Against its first parent, the merge brings in b.py.
    assert [c.path for c in file_changes(repo, merge)] == ["b.py"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such directory"),
        ("plain", "not a git repository"),
        ("empty", "has no commits"),
        ("detached", "HEAD is detached"),
        ("shallow", "shallow clone"),
    ],
)
def test_bad_repositories_get_one_clear_error(
    tmp_path: Path, make_repo, run_git, setup: str, message: str
) -> None:
    git = run_git
    target = tmp_path / "target"
    if setup == "plain":
        target.mkdir()
    elif setup == "empty":
        target.mkdir()
        git(target, "init", "-q")
    elif setup == "detached":
        root, commit = make_repo()
        commit({"a.py": "x = 1\n"}, "one")
        commit({"a.py": "x = 2\n"}, "two")
        git(root, "checkout", "-q", "HEAD~1")
        target = root
    elif setup == "shallow":
        root, commit = make_repo()
        commit({"a.py": "x = 1\n"}, "one")
        commit({"a.py": "x = 2\n"}, "two")
        subprocess.run(
            ["git", "clone", "-q", "--depth", "1", f"file://{root}", str(target)], check=True
        )
    with pytest.raises(RepoError, match=message):
        open_repo(target)
