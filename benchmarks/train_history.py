"""Train and gate an adapter on a real history: a library's released sdists committed in order.

    python benchmarks/train_history.py --package more-itertools --time-budget 30m --max-eval 30

Downloads the sdists (``pip download --no-binary``), commits the package folder of each release
into a scratch repository, runs ``python -m pilotfish.training train`` on it and prints the
four-condition table from the run's report. Extra arguments after ``--`` go to training.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def _version_key(name: str) -> tuple[int, ...]:
    match = re.search(r"-(\d+(?:\.\d+)*)\.tar\.gz$", name)
    return tuple(int(x) for x in match.group(1).split(".")) if match else ()


def build_history(package: str, versions: list[str], work: Path) -> Path:
    sdists = work / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    for v in versions:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(sdists),
                f"{package}=={v}",
            ],
            check=False,
        )
    module = package.replace("-", "_")
    repo = work / package
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    for n, archive in enumerate(
        sorted(sdists.glob("*.tar.gz"), key=lambda p: _version_key(p.name))
    ):
        subprocess.run(["rm", "-rf", module], cwd=repo, check=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if f"/{module}/" in m.name]
            for m in members:
                m.name = m.name.split("/", 1)[1]
            tar.extractall(repo, members=members, filter="data")
        date = f"2023-{n // 28 + 1:02d}-{n % 28 + 1:02d}T12:00:00"
        env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "PATH": "/usr/bin:/bin"}
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(
            [
                "git",
                "-c",
                "user.name=rel",
                "-c",
                "user.email=rel@example.com",
                "commit",
                "-q",
                "-m",
                f"{package} {archive.name}",
            ],
            cwd=repo,
            env=env,
            check=True,
        )
    return repo


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", default="more-itertools")
    parser.add_argument(
        "--versions",
        default="8.13.0,8.14.0,9.0.0,9.1.0,10.0.0,10.1.0,10.2.0,"
        "10.3.0,10.4.0,10.5.0,10.6.0,10.7.0,10.8.0,11.0.0,11.0.1,11.0.2,11.1.0,"
        "11.2.0",
    )
    parser.add_argument("--repo", type=Path, default=None, help="use this history instead")
    parser.add_argument("--time-budget", default="30m")
    parser.add_argument("--max-eval", default="30")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    repo = args.repo or build_history(args.package, args.versions.split(","), work)
    data = work / "data"
    started = time.monotonic()
    code = subprocess.call(
        [
            sys.executable,
            "-m",
            "pilotfish.training",
            "train",
            "--repo",
            str(repo),
            "--data-dir",
            str(data),
            "--name",
            "bench",
            "--time-budget",
            args.time_budget,
            "--max-eval",
            args.max_eval,
            *args.extra,
        ]
    )
    print(f"wall time {time.monotonic() - started:.0f} s, exit {code}")
    report = data / "adapters" / "bench" / "report.json"
    if report.is_file():
        data_ = json.loads(report.read_text())
        for name, metrics in data_["evaluation"]["conditions"].items():
            print(name, {k: round(v, 1) for k, v in metrics.items()})
        print(json.dumps(data_["evaluation"]["gate"], indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
