// The digitocr page: a drawing pad read shortly after each stroke, and a photo reader that boxes each digit.
// Plain JavaScript, no build step: everything the page needs is served by the app itself.
"use strict";

const API = "/api/predict?probabilities=true";
const MAX_BYTES = 10 * 1024 * 1024;  // the server's limit; bigger files are refused here, before uploading
const READ_DELAY_MS = 250;  // pause after a stroke before reading, so a second stroke can start first
// The pad is sent scaled down to this size: each digit ends up as 20x20 pixels anyway, and a 112-pixel
// picture (4x MNIST; a few digits side by side still 25+ pixels each) has 13x fewer pixels to send and read.
const SEND_SIZE = 112;

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ink = pad.getContext("2d");
let hasInk = false;
let stroke = null;  // the points of the stroke being drawn, in pad pixels
let readTimer = 0;
let requestNumber = 0;  // answers to older requests are dropped when a newer one was sent

// ---- the pad -------------------------------------------------------------------------------------------------

function resetPad() {
  ink.fillStyle = "#fff";  // white paper, dark ink: what a photo of a digit on paper looks like
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = ink.fillStyle = "#111";
  // MNIST strokes are about an eighth of the digit's height; a digit filling most of the pad gets the same.
  ink.lineWidth = pad.width / 13;
  ink.lineCap = ink.lineJoin = "round";
  hasInk = false;
  $("pad-hint").classList.remove("hidden");
}

function padPoint(event) {
  const rect = pad.getBoundingClientRect();
  return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
}

// Quadratic curves through the midpoints of successive points: smooth strokes without storing the whole path.
function extendStroke(point) {
  const points = stroke;
  points.push(point);
  const n = points.length;
  if (n === 1) {
    ink.beginPath();
    ink.arc(point[0], point[1], ink.lineWidth / 2, 0, 2 * Math.PI);
    ink.fill();
    return;
  }
  const mid = (a, b) => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const start = n === 2 ? points[0] : mid(points[n - 3], points[n - 2]);
  const end = mid(points[n - 2], points[n - 1]);
  ink.beginPath();
  ink.moveTo(start[0], start[1]);
  ink.quadraticCurveTo(points[n - 2][0], points[n - 2][1], end[0], end[1]);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  clearTimeout(readTimer);
  stroke = [];
  hasInk = true;
  $("pad-hint").classList.add("hidden");
  extendStroke(padPoint(event));
});

pad.addEventListener("pointermove", (event) => {
  if (!stroke) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) extendStroke(padPoint(each));
});

