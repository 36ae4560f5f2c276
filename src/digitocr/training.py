"""The training loop: optimiser, learning-rate schedule, validation each epoch, checkpoints on Ctrl-C.

Fast because the data is one tensor in memory and batches are taken by index, not because the loop is
clever. Library code: it reports through ``TrainCallbacks`` and returns a ``History``; it prints nothing.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.adam import adam
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd

from digitocr import distributed
from digitocr.config import BLANK, LINE_STRIDE, TrainConfig
from digitocr.data import MNISTData, shuffled_batches
from digitocr.data.augment import make_augment
from digitocr.data.lines import LineBatch, batches_by_width, fixed_lines
from digitocr.ema import make_ema
from digitocr.errors import ConfigError, ModelFileError, TrainingDiverged, TrainingInterrupted
from digitocr.files import write_atomically
from digitocr.inference import accuracy, line_accuracy
from digitocr.machine import cpu_flags
from digitocr.models import reads_lines

CHECKPOINT_FORMAT = "digitocr-checkpoint"
VAL_LINES_SEED = 2  # added to the run's seed: the validation lines, fixed for a seed, never the training ones
# Training lines are drawn this many batches at a time and batched by width (``data.lines.batches_by_width``): a
# batch holds lines of similar widths, 0.87 of its columns theirs against 0.47, and a step of the line reader's
# preset took 97 ms against 159 (2-core AMD EPYC, bf16 autocast, 2026-12-04); 16 at a time took 94 ms.
POOL_BATCHES = 8


@dataclass
class EpochStats:
    epoch: int  # 1-based
    seconds: float
    train_loss: float  # mean over the epoch's batches
    val_accuracy: float  # 0-1; NaN when there is no validation split
    lr: float  # learning rate at the end of the epoch


@dataclass
class History:
    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0  # the epoch whose weights the model holds after fit()

    def to_list(self) -> list[dict]:
        return [asdict(stats) for stats in self.epochs]


class TrainCallbacks:
    """Hooks for progress display and tuning; each does nothing unless overridden."""

    def on_epoch_start(self, epoch: int, steps: int) -> None: ...

    def on_step(self, step: int, loss: float, images: int) -> None: ...

    def on_epoch_end(self, stats: EpochStats) -> None: ...  # may raise to stop training (e.g. pruning)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast: asked for, or ``auto`` on hardware with native bf16 arithmetic.

    On CPUs without it, bf16 is emulated and slower than fp32, so ``auto`` keeps fp32 there.
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(cpu_flags() & NATIVE_BF16_FLAGS)
    return False


NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # CPU flags of native bf16 arithmetic (AVX-512 BF16, AMX)


class Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW as ``config`` says: torch's functional optimisers plus their state.

    Not torch.optim's classes: their ``__init__`` and ``step`` import torch._dynamo (with sympy and
    torch.distributed.fsdp), ~1.5 s on this 2-core EPYC, as long as importing torch itself and a third of a
    default `digitocr train`. The arithmetic is torch's own (``torch.optim.sgd.sgd``, ``torch.optim.adam.adam``,
    ``torch.optim.adamw.adamw``, which skip dynamo outside torch.compile); this class keeps only what the classes
    keep, created at the first step as they do, and a test checks it matches torch.optim bit for bit.
    """

    def __init__(self, parameters, config: TrainConfig):
        self.params = [parameter for parameter in parameters if parameter.requires_grad]
        self.config = config
        self.lr = config.lr  # set before each step by the schedule
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # parameter index -> its buffers

    def zero_grad(self) -> None:
        for parameter in self.params:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        config, indices = self.config, [i for i, p in enumerate(self.params) if p.grad is not None]
        params, grads = [self.params[i] for i in indices], [self.params[i].grad for i in indices]
        if config.optimizer == "sgd":
            buffers = [self.state.get(i, {}).get("momentum_buffer") for i in indices]
            sgd(
                params,
                grads,
                buffers,
                weight_decay=config.weight_decay,
                momentum=config.momentum,
                lr=self.lr,
                dampening=0.0,
                nesterov=config.nesterov and config.momentum > 0,
                maximize=False,
            )
            if config.momentum > 0:  # sgd() filled in the buffers it created
                for i, buffer in zip(indices, buffers):
                    self.state[i] = {"momentum_buffer": buffer}
            return
        for i, parameter in zip(indices, params):  # as torch.optim.Adam: a step count on the CPU, zero moments
            if i not in self.state:
                self.state[i] = {
                    "step": torch.tensor(0.0),
                    "exp_avg": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                }
        states = [self.state[i] for i in indices]
        update = adam if config.optimizer == "adam" else adamw
        update(
            params,
            grads,
            [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [],
            [state["step"] for state in states],
            amsgrad=False,
            beta1=config.momentum,
            beta2=0.999,
            lr=self.lr,
            weight_decay=config.weight_decay,
            eps=1e-8,
            maximize=False,
        )

    def state_dict(self) -> dict:
        return {"lr": self.lr, "state": {i: dict(state) for i, state in self.state.items()}}

    def load_state_dict(self, saved: dict) -> None:
        self.lr = saved.get("lr", self.lr)  # set again by the schedule before each step anyway
        self.state = {
            int(i): {
                name: tensor.to(self.params[int(i)].device) if name != "step" else tensor
                for name, tensor in state.items()
            }
            for i, state in saved["state"].items()
        }


def make_optimizer(model: nn.Module, config: TrainConfig) -> Optimizer:
    return Optimizer(model.parameters(), config)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The schedule as a pure function of the step, so a resumed run needs no scheduler state."""
    if config.schedule == "constant":
        return config.lr
    progress = step / max(total_steps - 1, 1)
    warmup = config.warmup_fraction
    if config.schedule == "onecycle":
        # As torch's OneCycleLR: cosine up from lr/25 to lr, then cosine down to lr/25e4.
        start, end = config.lr / 25, config.lr / 25e4
        if progress < warmup:
            return _cosine_between(start, config.lr, progress / warmup)
        return _cosine_between(config.lr, end, (progress - warmup) / (1 - warmup))
    # cosine with linear warm-up
    if progress < warmup:
        return config.lr * (step + 1) / max(round(warmup * total_steps), 1)
    return _cosine_between(config.lr, 0.0, (progress - warmup) / (1 - warmup))


def _cosine_between(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * min(fraction, 1.0))) / 2


class InterruptFlag:
    """Turns the first Ctrl-C into a flag checked between steps, so a checkpoint is never taken mid-step (and, in
    a search, between trials: tune.search)."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C stops at once

    def __exit__(self, exc_type, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        # Ctrl-C after the last step, or while another exception (e.g. pruning) ends training: nothing left to
        # checkpoint, but still a stop.
        if self.raised and not (exc_type and issubclass(exc_type, (KeyboardInterrupt, TrainingInterrupted))):
            raise KeyboardInterrupt


@dataclass
class _Position:
    """Where training stands: what a checkpoint must hold to go on exactly as if never stopped."""

    epoch: int = 0  # 0-based epoch in progress
    step_in_epoch: int = 0
    epoch_generator_state: torch.Tensor | None = None  # batch-order RNG as it was when the epoch began
    loss_sum: float = 0.0


@dataclass
class _Best:
    """The best validation epoch so far: the weights the model ends with."""

    state: dict | None = None
    accuracy: float = -1.0

    def offer(self, accuracy: float, module: nn.Module) -> bool:
        """Keep ``module``'s weights if they beat the best; without a validation split (NaN) the last epoch wins."""
        if not (math.isnan(accuracy) or accuracy > self.accuracy):
            return False
        self.state, self.accuracy = copy.deepcopy(module.state_dict()), accuracy
        return True


@dataclass
class Task:
    """What ``fit`` trains a model on: the examples per epoch, their batches, the loss and the validation score
    that picks the epoch. Digits for the classifiers, lines made on the fly for the line model."""

    size: int  # training examples per epoch, all ranks together
    # (batch size, the epoch's generator, batches to skip) -> (inputs, targets) per step
    batches: Callable[[int, torch.Generator, int], Iterator[tuple[torch.Tensor, Any]]]
    loss: Callable[[torch.Tensor, Any], torch.Tensor]  # (float32 logits, targets) -> scalar
    validate: Callable[[nn.Module], float]  # higher is better; NaN without a validation split
    examples: Callable[[Any], int]  # examples in a batch's targets, for the progress bar


def make_task(data: MNISTData, config: TrainConfig, device: torch.device) -> Task:
    return (_line_task if reads_lines(config.model) else _digit_task)(data, config, device)


def _digit_task(data: MNISTData, config: TrainConfig, device: torch.device) -> Task:
    train, val = data.train.to(device), data.val.to(device)
    augment = make_augment(config.augment, config.seed)  # off by default; a resumed run draws fresh distortions

    def batches(batch_size: int, generator: torch.Generator, skip: int):
        for images, labels in shuffled_batches(train, batch_size, generator, skip=skip, shard=distributed.shard):
            yield augment(images), labels

    return Task(
        size=len(train),
        batches=batches,
        loss=lambda logits, labels: F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing),
        validate=lambda model: accuracy(model, val),
        examples=len,
    )


def _line_task(data: MNISTData, config: TrainConfig, device: torch.device) -> Task:
    """Lines drawn on the fly from the training digits, ``POOL_BATCHES`` batches at a time and batched by width;
    each pool comes from a generator seeded by the epoch's seed and the pool's first step, so a resumed run skips
    whole pools without drawing them (and draws the pool it resumes in again, skipping the batches done).
    Validation lines are drawn once, from the validation digits."""
    lines = config.lines
    val = list(fixed_lines(data.val, lines.val_lines, lines, config.seed + VAL_LINES_SEED)) if len(data.val) else []

    def batches(batch_size: int, generator: torch.Generator, skip: int):
        epoch_seed = int(torch.randint(2**62, (1,), generator=generator))
        steps = distributed.shard_size(lines.lines_per_epoch) // batch_size
        for first in range(skip - skip % POOL_BATCHES, steps, POOL_BATCHES):
            pool_generator = torch.Generator().manual_seed(
                epoch_seed + first * distributed.world_size() + distributed.rank()
            )
            pool = batches_by_width(data.train, min(POOL_BATCHES, steps - first), batch_size, lines, pool_generator)
            for step, batch in enumerate(pool, start=first):
                if step >= skip:
                    batch = batch.to(device)
                    yield batch.images, batch

    def loss(logits: torch.Tensor, batch: LineBatch) -> torch.Tensor:
        # zero_infinity: a line too cramped for its digits (fewer columns than CTC needs) teaches nothing
        # rather than stopping training with an infinite loss.
        return F.ctc_loss(
            logits.log_softmax(-1).transpose(0, 1),  # (T, N, 11)
            batch.targets,
            batch.widths // LINE_STRIDE,
            batch.lengths,
            blank=BLANK,
            zero_infinity=True,
        )

    return Task(
        size=lines.lines_per_epoch,
        batches=batches,
        loss=loss,
        validate=lambda model: line_accuracy(model, val),
        examples=len,
    )


@dataclass
class _Run:
    """What one call of ``fit`` trains with, built once: the parts every step and every checkpoint need."""

    model: nn.Module
    config: TrainConfig
    optimizer: Optimizer
    generator: torch.Generator  # the batch order's
    batch_size: int  # per rank
    steps_per_epoch: int
    bf16: bool
    checkpoint_path: str | Path | None
    model_path: str | Path | None  # where the finished run is to be saved, recorded in checkpoints

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch


def fit(
    model: nn.Module,
    data: MNISTData,
    config: TrainConfig,
    callbacks: TrainCallbacks | None = None,
    checkpoint_path: str | Path | None = None,
    resume_from: str | Path | None = None,
    model_path: str | Path | None = None,
) -> History:
    """Train ``model`` in place on ``data.train``, validating on ``data.val`` after each epoch.

    The model ends with the weights of its best validation epoch. Ctrl-C saves a checkpoint to
    ``checkpoint_path`` (recording ``model_path``, where the finished run is to be saved) and raises
    TrainingInterrupted; ``resume_from`` continues from such a file.
    """
    callbacks = callbacks or TrainCallbacks()
    device = next(model.parameters()).device
    task = make_task(data, config, device)
    run = _start(model, config, task.size, device, checkpoint_path, model_path)
    history, position, best = History(), _Position(), _Best()
    if resume_from is not None:
        _restore(resume_from, run, history, position, best)
    ema = make_ema(distributed.unwrap(model), config.ema)  # off by default; a resumed run restarts it

    model.train()
    with InterruptFlag() as interrupt:
        for epoch in range(position.epoch, config.epochs):
            if position.epoch_generator_state is None:
                position.epoch_generator_state = run.generator.get_state()
            run.generator.set_state(position.epoch_generator_state)
            callbacks.on_epoch_start(epoch + 1, run.steps_per_epoch)
            started = time.perf_counter()
            for inputs, targets in task.batches(run.batch_size, run.generator, position.step_in_epoch):
                if interrupt.raised:
                    raise TrainingInterrupted(str(_save_checkpoint(run, history, position, best)))
                step = epoch * run.steps_per_epoch + position.step_in_epoch
                loss_value = _train_step(run, task, step, inputs, targets)
                if ema is not None:
                    ema.update(distributed.unwrap(model))
                position.loss_sum += loss_value
                position.step_in_epoch += 1
                callbacks.on_step(position.step_in_epoch, loss_value, task.examples(targets))
            evaluated = distributed.unwrap(model) if ema is None else ema.module  # with EMA: the average
            val_accuracy = task.validate(evaluated)
            model.train()
            stats = EpochStats(
                epoch=epoch + 1,
                seconds=time.perf_counter() - started,
                train_loss=distributed.mean_over_ranks(position.loss_sum) / run.steps_per_epoch,
                val_accuracy=val_accuracy,
                lr=run.optimizer.lr,
            )
            history.epochs.append(stats)
            position = _Position(epoch=epoch + 1)
            if best.offer(val_accuracy, evaluated):  # model selection on validation only
                history.best_epoch = epoch + 1
            callbacks.on_epoch_end(stats)
            if config.patience and epoch + 1 - history.best_epoch >= config.patience:
                break
    if best.state is not None:
        distributed.unwrap(model).load_state_dict(best.state)
    model.eval()
    return history


def _start(model, config: TrainConfig, train_size: int, device, checkpoint_path, model_path) -> _Run:
    """``train_size``: examples per epoch, all ranks together."""
    # Under torchrun each rank takes batch_size / world_size images of its shard per step: the same global
    # batch, steps per epoch and schedule as one process.
    batch_size = distributed.local_batch_size(config.batch_size)
    steps_per_epoch = distributed.shard_size(train_size) // batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"batch size {config.batch_size} is larger than the {train_size} training images")
    return _Run(
        model=model,
        config=config,
        optimizer=make_optimizer(model, config),
        generator=torch.Generator().manual_seed(config.seed + 1),
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        bf16=uses_bf16(config.precision, device),
        checkpoint_path=checkpoint_path,
        model_path=model_path,
    )


def _train_step(run: _Run, task: Task, step: int, inputs: torch.Tensor, targets: Any) -> float:
    """One optimisation step at the schedule's learning rate -> its loss; a loss that is not finite stops training."""
    config, optimizer = run.config, run.optimizer
    optimizer.lr = learning_rate(config, step, run.total_steps)
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=run.bf16):
        logits = run.model(inputs)
    loss = task.loss(logits.float(), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    loss_value = loss.item()
    if not math.isfinite(loss_value):
        raise TrainingDiverged(
            f"loss became {loss_value} at step {step + 1} (epoch {step // run.steps_per_epoch + 1}); "
            f"try a lower learning rate than {config.lr:g}"
        )
    return loss_value


def default_checkpoint_path(model_path: str | Path) -> Path:
    path = Path(model_path)
    return path.with_name(path.stem + ".ckpt")


def _save_checkpoint(run: _Run, history: History, position: _Position, best: _Best) -> Path:
    path = Path(run.checkpoint_path or "digitocr-interrupted.ckpt").absolute()  # resume works from any folder
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_path": None if run.model_path is None else str(run.model_path),
        "config": run.config.to_dict(),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "history": history.to_list(),
        "best_epoch": history.best_epoch,
        "best_state": best.state,
        "best_accuracy": best.accuracy,
        "epoch": position.epoch,
        "step_in_epoch": position.step_in_epoch,
        "epoch_generator_state": position.epoch_generator_state,
        "loss_sum": position.loss_sum,
        "torch_rng_state": torch.get_rng_state(),
    }
    return write_atomically(path, lambda temporary: torch.save(payload, temporary))


def read_checkpoint(path: str | Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"checkpoint not found: {path}") from None
    except Exception as error:
        raise ModelFileError(f"{path} is not a readable digitocr checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path} is not a digitocr checkpoint")
    return payload


def _restore(path, run: _Run, history: History, position: _Position, best: _Best) -> None:
    payload = read_checkpoint(path)
    if payload["config"] != run.config.to_dict():
        raise ConfigError(f"checkpoint {path} was made with another configuration; resume it with its own")
    run.model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    history.epochs = [EpochStats(**stats) for stats in payload["history"]]
    history.best_epoch = payload["best_epoch"]
    position.epoch = payload["epoch"]
    position.step_in_epoch = payload["step_in_epoch"]
    position.epoch_generator_state = payload["epoch_generator_state"]
    position.loss_sum = payload["loss_sum"]
    best.state, best.accuracy = payload["best_state"], payload["best_accuracy"]
    torch.set_rng_state(payload["torch_rng_state"])
    run.generator.set_state(position.epoch_generator_state)
