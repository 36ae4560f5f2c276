"""`digitocr tune`: real Optuna studies on real MNIST subsets — parallel workers, resume, divergence, round trip."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from postgres import DATABASE, createdb

optuna = pytest.importorskip("optuna")

from digitocr.config import ModelConfig, TrainConfig, TuneConfig  # noqa: E402
from digitocr.errors import ConfigError  # noqa: E402
from digitocr.models import MODELS  # noqa: E402
from digitocr.presets import preset_config  # noqa: E402
from digitocr.tune import (  # noqa: E402
    MODEL_SPACES,
    OPTIMIZER_RANGES,
    TRAINING_SPACES,
    check_model,
    counted_trials,
    default_params,
    open_study,
    trial_config,
    tune,
)
from digitocr.tune.study import with_driver  # noqa: E402

README = Path(__file__).parents[1] / "README.md"
# Workers on a PostgreSQL server run `digitocr tune` itself, as on each machine of the README: on all of MNIST,
# one epoch a trial and one thread a worker, 6 trials take the two workers 10-33 s together on the 2-core EPYC.
POSTGRES_TRIALS = 6
# s: a killed worker's trial is failed once silent for two of these (Optuna's grace period), so the test waits
# seconds rather than the two minutes of the default; only one worker runs at a time there, so none is failed early.
KILL_HEARTBEAT = 1
WORKER_TIMEOUT = 300  # s: one worker's whole search; 33 s at most measured, under load

# A worker as a user would run one, on the first images of each split so a trial takes about a second.
WORKER = textwrap.dedent("""
    import faulthandler, signal, sys, pathlib, torch
    import optuna
    from digitocr.config import TuneConfig
    from digitocr.data import MNISTData, Split, load_mnist
    from digitocr.tune import describe_trial, tune

    out, trials, go = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
    torch.set_num_threads(1)
    faulthandler.register(signal.SIGUSR1)  # a test that finds it stuck asks where
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    full = load_mnist(log=lambda message: None)
    part = lambda split, n: Split(split.images[:n], split.labels[:n])
    data = MNISTData(train=part(full.train, 2000), val=part(full.val, 500), test=full.test, sha256=full.sha256)
    print("ready", flush=True)
    while not go.exists():  # start together, so both workers really share the study
        pass
    tune(TuneConfig(trials=trials, max_epochs=2, out=out, final=False), data=data,
         on_trial=lambda study, trial: print(describe_trial(study, trial), flush=True))
""")


def start_worker(out: Path, trials: int, go: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(out), str(trials), str(go)],
        cwd=out,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_ready(worker: subprocess.Popen) -> None:
    line = worker.stdout.readline()
    assert line.strip() == "ready", worker.stderr.read()


@pytest.fixture(scope="module")
def mnist_subset(mnist_root):
    """2,000 training and 500 validation images of real MNIST (the test split is the full one)."""
    from digitocr.data import MNISTData, Split, load_mnist

    full = load_mnist(log=lambda message: None)
    part = lambda split, n: Split(split.images[:n], split.labels[:n])  # noqa: E731
    return MNISTData(train=part(full.train, 2000), val=part(full.val, 500), test=full.test, sha256=full.sha256)


# Fast: the search space and the settings.


@pytest.mark.parametrize("model", sorted(set(MODEL_SPACES) & set(MODELS)))
def test_every_search_space_gives_valid_train_configs(model):
    study = optuna.create_study(direction="maximize")
    for _ in range(5):
        trial = study.ask()
        config = trial_config(trial, TuneConfig(model=model, max_epochs=3))
        assert config.model.name == model and config.epochs == 3 and config.patience == 0
        assert config.optimizer in (("adam",) if model in TRAINING_SPACES else tuple(OPTIMIZER_RANGES))
        study.tell(trial, 0.5)


def test_first_trial_is_digitocr_train_defaults():
    """A new study starts from `digitocr train`'s settings, so the search can only improve on them."""
    config = trial_config(optuna.trial.FixedTrial(default_params("mlp")), TuneConfig(max_epochs=TrainConfig().epochs))
    assert config == TrainConfig()