function endStroke() {
  if (!stroke) return;
  const last = stroke[stroke.length - 1];
  ink.beginPath();
  ink.moveTo(...last);
  ink.lineTo(...last);
  ink.stroke();
  stroke = null;
  clearTimeout(readTimer);
  readTimer = setTimeout(readPad, READ_DELAY_MS);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function clearPad() {
  clearTimeout(readTimer);
  requestNumber++;  // an answer still on its way is for a drawing that is gone
  resetPad();
  $("prediction").textContent = "";
  $("confidence").textContent = "";
  $("pad-message").textContent = "";
  renderBars([]);
}

function scaledPad() {
  const small = document.createElement("canvas");
  small.width = small.height = SEND_SIZE;
  const context = small.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";  // averages the pad's pixels: an anti-aliased, MNIST-like stroke
  context.drawImage(pad, 0, 0, SEND_SIZE, SEND_SIZE);
  return small;
}

async function readPad() {
  if (!hasInk) {
    $("pad-message").textContent = "Draw a digit first.";
    return;
  }
  const number = ++requestNumber;
  const blob = await new Promise((resolve) => scaledPad().toBlob(resolve, "image/png"));
  const answer = await send(blob, "pad.png");
  if (number !== requestNumber) return;
  if (answer.error) {
    showPad("", "", answer.error, []);
  } else if (!answer.text) {
    showPad("", "", "Nothing recognised. Draw the digit bigger, in the middle of the pad.", []);
  } else {
    // Each line's digits, the lines apart as in the text: "3: 91 % · 7: 88 % / 1: 97 %".
    const sure = linesOf(answer).map((line) =>
      line.digits.map((d) => `${d.digit}: ${Math.round(d.confidence * 100)} %`).join(" · ")).join(" / ");
    showPad(answer.text, `confidence ${sure}`, "", answer.digits);
  }
}

// The answer's lines; an answer without "lines" (a server older than them) is one line of all its digits.
function linesOf(answer) {
  return answer.lines || [{ text: answer.text, digits: answer.digits, box: null }];
}

function showPad(text, confidence, message, digits) {
  $("prediction").textContent = text;
  $("confidence").textContent = confidence;
  $("pad-message").textContent = message;
  renderBars(digits);
}

// Ten bars per digit found: its class probabilities (or its top three when the server sent only those).
function renderBars(digits) {
  const bars = $("bars");
  bars.replaceChildren();
  const shown = digits.length ? digits : [null];
  shown.forEach((reading, index) => {
    let probabilities = new Array(10).fill(0);
    if (reading && reading.probabilities) probabilities = reading.probabilities;
    else if (reading) reading.top3.forEach((guess) => { probabilities[guess.digit] = guess.confidence; });
    const group = document.createElement("div");
    if (digits.length > 1) {
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = `digit ${index + 1} of ${digits.length}`;
      group.append(label);
    }
    const chart = document.createElement("div");
    chart.className = "chart";
    chart.setAttribute("role", "list");
    probabilities.forEach((p, digit) => {
      const bar = document.createElement("div");
      bar.className = "bar" + (reading && digit === reading.digit ? " best" : "");
      bar.setAttribute("role", "listitem");
      bar.setAttribute("aria-label", `${digit}: ${(p * 100).toFixed(1)} percent`);
      bar.innerHTML = `<span class="value">${reading ? Math.round(p * 100) : ""}</span>` +
        `<div class="track"><div class="fill" style="height:${(p * 100).toFixed(1)}%"></div></div>` +
        `<span class="digit">${digit}</span>`;
      chart.append(bar);
    });
    group.append(chart);
    bars.append(group);
  });
}

// ---- talking to the server -----------------------------------------------------------------------------------

async function send(blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  try {
    const response = await fetch(API, { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (response.ok) return body;
    if (response.status === 413) return { error: "That file is over 10 MB; send a smaller one." };
    return { error: typeof body.detail === "string" ? body.detail : `The server answered ${response.status}.` };
  } catch (error) {
    return { error: "Cannot reach the server. Is `digitocr serve` still running?" };
  }
}

// ---- photos --------------------------------------------------------------------------------------------------

async function readPhoto(file) {
  const result = $("photo-result");
  result.className = "photo-result";
  if (!file) return;
  if (file.size > MAX_BYTES) {
    result.className = "photo-result warn";
    result.textContent = "That file is over 10 MB; send a smaller one.";
    return;
  }
  result.textContent = "Reading…";
  let picture = null;
  try {
    picture = await createImageBitmap(file);  // the browser applies EXIF rotation, as the server does
  } catch (error) {
    picture = null;  // a format the browser cannot show may still be one the server reads
  }
  const answer = await send(file, file.name || "photo");
  drawPhoto(picture, answer.error ? [] : linesOf(answer));
  if (answer.error) {
    result.className = "photo-result warn";
    result.textContent = answer.error;
  } else if (!answer.text) {
    result.className = "photo-result warn";
    result.textContent = "No digits recognised in this photo.";
  } else {
    result.innerHTML = "Read: <strong></strong>";
    result.querySelector("strong").textContent = answer.text;
  }
}

// The photo with a box around each line of digits (blue, a little outside its digits) and each digit (orange).
function drawPhoto(picture, lines) {
  const stage = $("photo-stage");
  const view = $("photo-view");
  stage.hidden = !picture;
  if (!picture) return;
  const scale = Math.min(1, 900 / Math.max(picture.width, picture.height));
  view.width = Math.round(picture.width * scale);
  view.height = Math.round(picture.height * scale);
  const context = view.getContext("2d");
  context.drawImage(picture, 0, 0, view.width, view.height);
  const line = Math.max(2, view.width / 200);
  context.lineWidth = line;
  context.font = `bold ${Math.max(14, Math.round(view.width / 22))}px system-ui, sans-serif`;
  context.textBaseline = "bottom";
  context.strokeStyle = "#3b5bdb";
  for (const { box } of lines) {
    if (!box) continue;
    const [x, y, w, h] = box.map((v) => v * scale);
    const margin = 2 * line;  // outside the digits' boxes, so a one-digit line's box still shows
    context.strokeRect(x - margin, y - margin, w + 2 * margin, h + 2 * margin);
  }
  for (const reading of lines.flatMap((each) => each.digits)) {
    const [x, y, w, h] = reading.box.map((v) => v * scale);
    context.strokeStyle = "#e8590c";
    context.strokeRect(x, y, w, h);
    const label = String(reading.digit);
    const labelWidth = context.measureText(label).width + 8;
    const labelHeight = parseInt(context.font.split(" ")[1], 10) + 4;
    const top = y - labelHeight >= 0 ? y - labelHeight : y;
    context.fillStyle = "#e8590c";
    context.fillRect(x - line / 2, top, labelWidth, labelHeight);
    context.fillStyle = "#fff";
    context.fillText(label, x + 4 - line / 2, top + labelHeight - 2);
  }
}

const drop = $("drop");
$("photo").addEventListener("change", (event) => readPhoto(event.target.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  readPhoto(event.dataTransfer.files[0]);
});

// ---- keyboard, buttons, model card ---------------------------------------------------------------------------

$("clear").addEventListener("click", clearPad);
$("predict").addEventListener("click", readPad);
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, button")) return;
  if (event.key === "Escape" || event.key === "Delete" || event.key === "Backspace") {
    event.preventDefault();
    clearPad();
  } else if (event.key === "Enter" && event.target === pad) {
    readPad();
  }
});

fetch("/api/model").then((r) => r.ok ? r.json() : null).then((card) => {
  if (!card) return;
  const accuracy = card.test_accuracy == null ? "" : `, ${(card.test_accuracy * 100).toFixed(2)} % on the MNIST test set`;
  $("model-card").textContent = `Reading with ${card.name}: ${card.architecture.toUpperCase()}, ` +
    `${card.parameters.toLocaleString("en")} ` +
    `parameters${accuracy}${card.trained ? `, trained ${card.trained.slice(0, 10)}` : ""}.`;
}).catch(() => {});

resetPad();
renderBars([]);
