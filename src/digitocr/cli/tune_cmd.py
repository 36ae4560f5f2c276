"""`digitocr tune`: flags -> TuneConfig -> digitocr.tune.tune() -> a line per trial, a summary (or JSON)."""

from __future__ import annotations

import argparse

from digitocr.cli.common import add_data_dir, add_json, info, positive_float, positive_int, print_json
from digitocr.config import DEVICES, PRUNERS, TrainConfig, TuneConfig
from digitocr.errors import DigitOCRError
from digitocr.tune.space import MODEL_SPACES


def register(subparsers) -> None:
    defaults = TuneConfig()
    parser = subparsers.add_parser(
        "tune",
        help="search hyperparameters with Optuna (validation accuracy only)",
        description="Search learning rate, batch size, optimiser, depth and width, dropout, weight decay, label "
        "smoothing and schedule, maximising validation accuracy; prune weak trials; retrain the best "
        "configuration on all training images and report its test accuracy once. The study is "
        "stored (default: a SQLite file under --out): run the same command again to resume it, or "
        "run it in several processes or machines with one --storage URL to search together.",
    )
    parser.add_argument(
        "--model",
        default=defaults.model,
        help=f"architecture to tune: {' | '.join(MODEL_SPACES)} (default {defaults.model})",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=defaults.trials,
        help=f"finished trials the study should reach, all workers together (default {defaults.trials})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=defaults.timeout,
        metavar="SECONDS",
        help=f"start no new trial after this long (default {defaults.timeout:g})",
    )
    parser.add_argument(
        "--max-epochs",
        type=positive_int,
        default=defaults.max_epochs,
        help=f"epochs of each trial (default {defaults.max_epochs})",
    )
    parser.add_argument("--pruner", choices=PRUNERS, default=defaults.pruner)
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage, e.g. sqlite:///tune.db or postgresql://user:pass@host/db (default: sqlite under --out)",
    )
    parser.add_argument("--study", metavar="NAME", help="study name (default digitocr-MODEL)")
    parser.add_argument(
        "--heartbeat",
        type=positive_int,
        default=defaults.heartbeat,
        metavar="SECONDS",
        help="a running trial marks itself alive this often; one silent for twice as long (its worker was killed) "
        f"is marked failed and runs again (default {defaults.heartbeat})",
    )
    parser.add_argument(
        "--out", default=defaults.out, metavar="DIR", help=f"where results go (default {defaults.out}/)"
    )
    parser.add_argument(
        "--no-final",
        dest="final",
        action="store_false",
        help="skip the final retrain (extra workers of a shared study)",
    )
    add_data_dir(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split and of every trial (default 0)")
    parser.add_argument(
        "--device", default=defaults.base.device, help=f"{' | '.join(DEVICES)} (default {defaults.base.device})"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for this process (several workers on one machine: cores / workers)",
    )
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        import optuna
    except ModuleNotFoundError:
        raise DigitOCRError(
            "`digitocr tune` needs Optuna, which is not installed (pip install 'digitocr[tune]')"
        ) from None
    import torch

    from digitocr.tune import check_model, describe_trial, tune

    if args.threads:
        torch.set_num_threads(args.threads)
    # The progress lines below say what Optuna's own log would, one line per trial.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    base = TrainConfig().with_settings(data_dir=args.data_dir, seed=args.seed, device=args.device)
    config = TuneConfig(
        model=args.model,
        trials=args.trials,
        timeout=args.timeout,
        max_epochs=args.max_epochs,
        storage=args.storage,
        study=args.study,
        out=args.out,
        pruner=args.pruner,
        final=args.final,
        heartbeat=args.heartbeat,
        base=base,
    )
    config.validate()
    check_model(config.model)
    info(
        f"study {config.study_name()!r} in {config.storage_url()}: up to {config.trials} trials "
        f"of {config.max_epochs} epochs, timeout {config.timeout:g} s"
    )
    result = tune(config, on_trial=lambda study, trial: info(describe_trial(study, trial)), log=info)
    if args.json:
        print_json(result.summary())
        return 0
    counts = ", ".join(f"{count} {state.lower()}" for state, count in result.counts.items())
    print(
        f"{result.n_trials} trials ({counts}); best: trial {result.best_trial}, "
        f"validation {result.best_val_accuracy:.2%}"
    )
    print("best parameters: " + ", ".join(f"{k}={v}" for k, v in result.best_params.items()))
    if config.final:
        print(
            f"retrained on all training images in {result.final_seconds:.0f} s: "
            f"test accuracy {result.test_accuracy:.2%}, model {result.files['model']}"
        )
    print(f"config: {result.files['config']} (use: digitocr train --config {result.files['config']})")
    print(
        f"trials: {result.files['trials_csv']}; plots: "
        + ", ".join(str(path) for name, path in result.files.items() if name.startswith("plot_"))
    )
    return 0
