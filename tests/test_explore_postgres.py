"""Two worker processes run one study on a real PostgreSQL server (Optuna's distributed mode).

The server is throwaway: Debian's postgresql (installed here if missing and we are root), initdb into a
temporary folder, listening on 127.0.0.1 on a free port, stopped and deleted afterwards. Without root and
without the package the test skips with a hint; under CI it fails instead, since CI must run it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from mnist_core.explore import study as studies

ROOT = Path(__file__).resolve().parent.parent
# 8 points for 4 trials: a drawn repeat is skipped (not trained) and needs an untried point to go to
TINY_FLAGS = ["--blocks", "0", "--layers", "1", "--dense", "8,16,32,64", "--rate", "0.003,0.01", "--train-limit",
              "2000", "--train-epochs", "1"]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _install_postgresql() -> Path:
    if _pg_bin() is None:
        if os.geteuid() != 0:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is missing and this CI run is not root: cannot install it")
            pytest.skip("PostgreSQL missing: run 'sudo apt-get install postgresql' to enable this test")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True, check=True)
    return _pg_bin()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = _install_postgresql()
    base = Path(tempfile.mkdtemp(prefix="mnist-pg-"))  # not under pytest's root-only tmp: postgres must reach it
    data, port = base / "data", _free_port()
    as_postgres = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(base, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]

    def pg(*cmd: str) -> None:
        subprocess.run([*as_postgres, *cmd], check=True, capture_output=True, timeout=120)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "start",
           "-o", f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off")
        pg(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "lab")
        yield f"postgresql://postgres@127.0.0.1:{port}/lab"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_one_postgres_study(postgres_url):
    out = subprocess.run([sys.executable, "-m", "mnist_core", "explore", "--study", "pg", "--storage", postgres_url,
                          "--trials", "4", "--workers", "2", *TINY_FLAGS],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "best: trial" in out.stdout

    study = studies.load_study("pg", studies.open_storage(postgres_url))
    n = len(study.trials)  # 4 trained, and any repeats a sampler drew, skipped
    assert sorted(t.number for t in study.trials) == list(range(n))  # unique, none lost
    trained = [t for t in study.trials if studies.DUPLICATE_OF not in t.user_attrs]
    assert len(trained) == 4 and len({tuple(sorted(t.params.items())) for t in trained}) == 4
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trained)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both processes took trials

    import psycopg  # the rows as PostgreSQL itself holds them

    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*), count(DISTINCT number) FROM trials").fetchone() == (n, n)
    assert studies.list_studies(studies.open_storage(postgres_url))[0]["trials"] == n
