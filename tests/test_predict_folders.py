"""`digitocr predict DIR`: folders read recursively, `--csv OUT` written as results come and continued with
`--resume` after a real interruption, the progress bar on a terminal. The commands are the README's."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from digitocr.cli import main
from digitocr.cli.results_csv import HEADER

DIGITOCR = [sys.executable, "-m", "digitocr"]
BROKEN = b"\x89PNG\r\n\x1a\n truncated"  # a picture's name, no picture: its row holds the error


def write_digit(path: Path, number: int) -> Path:
    """An MNIST-like picture: a light stroke of a 1 or a 0 on black, 28x28, varied by ``number``."""
    picture = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(picture)
    if number % 2:
        draw.line([(14, 5), (10 + number % 9, 23)], fill=255, width=3)
    else:
        draw.ellipse([(7 + number % 3, 5), (20, 23)], outline=255, width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def write_folder(folder: Path, count: int) -> list[str]:
    """``count`` PNGs in ``folder`` and two levels of subfolders -> their paths in the order predict reads them."""
    paths = [str(write_digit(folder / f"sub{n % 3}" / f"deeper{n % 2}" / f"{n:05d}.png", n)) for n in range(count)]
    return sorted(paths)  # no file beside a subfolder here: the folder-by-folder order is the sorted one


def predict(*args: str, cwd: Path, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([*DIGITOCR, "predict", *args], cwd=cwd, capture_output=True, text=True, timeout=300, **popen)


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_folder_is_read_recursively_in_sorted_order_and_glob_picks_its_files(untrained_model_path, tmp_path, capsys):
    photos = tmp_path / "photos"
    for name in ("b.png", "a.PNG", "c.jpg", "sub/z.png", "sub/deeper/y.tif", "sub/deeper/x.png", "other/w.png"):
        write_digit(photos / name, len(name))
    (photos / "notes.txt").write_text("not a picture")
    alone = write_digit(tmp_path / "alone.bmp", 1)
    model = ["--model", str(untrained_model_path)]

    def read(*args: str) -> list[str]:
        main(["predict", *args, *model, "--json"])
        return [json.loads(line)["file"] for line in capsys.readouterr().out.splitlines()]

    folder = f"{photos}/"  # as a shell completes it: the paths found start with it, one slash
    inside = ["a.PNG", "b.png", "c.jpg", "other/w.png", "sub/z.png", "sub/deeper/x.png", "sub/deeper/y.tif"]
    assert read(str(alone), folder) == [str(alone)] + [f"{photos}/{name}" for name in inside]
    assert read(folder, "--glob", "*.png") == [f"{photos}/{name}" for name in inside if name.lower().endswith(".png")]
    assert read(folder, "--glob", "deeper/*") == [f"{photos}/sub/deeper/x.png", f"{photos}/sub/deeper/y.tif"]
    assert read(str(photos / "notes.txt")) == [str(photos / "notes.txt")]  # a file given is read as given


def test_a_folder_without_pictures_is_one_clear_error(untrained_model_path, tmp_path, capsys):
    (tmp_path / "photos" / "empty").mkdir(parents=True)
    (tmp_path / "photos" / "notes.txt").write_text("not a picture")
    model = ["--model", str(untrained_model_path)]
    assert main(["predict", str(tmp_path / "photos"), *model, "--csv", str(tmp_path / "results.csv")]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("digitocr: error: no pictures (.png, .jpg") and "photos or its subfolders" in line
    assert not (tmp_path / "results.csv").exists()  # nothing was read: nothing is written
    assert main(["predict", str(tmp_path / "photos"), *model, "--glob", "*.png"]) == 1
    assert "no files matching '*.png' in" in capsys.readouterr().err


def test_csv_has_a_row_per_picture_with_the_text_and_confidences_json_gives(
    untrained_model_path, tmp_path, capsys, monkeypatch
):
    files = [str(Path(f).relative_to(tmp_path)) for f in write_folder(tmp_path / "photos", 40)]
    (tmp_path / "photos" / "sub0" / "broken.png").write_bytes(BROKEN)
    model = ["--model", str(untrained_model_path)]
    monkeypatch.chdir(tmp_path)  # the README's relative paths
    assert main(["predict", "photos/", "--glob", "*.png", "--csv", "results.csv", *model]) == 1  # one error
    out, err = capsys.readouterr()
    assert out.startswith("read 41 pictures (1 error) into results.csv in ") and out.count("\n") == 1
    assert err == ""  # not a terminal: no bar, and the error is in its row
    assert main(["predict", "photos/", "--glob", "*.png", "--json", *model]) == 1
    expected = {line["file"]: line for line in map(json.loads, capsys.readouterr().out.splitlines())}

    assert (tmp_path / "results.csv").read_text().splitlines()[0] == ",".join(HEADER)
    table = rows(tmp_path / "results.csv")
    assert [row["file"] for row in table] == list(expected)  # the order read, paths as found
    assert sorted(expected) == sorted([*files, "photos/sub0/broken.png"])
    for row in table:
        line = expected[row["file"]]
        if "error" in line:
            assert row["error"] == line["error"] and row["text"] == row["confidences"] == ""
            continue
        assert row["error"] == "" and row["text"] == line["text"]
        confidences = [float(value) for value in row["confidences"].split()]
        assert confidences == pytest.approx([digit["confidence"] for digit in line["digits"]], abs=5e-5)


def test_an_existing_out_is_never_overwritten_without_resume(untrained_model_path, tmp_path):
    write_folder(tmp_path / "photos", 3)
    (tmp_path / "results.csv").write_text("precious,data\n")
    result = predict("photos/", "--csv", "results.csv", "--model", str(untrained_model_path), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "digitocr: error: results.csv exists; --resume to continue it or remove it"
    assert (tmp_path / "results.csv").read_text() == "precious,data\n"
    result = predict("photos/", "--csv", "results.csv", "--resume", "--model", str(untrained_model_path), cwd=tmp_path)
    assert result.returncode == 1 and "is not a CSV written by digitocr predict" in result.stderr
    assert (tmp_path / "results.csv").read_text() == "precious,data\n"  # someone else's file: left alone


def wait_for_rows(path: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") > count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} did not reach {count} rows while the run was going")


def assert_every_picture_once(table: list[dict], files: list[str]) -> None:
    assert sorted(row["file"] for row in table) == sorted(files)  # each exactly once
    for row in table:  # no torn row: every field as a whole row has it
        assert row["error"] == "" and len(row["confidences"].split()) == len(row["text"]), row


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_says_how_far_it_got_and_its_command_continues_the_csv(
    untrained_model_path, tmp_path, workers, capsys, monkeypatch
):
    files = write_folder(tmp_path / "photos", 2000)
    args = ["photos/", "--glob", "*.png", "--csv", "results.csv", "--model", str(untrained_model_path)]
    process = subprocess.Popen(
        [*DIGITOCR, "predict", *args, "--workers", workers],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches the reader and its helpers
    )
    wait_for_rows(tmp_path / "results.csv", 256, process)  # the first batch is in
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == "" and "Traceback" not in err, err
    [line] = err.splitlines()
    written = len(rows(tmp_path / "results.csv"))
    assert line.startswith(f"digitocr: interrupted: {written:,} of 2,000 pictures read into results.csv; ")
    assert 256 <= written < len(files)
    command = shlex.split(line.split("; continue with: ")[1])
    assert command == ["digitocr", "predict", *args, "--workers", workers, "--resume"]

    resumed = predict(
        *command[2:], cwd=tmp_path
    )  # the printed command, as the user pastes it  # the printed command, as the user pastes it
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"read {len(files) - written:,} pictures (0 errors) into results.csv in ")
    assert resumed.stdout.rstrip().endswith(f"; {written:,} were in it already")
    assert_every_picture_once(rows(tmp_path / "results.csv"), [str(Path(f).relative_to(tmp_path)) for f in files])


def test_resume_after_a_kill_reads_only_what_is_not_in_out_and_mends_a_torn_row(
    untrained_model_path, tmp_path, capsys, monkeypatch
):
    files = [str(Path(f).relative_to(tmp_path)) for f in write_folder(tmp_path / "photos", 2000)]
    args = ["photos/", "--glob", "*.png", "--csv", "results.csv", "--model", str(untrained_model_path)]
    process = subprocess.Popen([*DIGITOCR, "predict", *args], cwd=tmp_path, stderr=subprocess.PIPE)
    wait_for_rows(tmp_path / "results.csv", 256, process)
    process.kill()  # SIGKILL: no handler runs, the file is as the last flush left it
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    data = (tmp_path / "results.csv").read_bytes()
    torn = data[: data.rindex(b"\n") + 1][:-4]  # a kill during a write: the last row without its end
    (tmp_path / "results.csv").write_bytes(torn)
    kept = len(rows(tmp_path / "results.csv")) - 1  # csv reads the torn row as a row of its own

    monkeypatch.chdir(tmp_path)
    assert main(["predict", *args, "--resume"]) == 0
    assert f"; {kept:,} were in it already" in capsys.readouterr().out  # the torn picture was read again
    table = rows(tmp_path / "results.csv")
    assert_every_picture_once(table, files)
    assert (tmp_path / "results.csv").read_text().count(",".join(HEADER)) == 1  # no second header


def test_a_quoted_newline_in_a_row_is_not_its_end(untrained_model_path, tmp_path, capsys, monkeypatch):
    odd = write_digit(tmp_path / "photos" / "zz" / "two\nlines.png", 3)  # read last
    write_folder(tmp_path / "photos", 2)
    args = ["predict", "photos/", "--csv", "results.csv", "--model", str(untrained_model_path)]
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    data = (tmp_path / "results.csv").read_bytes()
    cut = data.index(b"two\n") + len(b"two\n")  # a kill just after the newline inside the quotes
    (tmp_path / "results.csv").write_bytes(data[:cut])
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert capsys.readouterr().out.startswith("read 1 picture (0 errors)")
    files = {row["file"] for row in rows(tmp_path / "results.csv")}
    assert len(rows(tmp_path / "results.csv")) == 3 and str(odd.relative_to(tmp_path)) in files


def test_a_picture_of_several_lines_is_one_printed_line_and_one_csv_row(
    sevens_line_model_path, two_lines_png, tmp_path, capsys, monkeypatch
):
    """Plain output joins a picture's lines with " / "; --json has them in "lines"; the CSV keeps one row per
    picture, its text the lines joined by a newline inside quotes, and --resume cuts a row torn inside them."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(two_lines_png)
    Image.open(photos / "a.png").crop((0, 0, 400, 200)).save(photos / "b.png")  # the upper line alone
    Image.new("L", (100, 100), 255).save(photos / "c.png")
    model = ["--model", str(sevens_line_model_path)]
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "photos/", *model]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "photos/a.png: 7 / 7  [7:1.00 / 7:1.00]",
        "photos/b.png: 7  [7:1.00]",
        "photos/c.png: (no digits)",
    ]
    assert main(["predict", "photos/", "--json", *model]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [answer["text"] for answer in answers] == ["7\n7", "7", ""]
    assert [[line["text"] for line in answer["lines"]] for answer in answers] == [["7", "7"], ["7"], []]

    assert main(["predict", "photos/", "--csv", "results.csv", *model]) == 0
    data = (tmp_path / "results.csv").read_bytes()
    assert b'photos/a.png,"7\n7",' in data  # quoted: the newline is the text's, not the row's end
    assert [(row["file"], row["text"]) for row in rows(tmp_path / "results.csv")] == [
        ("photos/a.png", "7\n7"),
        ("photos/b.png", "7"),
        ("photos/c.png", ""),
    ]
    (tmp_path / "results.csv").write_bytes(data[: data.index(b'"7\n') + 3])  # killed inside the quotes
    capsys.readouterr()
    assert main(["predict", "photos/", "--csv", "results.csv", "--resume", *model]) == 0
    assert capsys.readouterr().out.startswith("read 3 pictures (0 errors)")  # the torn row was the first
    assert (tmp_path / "results.csv").read_bytes() == data


def on_a_terminal(args: list[str], monkeypatch) -> tuple[int, str]:
    """Run predict with stderr on a 24-line pseudo-terminal -> (exit code, what the terminal showed)."""
    ours, theirs = pty.openpty()
    fcntl.ioctl(theirs, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # rows, columns
    with open(theirs, "w") as terminal, monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        code = main(["predict", *args])  # a bar's few hundred bytes fit in the terminal's buffer
        shown = b""
        while select.select([ours], [], [], 0)[0]:  # what the run wrote, read while the terminal is open
            shown += os.read(ours, 65536)
    os.close(ours)
    return code, shown.decode(errors="replace")


def test_a_progress_bar_on_the_terminal_for_more_pictures_than_a_screenful(
    untrained_model_path, tmp_path, capsys, monkeypatch
):
    write_folder(tmp_path / "many", 100)
    write_folder(tmp_path / "few", 20)
    model = ["--model", str(untrained_model_path)]
    code, shown = on_a_terminal([str(tmp_path / "many"), "--csv", str(tmp_path / "many.csv"), *model], monkeypatch)
    assert code == 0 and "reading: 100%" in shown and "100/100" in shown and "picture/s" in shown
    code, shown = on_a_terminal([str(tmp_path / "few"), "--csv", str(tmp_path / "few.csv"), *model], monkeypatch)
    assert code == 0 and shown == ""  # 20 lines fit on 24: no bar
    code, shown = on_a_terminal([str(tmp_path / "many"), *model], monkeypatch)
    assert code == 0 and "100/100" in shown  # stdout has a line per picture; the bar steps aside for them
    assert len(capsys.readouterr().out.splitlines()) == 100 + 2  # and two summary lines
