"""The Optuna study a search runs in: its storage (shared by every worker), sampler and pruner, and its budget.

A trial counts towards the budget when it completed, was pruned or diverged; one cut short by Ctrl-C, or whose
worker was killed outright (no heartbeat for two intervals), runs again.
"""

from __future__ import annotations

import datetime
import importlib.util
import time
import warnings
from pathlib import Path

from digitocr.config import TuneConfig
from digitocr.errors import ConfigError

# TuneConfig.pruner -> (optuna, settings) -> the pruner it names; config.PRUNERS lists the same names (a test
# keeps them so) for validation and the CLI, which must not import Optuna to offer them.
PRUNERS = {
    "median": lambda optuna, settings: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    "hyperband": lambda optuna, settings: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=settings.max_epochs
    ),
    "none": lambda optuna, settings: optuna.pruners.NopPruner(),
}


# A plain postgresql:// URL means a different driver to each SQLAlchemy (psycopg2 for 2.0, psycopg 3 for 2.1):
# name the one that is installed, so the URL works with either; digitocr[tune-postgres] installs psycopg 3.
POSTGRES_DRIVERS = ("psycopg", "psycopg2")
POSTGRES_EXTRA = "pip install 'digitocr[tune-postgres]'"


def with_driver(url: str) -> str:
    """``url`` with an installed PostgreSQL driver named, when it is a plain ``postgresql://`` one."""
    if url.startswith("postgresql://"):
        for driver in POSTGRES_DRIVERS:
            if importlib.util.find_spec(driver) is not None:
                return url.replace("postgresql://", f"postgresql+{driver}://", 1)
    return url


def run_again(study, trial) -> None:
    """Enqueue a cut-short trial's parameters, so they are the next ones a worker of the study runs."""
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def open_study(settings: TuneConfig):
    """Create the study, or load it when it exists (resume; other workers)."""
    import optuna
    import sqlalchemy.exc

    url = settings.storage_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # SQLite: wait for a busy database rather than fail when several local workers write at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    storage = None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # Heartbeats: a worker killed outright leaves its trial "running"; once it has been silent for
                # two heartbeats (Optuna's default grace period), the next worker to start a trial marks it
                # failed and runs its parameters again. (Ctrl-C never lands inside Optuna: see tune.search.)
                storage = optuna.storages.RDBStorage(
                    with_driver(url),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=settings.heartbeat,
                    heartbeat_stale_trial_callback=run_again,
                )
            break
        except (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.ProgrammingError,
        ) as error:
            # Workers starting together on a new database race to create its tables: the loser tries again.
            # (PostgreSQL says so as IntegrityError or ProgrammingError: both seen with 4 workers at once.)
            if attempt == 2:
                raise ConfigError(f"cannot open Optuna storage {url}: {error}".splitlines()[0]) from None
            time.sleep(1 + attempt)
        except ImportError as error:  # a database URL whose driver is not installed
            missing = getattr(error.__cause__, "name", None) or "its driver"
            ours = url.startswith(("postgresql://", "postgresql+psycopg://"))  # what the extra installs
            install = POSTGRES_EXTRA if ours else "pip install the driver the URL names"
            raise ConfigError(f"cannot open Optuna storage {url}: {missing} is not installed ({install})") from None
        except (sqlalchemy.exc.SQLAlchemyError, ValueError) as error:
            raise ConfigError(f"cannot open Optuna storage {url}: {error}".splitlines()[0]) from None
    pruner = PRUNERS[settings.pruner](optuna, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # constant_liar: parallel workers treat each other's running trials as bad, so they spread out.
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, n_startup_trials=8)
    return optuna.create_study(
        study_name=settings.study_name(),
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )


def counted_trials(study) -> list:
    """Trials that use up the budget: complete, pruned, or failed by diverging.

    Trials stopped by Ctrl-C are failed too, but they run again, so they do not count.
    """
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name in ("COMPLETE", "PRUNED") or (t.state.name == "FAIL" and "error" in t.user_attrs)
    ]


def stop_when_budget_reached(budget: int):
    """An Optuna callback that stops this worker once the study holds ``budget`` counted trials."""
    from optuna.trial import TrialState

    started = datetime.datetime.now()

    def callback(study, trial) -> None:
        # Other workers' running trials will finish too: counting them keeps parallel workers from overshooting.
        # Only those started since this process began: an older "running" trial may be one a killed worker left.
        running = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.datetime_start and t.datetime_start >= started
        ]
        if len(counted_trials(study)) + len(running) >= budget:
            study.stop()

    return callback
