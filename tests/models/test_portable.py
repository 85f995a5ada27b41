"""Champions that run anywhere (issue 18 item 3): the logged model is self-contained.

A model logged by :func:`models.pyfunc.log_pyfunc` is loaded and run in a fresh
Python 3.11 venv that holds only the model's own ``requirements.txt`` (installed
with uv from the registry or its cache), from a working directory outside the
repository and with ``python -I``, so neither Sunflower nor the repository is
importable: its predictions equal the in-process ones. The same venv then serves
the model with ``mlflow models serve --env-manager local`` on 127.0.0.1 and
answers one request with the same numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from models.predictor import CalibratedBooster
from models.pyfunc import log_pyfunc, model_requirements

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"
FEATURES = [f"f{i}" for i in range(6)]


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


@pytest.fixture(scope="module")
def predictor() -> CalibratedBooster:
    rng = np.random.default_rng(18)
    X = rng.normal(size=(600, len(FEATURES)))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=600) > 0.5).astype(int)
    params = {"objective": "binary", "max_depth": 3, "num_leaves": 8, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=30)
    return CalibratedBooster(booster, 0.9, -0.1, FEATURES)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(25, len(FEATURES))), columns=FEATURES)
    frame.loc[3, "f2"] = np.nan
    frame.insert(0, "person_id", [f"P{i:03d}" for i in range(25)])  # ignored by the model
    return frame


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, predictor: CalibratedBooster) -> Path:
    """The model as logged to a throwaway MLflow store, downloaded to a plain folder."""
    tmp = tmp_path_factory.mktemp("portable")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.create_experiment("portable", artifact_location=(tmp / "art").as_uri())
        with mlflow.start_run(experiment_id=exp):
            info = log_pyfunc(predictor)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=info.model_uri, dst_path=str(tmp / "model"), tracking_uri=uri
        )
    finally:
        mlflow.set_tracking_uri(before)
    return Path(local)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """A fresh venv with nothing but the model's requirements.txt."""
    python = shutil.which("python3.11")
    if python is None or not UV.exists():
        pytest.fail("python3.11 and .venv/bin/uv are needed (make setup)")
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([python, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--python", str(env_dir / "bin" / "python"),
         "-r", str(model_dir / "requirements.txt")],
        check=True,
        timeout=900,
    )  # fmt: skip
    return env_dir


def clean_env() -> dict[str, str]:
    """The environment without anything that points back at the repository."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "SUNFLOWER_HOME", "MLFLOW_TRACKING_URI"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_the_logged_model_carries_its_code_and_the_locks_pins(model_dir: Path) -> None:
    code = model_dir / "code"
    assert (code / "models" / "pyfunc.py").is_file()
    assert (code / "models" / "predictor.py").is_file()
    assert not (code / "features").exists() and not (code / "serving").exists()
    assert not list(code.rglob("__pycache__"))
    logged = [
        line
        for line in (model_dir / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert logged == model_requirements()
    lock = lock_pins()
    pins = dict(line.split("==") for line in logged)
    assert {"mlflow", "lightgbm", "numpy", "pandas", "scipy"} <= set(pins)
    assert {name: v for name, v in pins.items() if lock.get(name) != v} == {}
    assert "sunflower" not in pins and "duckdb" not in pins


def test_a_fresh_venv_with_only_the_models_requirements_predicts_the_same(
    tmp_path: Path, model_dir: Path, venv: Path, predictor: CalibratedBooster, rows: pd.DataFrame
) -> None:
    rows.to_csv(tmp_path / "rows.csv", index=False)
    script = f"""
import importlib.util, json, sys
import mlflow.pyfunc, pandas as pd
unavailable = [m for m in ("models", "features", "serving", "sunflower")
               if importlib.util.find_spec(m) is not None]
model = mlflow.pyfunc.load_model({str(model_dir)!r})
frame = pd.read_csv("rows.csv", dtype={{"person_id": str}})
p = [float(x) for x in model.predict(frame)]
print(json.dumps({{"p": p, "importable_before": unavailable,
                  "models_from": sys.modules["models.pyfunc"].__file__}}))
"""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", script],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["importable_before"] == []
    assert result["models_from"].startswith(str(model_dir / "code"))
    expected = predictor.predict(rows[FEATURES].to_numpy(dtype=np.float64))
    np.testing.assert_allclose(result["p"], expected, rtol=0, atol=1e-12)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, model_dir: Path, venv: Path) -> Iterator[str]:
    port = free_port()
    # As if the venv were activated: mlflow starts `uvicorn` from PATH.
    env = clean_env() | {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("mlflow models serve did not start:\n" + (tmp_path / "serve.log")
                            .read_text()[-3000:])  # fmt: skip
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_mlflow_models_serve_in_the_clean_venv_answers_the_same(
    served: str, predictor: CalibratedBooster, rows: pd.DataFrame
) -> None:
    frame = rows[FEATURES].fillna(0.0)
    body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    request = urllib.request.Request(
        f"{served}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        answer = json.loads(r.read())
    expected = predictor.predict(frame.to_numpy(dtype=np.float64))
    np.testing.assert_allclose(answer["predictions"], expected, rtol=0, atol=1e-12)