def test_a_line_study_starts_from_the_line_models_fast_preset_on_as_many_lines():
    fast = preset_config("line")
    config = trial_config(optuna.trial.FixedTrial(default_params("line")), TuneConfig(model="line", max_epochs=3))
    # The trials leave the test lines alone: only the final retrain reads them, on the base's number.
    assert config == dataclasses.replace(
        fast, epochs=3, lines=dataclasses.replace(fast.lines, test_lines=TrainConfig().lines.test_lines)
    )


def test_unknown_or_missing_model_is_a_clear_error():
    with pytest.raises(ConfigError, match="no search space"):
        check_model("transformer")
    if "cnn" not in MODELS:
        with pytest.raises(ConfigError, match="not available"):
            check_model("cnn")


def test_cli_errors_are_one_line(tmp_path, capsys):
    from digitocr.cli import main

    assert main(["tune", "--storage", "nosuchdialect://x/y", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("digitocr: error: cannot open Optuna storage")
    if "cnn" not in MODELS:
        assert main(["tune", "--model", "cnn", "--out", str(tmp_path)]) == 1
        assert (
            capsys.readouterr().err.strip()
            == "digitocr: error: model 'cnn' is not available in this version of digitocr (models: mlp)"
        )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"trials": 0}, "trials"),
        ({"max_epochs": 0}, "epochs"),
        ({"pruner": "asha"}, "pruner"),
        ({"base": TrainConfig(data=TrainConfig().data.__class__(val_size=0))}, "validation"),
    ],
)
def test_bad_settings_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        TuneConfig(**settings).validate()


def test_unreachable_storage_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot open Optuna storage"):
        open_study(TuneConfig(storage="nosuchdialect://x/y", out=str(tmp_path)))


def test_plain_postgresql_url_names_an_installed_driver(monkeypatch):
    """SQLAlchemy 2.1 reads postgresql:// as psycopg 3, 2.0 as psycopg2: digitocr names the one installed."""
    installed = set()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object() if name in installed else None)
    url = "postgresql://tuner@db.example:5432/optuna"
    assert with_driver(url) == url  # neither: left to SQLAlchemy, whose error names the missing module
    installed.add("psycopg2")
    assert with_driver(url) == "postgresql+psycopg2://tuner@db.example:5432/optuna"
    installed.add("psycopg")
    assert with_driver(url) == "postgresql+psycopg://tuner@db.example:5432/optuna"
    assert with_driver("postgresql+pg8000://tuner@db/optuna") == "postgresql+pg8000://tuner@db/optuna"  # as asked
    assert with_driver("sqlite:///tune.db") == "sqlite:///tune.db"


def test_missing_postgresql_driver_names_the_extra(tmp_path, monkeypatch, capsys):
    from digitocr.cli import main

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed (import fails, find_spec gives None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    url = "postgresql://postgres@127.0.0.1:5439/optuna"
    assert main(["tune", "--storage", url, "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"digitocr: error: cannot open Optuna storage {url}: psycopg is not installed "
        "(pip install 'digitocr[tune-postgres]')"
    )


# Slow: real studies on real MNIST.


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tmp_path):
    trials = 8
    open_study(TuneConfig(out=str(tmp_path)))  # create the database once, as the README says
    go = tmp_path / "go"
    workers = [start_worker(tmp_path, trials, go) for _ in range(2)]
    for worker in workers:
        wait_ready(worker)
    go.touch()
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err for _, err in outputs]

    check_shared_study(open_study(TuneConfig(out=str(tmp_path))), trials, [out for out, _ in outputs])


def check_shared_study(study, trials: int, printed: list[str]) -> None:
    """Two workers finished ``trials`` together, each trial once; ``printed``: what each worker wrote."""
    numbers = [trial.number for trial in study.trials]
    assert len(numbers) == len(set(numbers))
    # Together, not twice: N, or one more when both finished a trial at the same moment and each started another.
    assert trials <= len(counted_trials(study)) <= trials + 1
    assert all(trial.state.is_finished() for trial in study.trials)
    assert len({trial.user_attrs["worker"] for trial in study.trials}) == 2  # both workers ran trials
    # Each worker printed a progress line for the trials it ran, and only for those.
    lines = [line for text in printed for line in text.splitlines() if line.startswith("trial")]
    assert sorted(int(line.split()[1]) for line in lines) == sorted(numbers)


