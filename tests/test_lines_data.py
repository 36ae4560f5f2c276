"""The line model's data, made on the fly from real MNIST digits: every line's label is what was drawn in it,
touching neighbours really touch, validation lines never hold a training digit, and the images are what the
line model reads (height, ink rows, widths, padding); the line task's CTC loss on them."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitocr.config import (
    BLANK,
    LINE_HEIGHT,
    LINE_INK_HEIGHT,
    LINE_SIDE_MARGIN,
    LINE_STRIDE,
    LinesConfig,
    ModelConfig,
    TrainConfig,
)
from digitocr.data import MNISTData, Split, load_mnist, split_off_validation
from digitocr.data import lines as lines_module
from digitocr.data.lines import LineBatch, batches_by_width, make_lines, make_lines_of
from digitocr.errors import ConfigError
from digitocr.models import build_model
from digitocr.training import make_task

TINY_LINE_MODEL = ModelConfig(name="line", channels=(4, 8), context=(8,))


@pytest.fixture(scope="module")
def data(mnist_root) -> MNISTData:
    return load_mnist(mnist_root)


def lines(split: Split, count: int, seed: int = 0, **config) -> LineBatch:
    return make_lines(split, count, LinesConfig(**config), torch.Generator().manual_seed(seed))


def digits_of(batch: LineBatch) -> list[torch.Tensor]:
    """Each line's targets, split off the batch's concatenation."""
    return list(torch.split(batch.targets, batch.lengths.tolist()))


def test_every_lines_label_is_the_digits_drawn_in_it(data):
    batch = lines(data.train, 200, min_digits=0, max_digits=12)
    assert batch.lengths.min() >= 0 and batch.lengths.max() <= 12
    assert (batch.lengths == 0).any() and (batch.lengths >= 10).any()  # the whole range is drawn
    assert len(batch.targets) == batch.lengths.sum()
    slots = torch.arange(batch.indices.shape[1])[None]
    drawn = slots < batch.lengths[:, None]
    assert (batch.indices[~drawn] == -1).all() and (batch.spans[~drawn] == 0).all()
    assert ((batch.indices[drawn] >= 0) & (batch.indices[drawn] < len(data.train))).all()
    for line, (indices, length, targets) in enumerate(zip(batch.indices, batch.lengths, digits_of(batch))):
        assert torch.equal(targets, data.train.labels[indices[:length]]), line  # in order, left to right
    assert batch.texts() == ["".join(map(str, targets.tolist())) for targets in digits_of(batch)]


@pytest.mark.parametrize("count", [1, 7, 12])
def test_min_digits_equal_to_max_digits_gives_that_many_digits_on_every_line(data, count):
    batch = lines(data.train, 40, min_digits=count, max_digits=count)
    assert (batch.lengths == count).all() and all(len(text) == count for text in batch.texts())
    assert batch.indices.shape == (40, count) and (batch.indices >= 0).all()


def test_lines_of_given_lengths_hold_those_many_digits_blank_lines_included(data):
    lengths = torch.tensor([0, 3, 1, 0, 12])
    batch = make_lines_of(data.train, lengths, LinesConfig(), torch.Generator().manual_seed(0))
    assert batch.lengths.tolist() == lengths.tolist() and [len(text) for text in batch.texts()] == lengths.tolist()
    assert len(batch.images) == len(lengths) == len(batch.widths)


def test_lines_of_no_digit_at_most_are_refused_by_the_config():
    with pytest.raises(ConfigError, match="max at least 1"):
        TrainConfig(lines=LinesConfig(min_digits=0, max_digits=0)).validate()


def test_lines_are_what_the_line_model_reads(data):
    batch = lines(data.train, 200, seed=1)
    images, widths = batch.images, batch.widths
    assert images.dtype == torch.float32 and images.shape[:3] == (200, 1, LINE_HEIGHT)
    assert images.min() >= 0 and images.max() <= 1
    assert (widths % LINE_STRIDE == 0).all() and widths.max() == images.shape[-1]
    assert (widths >= 2 * LINE_SIDE_MARGIN).all()
    beyond = torch.arange(images.shape[-1])[None] >= widths[:, None]  # (N, W): the padding of each line
    assert (images[:, 0].transpose(1, 2)[beyond] == 0).all()
    # CTC can spell every line in its own columns: a column per digit and one more between repeated digits.
    repeats = torch.tensor([int((digits[1:] == digits[:-1]).sum()) for digits in digits_of(batch)])
    assert (widths // LINE_STRIDE >= batch.lengths + repeats).all()


INK_ROWS_LEVEL = 0.3  # a pixel this dark is ink here: above the noise the degradations add (sigma <= 0.06)
INK_ROWS_SLACK = 1  # rows: resampling a line to 32 rows may move its ink's top or bottom edge by one
INK_ROWS_SHARE = 0.75  # of lines: the rest are ruled (lines above and below the ink, tilted with the line), specked
# or low-resolution; measured 0.80-0.84 over six seeds of 400 lines, tilted up to 3 degrees (2026-12-03)


def test_the_ink_of_a_line_fills_the_rows_the_reader_normalises_a_line_to(data):
    batch = lines(data.train, 400, seed=2, min_digits=1, max_digits=6)
    rows = (batch.images[:, 0] > INK_ROWS_LEVEL).any(2)  # (N, 32): rows holding ink
    top, bottom = rows.float().argmax(1), LINE_HEIGHT - rows.flip(1).float().argmax(1)
    first_row = (LINE_HEIGHT - LINE_INK_HEIGHT) // 2  # the ink is centred: as many rows of paper above as below
    normalised = ((top - first_row).abs() <= INK_ROWS_SLACK) & (
        (bottom - first_row - LINE_INK_HEIGHT).abs() <= INK_ROWS_SLACK
    )
    free = ~batch.combs  # a comb's boxes reach above and below the digits
    assert normalised[free].float().mean() >= INK_ROWS_SHARE
    assert (bottom - top)[free].median() in range(LINE_INK_HEIGHT - INK_ROWS_SLACK, LINE_INK_HEIGHT + 1)


# Spans are each glyph's ink columns upright: a slanted glyph's top and bottom rows reach past them by up to the
# slant (0.38 of a column per row) over half its height, about 4 columns once normalised.
SPAN_SLACK = 5.0  # columns


def test_spans_run_left_to_right_from_the_lines_first_ink_to_its_last(data):
    batch = lines(data.train, 300, seed=3, min_digits=1, max_digits=6)
    free, drawn = ~batch.combs, torch.arange(6)[None] < batch.lengths[:, None]
    later = torch.where(drawn[:, 1:], batch.spans[:, 1:, 0], np.inf)
    assert (later > batch.spans[:, :-1, 0]).all()  # left edges in the order of the digits
    assert (batch.spans[..., 1] >= batch.spans[..., 0]).all()
    left = torch.where(drawn, batch.spans[..., 0], np.inf).amin(1)
    right = torch.where(drawn, batch.spans[..., 1], -np.inf).amax(1)
    # Without a comb the line is normalised to its digits' ink: a margin of paper each side, the width rounded up
    # to whole output columns.
    assert ((left - LINE_SIDE_MARGIN).abs()[free] <= SPAN_SLACK).all()
    assert ((batch.widths - LINE_SIDE_MARGIN - right)[free] <= SPAN_SLACK + LINE_STRIDE).all()
    assert ((batch.widths - LINE_SIDE_MARGIN - right)[free] >= -SPAN_SLACK).all()


# Measured on 1,200 neighbours of real MNIST digits: neighbours whose upright ink overlaps by 3 canvas pixels
# (0.15 of a digit's height) or more touch 95 % of the time; by less, a 4's open top under a 7's bar may not.
OVERLAP = 3.0  # canvas pixels
TOUCHING_SHARE = 0.9
TOUCHING_NEIGHBOURS = 0.2  # of all neighbours in free writing: the touching numbers the line model is for


def test_neighbours_drawn_overlapping_really_touch(data):
    """Each glyph drawn alone at its place in its line (the generator's own layout and placement): neighbours
    whose ink columns overlap touch, ink on ink or on the next pixel, as a pen's crossing strokes do."""
    count, slots = 300, 4
    generator = torch.Generator().manual_seed(4)
    indices = torch.randint(len(data.train), (count, slots), generator=generator)
    glyphs = data.train.images[indices.flatten()].view(count, slots, 28, 28)
    drawn = torch.ones(count, slots, dtype=torch.bool)
    layout = lines_module._layout(glyphs, drawn, torch.zeros(count, dtype=torch.bool), generator)
    width = int(layout.right.max().ceil())
    alone = [
        lines_module._place(glyphs * (torch.arange(slots) == slot).view(1, -1, 1, 1), drawn, layout, width)[:, 0]
        for slot in range(slots)
    ]
    together = lines_module._place(glyphs, drawn, layout, width)[:, 0]
    assert torch.equal(together, torch.stack(alone).amax(0))  # the line is its glyphs, ink over ink
    touching, overlapping = [], []
    for slot in range(slots - 1):
        ink, next_ink = alone[slot] > lines_module.INK_LEVEL, alone[slot + 1] > lines_module.INK_LEVEL
        reach = F.max_pool2d(ink[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0  # ink and its 8 neighbours
        touching.append((reach & next_ink).flatten(1).any(1))
        overlap = layout.left[:, slot] + layout.width[:, slot] - layout.left[:, slot + 1]
        overlapping.append(overlap >= OVERLAP)
    touching, overlapping = torch.cat(touching), torch.cat(overlapping)
    assert overlapping.sum() >= 50  # enough overlapping neighbours to measure
    assert touching[overlapping].float().mean() >= TOUCHING_SHARE
    assert touching.float().mean() >= TOUCHING_NEIGHBOURS


def test_the_validation_split_holds_no_training_image():
    labels = torch.arange(1000)
    train, val = split_off_validation(labels.view(-1, 1, 1, 1).float(), labels, val_size=100, seed=3)
    assert len(val) == 100 and len(train) == 900
    assert set(val.labels.tolist()).isdisjoint(train.labels.tolist())
    assert sorted(val.labels.tolist() + train.labels.tolist()) == labels.tolist()


def test_validation_lines_draw_only_validation_digits_none_of_them_a_training_image(data):
    batch = lines(data.val, 200, seed=5)
    used = batch.indices[batch.indices >= 0]
    assert len(used) > 500 and used.max() < len(data.val)
    assert torch.equal(batch.targets, data.val.labels[used])
    # A drawn digit equal to any training image would share its projection on a random direction.
    direction = torch.randn(28 * 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    train_keys = set((data.train.images.flatten(1).double() @ direction).tolist())
    drawn_keys = data.val.images[used].flatten(1).double() @ direction
    assert not train_keys & set(drawn_keys.tolist())


class InkSaysOne(nn.Module):
    """A line model by hand: every column of a line with ink reads 1, every column of a blank line reads blank;
    so a one-digit line is read right exactly when its digit is a 1."""

    INK = 0.2

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))  # the reader finds the device through a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        has_ink = (x.flatten(1).amax(1) > self.INK).float()[:, None]  # (N, 1)
        logits = torch.zeros(len(x), x.shape[-1] // LINE_STRIDE, BLANK + 1)
        logits[..., 1] = self.scale * has_ink
        logits[..., BLANK] = self.scale * (1 - has_ink)
        return logits


def test_the_line_task_trains_on_training_digits_and_validates_on_validation_digits(data):
    """Training digits are anything but 1s, validation digits only 1s: every training line's digits are training
    labels, and a reader that sees a 1 wherever there is ink reads all validation lines right."""
    ones = data.val.labels == 1
    no_ones = data.train.labels != 1
    split = MNISTData(
        train=Split(data.train.images[no_ones], data.train.labels[no_ones]),
        val=Split(data.val.images[ones], data.val.labels[ones]),
        test=data.test,
        sha256=data.sha256,
    )
    config = TrainConfig(
        model=TINY_LINE_MODEL,
        lines=LinesConfig(lines_per_epoch=96, val_lines=64, min_digits=1, max_digits=1),
        batch_size=32,
    )
    task = make_task(split, config, torch.device("cpu"))
    batches = list(task.batches(32, torch.Generator().manual_seed(0), 0))
    assert len(batches) == 3
    for images, batch in batches:
        assert images is batch.images and len(batch) == 32
        assert (batch.targets != 1).all() and (batch.indices < len(split.train)).all()
    assert task.validate(InkSaysOne()) == 1.0
    # The same reader on lines of the training digits reads none right: the score is the validation split's.
    other = dataclasses.replace(split, val=split.train)
    assert make_task(other, config, torch.device("cpu")).validate(InkSaysOne()) == 0.0


SURE = 20.0  # logits' margin of a column sure of its class: e ** -20 of the probability left to the others


def test_the_line_tasks_ctc_loss_is_finite_and_gives_finite_gradients(data):
    config = TrainConfig(model=TINY_LINE_MODEL, lines=LinesConfig(lines_per_epoch=64, val_lines=8), batch_size=32)
    task = make_task(data, config, torch.device("cpu"))
    images, batch = next(iter(task.batches(32, torch.Generator().manual_seed(1), 0)))
    torch.manual_seed(0)
    model = build_model(config.model)
    logits = model(images)
    assert logits.shape == (32, images.shape[-1] // LINE_STRIDE, BLANK + 1)
    loss = task.loss(logits, batch)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters())
    # Logits that spell each line's digits, a blank after each, in its own columns: CTC's loss is near nothing.
    spelled = torch.zeros_like(logits)
    spelled[..., BLANK] = SURE
    for line, digits in enumerate(digits_of(batch)):
        spelled[line, torch.arange(len(digits)) * 2] = F.one_hot(digits, BLANK + 1).float() * SURE
    assert task.loss(spelled, batch) < 0.01 * loss


def test_lines_joined_and_selected_keep_each_lines_digits_and_picture(data):
    first, second = lines(data.train, 5, seed=1, max_digits=6), lines(data.train, 4, seed=2, max_digits=6)
    joined = LineBatch.joined([first, second])
    assert joined.texts() == first.texts() + second.texts()
    assert joined.images.shape[-1] == max(first.images.shape[-1], second.images.shape[-1])
    narrow = first if first.images.shape[-1] < second.images.shape[-1] else second
    offset = 0 if narrow is first else len(first)
    assert torch.equal(joined.images[offset : offset + len(narrow), ..., : narrow.images.shape[-1]], narrow.images)
    assert (joined.images[offset : offset + len(narrow), ..., narrow.images.shape[-1] :] == 0).all()  # padding
    rows = torch.tensor([7, 0, 2])
    picked = joined.select(rows)
    assert picked.texts() == [joined.texts()[row] for row in rows]
    assert picked.images.shape[-1] == int(joined.widths[rows].max())
    assert torch.equal(picked.images, joined.images[rows, ..., : picked.images.shape[-1]])
    for name in ("widths", "lengths", "indices", "spans", "combs", "ruled"):
        assert torch.equal(getattr(picked, name), getattr(joined, name)[rows]), name


def test_training_batches_hold_lines_of_similar_widths_and_every_length(data):
    """A batch of lines drawn together was padded to its widest, half of it padding: batched by width, most of
    every batch is its lines', and the lengths are drawn as before, 0 to 12 digits."""
    config = LinesConfig(min_digits=0, max_digits=12)
    batches = batches_by_width(data.train, 8, 64, config, torch.Generator().manual_seed(3))
    assert [len(batch) for batch in batches] == [64] * 8
    useful = [float(batch.widths.float().mean() / batch.images.shape[-1]) for batch in batches]
    assert np.mean(useful) >= 0.8  # drawn 64 at a time: 0.47
    assert all(batch.images.shape[-1] == int(batch.widths.max()) for batch in batches)
    ranges = sorted((int(batch.widths.min()), int(batch.widths.max())) for batch in batches)
    assert all(low[1] <= high[0] for low, high in itertools.pairwise(ranges))  # each batch a band of widths
    assert [batch.widths.max() for batch in batches] != sorted(batch.widths.max() for batch in batches)  # shuffled
    lengths = torch.cat([batch.lengths for batch in batches])
    assert set(lengths.tolist()) == set(range(13))
    for batch in batches:
        for indices, length, targets in zip(batch.indices, batch.lengths, digits_of(batch)):
            assert torch.equal(targets, data.train.labels[indices[:length]])


def test_the_same_seed_draws_the_same_lines(data):
    first, second, other = (lines(data.train, 24, seed=seed) for seed in (7, 7, 8))
    for name in LineBatch.__dataclass_fields__:
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    assert not torch.equal(first.indices, other.indices)