def postgres_worker(url: str, study: str, *flags: str) -> list[str]:
    """One machine's `digitocr tune` on a shared PostgreSQL study, as the README shows it."""
    return [
        "digitocr", "tune", "--storage", url, "--study", study, "--trials", str(POSTGRES_TRIALS),
        "--max-epochs", "1", "--no-final", "--threads", "1", *flags,
    ]  # fmt: skip


def start_postgres_worker(folder: Path, command: list[str]) -> subprocess.Popen:
    """``command`` in a folder of its own (its --out), like a worker on a machine of its own."""
    folder.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", *command], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_readme_shows_the_postgresql_commands_the_tests_run():
    readme = " ".join(README.read_text().replace("\\\n", " ").split())
    assert "pip install -e '.[tune-postgres]'" in readme
    assert shlex.join(createdb(5432, DATABASE)) in readme
    assert shlex.join(postgres_worker("postgresql://postgres@127.0.0.1:5432/optuna", "mlp-shared")) in readme
    assert "--heartbeat" in readme


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url, mnist_root):
    command = postgres_worker(postgres_url, "two-workers")
    started = time.perf_counter()
    workers = [start_postgres_worker(tmp_path / f"machine{index}", command) for index in range(2)]
    outputs = [worker.communicate(timeout=WORKER_TIMEOUT) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err for _, err in outputs]
    print(f"two workers on PostgreSQL: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    # Each worker's progress lines are on its stderr, the summary on stdout.
    study = open_study(TuneConfig(storage=postgres_url, study="two-workers"))
    check_shared_study(study, POSTGRES_TRIALS, [err for _, err in outputs])


@pytest.mark.slow
def test_worker_killed_mid_trial_its_trial_runs_again(tmp_path, postgres_url, mnist_root):
    """SIGKILL leaves the trial "running"; once its heartbeat is two intervals old, the next worker to start a
    trial marks it failed and runs its parameters again, and the study ends with all its trials counted."""
    command = postgres_worker(postgres_url, "killed", "--heartbeat", str(KILL_HEARTBEAT))
    study = open_study(TuneConfig(storage=postgres_url, study="killed"))
    worker = start_postgres_worker(tmp_path / "machine0", command)
    deadline = time.monotonic() + WORKER_TIMEOUT
    finished, training = [], []  # training: running, with all its parameters ("config" is set once they are drawn)
    while not (finished and training) and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # a trial trains for 1 s or more: one seen starting to train is still training at the kill
        trials = study.get_trials(deepcopy=False)  # one look, so a trial is not seen running and then finished
        finished = [trial for trial in trials if trial.state.is_finished()]
        training = [trial for trial in trials if trial.state.name == "RUNNING" and "config" in trial.user_attrs]
    worker.kill()
    _, err = worker.communicate()
    assert len(training) == 1 and len(counted_trials(study)) < POSTGRES_TRIALS, err
    killed = training[0].number
    assert study.trials[killed].state.name == "RUNNING", err  # killed mid-trial: nobody told the storage
    time.sleep(2 * KILL_HEARTBEAT + 1)  # its last heartbeat is now older than the grace period

    replacement = start_postgres_worker(tmp_path / "machine1", command)
    _, err = replacement.communicate(timeout=WORKER_TIMEOUT)
    assert replacement.returncode == 0, err
    trials = study.trials
    assert trials[killed].state.name == "FAIL" and "error" not in trials[killed].user_attrs  # failed, not counted
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    counted = {t.number for t in counted_trials(study)}
    assert len(retries) == 1 and retries[0].number in counted, err  # finished: complete, pruned or diverged
    assert retries[0].params == trials[killed].params  # the same parameters, run again
    assert len(counted) == POSTGRES_TRIALS
    assert all(trial.state.is_finished() for trial in trials)
    print(f"killed trial {killed}: failed, run again as trial {retries[0].number}", file=sys.stderr)


@pytest.mark.slow
def test_interrupted_study_resumes(tmp_path, mnist_subset):
    study = open_study(TuneConfig(out=str(tmp_path)))
    go = tmp_path / "go"
    go.touch()
    worker = start_worker(tmp_path, 1000, go)  # far more trials than it gets to run
    wait_ready(worker)
    deadline = time.monotonic() + 120
    while len(counted_trials(study)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    # Ctrl-C. One stops the worker (within 2 s in 8 tries at random moments, between trials too); press again
    # while it is still running, as a user would, before calling it stuck.
    for _ in range(3):
        worker.send_signal(signal.SIGINT)
        try:
            out, err = worker.communicate(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        worker.send_signal(signal.SIGUSR1)
        time.sleep(1)
        worker.kill()
        out, err = worker.communicate()
        pytest.fail(f"the worker ignored Ctrl-C:\n{out}\n{err}")
    assert worker.returncode != 0, out + err
    done_before = {t.number: t.params for t in counted_trials(study)}
    assert len(done_before) >= 2, out + err
    assert not (tmp_path / "trained_model.ckpt").exists()  # the trial's Ctrl-C checkpoint is cleaned up

    trials = len(done_before) + 2
    result = tune(TuneConfig(trials=trials, max_epochs=2, out=str(tmp_path), final=False), data=mnist_subset)

    study = open_study(TuneConfig(out=str(tmp_path)))
    counted = counted_trials(study)
    assert result.n_trials == len(counted) == trials
    assert {t.number: t.params for t in counted if t.number in done_before} == done_before  # kept, not redone
    interrupted = [t for t in study.trials if t.state.name == "FAIL" and "error" not in t.user_attrs]
    for trial in interrupted:  # a trial cut short by Ctrl-C runs again (enqueued with the parameters it had)
        assert any(t.user_attrs.get("retry_of") == trial.number for t in study.trials)


@pytest.mark.slow
def test_diverging_trial_is_failed_and_the_search_goes_on(tmp_path, mnist_subset):
    settings = TuneConfig(trials=3, max_epochs=1, out=str(tmp_path), final=False)
    study = open_study(settings)
    with pytest.warns(UserWarning, match="out of range"):  # Optuna says so about the absurd learning rate
        study.enqueue_trial({"optimizer": "sgd", "sgd_lr": 1e6, "batch_size": 128})
        lines = []
        result = tune(settings, data=mnist_subset, on_trial=lambda study, trial: lines.append(trial))
    states = [trial.state.name for trial in lines]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]  # too few trials for the median pruner to prune
    assert "loss became" in lines[0].user_attrs["error"]
    assert result.counts["FAIL"] == 1 and result.n_trials == 3
    assert result.best_trial != lines[0].number


def tiny_space(trial, settings: TuneConfig) -> TrainConfig:
    """A search space whose models train on all of MNIST in about a second: for the round trip only."""
    return TrainConfig(
        model=ModelConfig(hidden=(trial.suggest_categorical("width", [16, 32]),)),
        epochs=settings.max_epochs,
        optimizer="sgd",
        batch_size=512,
        lr=trial.suggest_float("sgd_lr", 0.05, 0.3, log=True),
    )


@pytest.mark.slow
def test_best_config_round_trips_into_train(tmp_path, mnist_subset):
    out = tmp_path / "tuning"
    result = tune(TuneConfig(trials=3, max_epochs=1, out=str(out)), data=mnist_subset, space=tiny_space)
    config_path = out / "best_config.json"
    assert result.files["config"] == config_path
    for name in ("trials.csv", "history.png", "lr.png", "importances.png", "best_model.pth"):
        assert (out / name).stat().st_size > 0, name
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + 3

    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "digitocr",
            "train",
            "--config",
            str(config_path),
            "--out",
            str(tmp_path / "m.pth"),
            "--quiet",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.splitlines()[-1])
    assert TrainConfig.from_dict(summary["config"]) == TrainConfig.from_json(config_path) == result.best_config
    assert summary["config"]["data"]["val_size"] == 0  # the final run uses all 60,000 training images
    # The same settings give the same model, so `train --config` reproduces the test accuracy tune reported.
    assert summary["test_accuracy"] == pytest.approx(result.test_accuracy, abs=2e-3)
