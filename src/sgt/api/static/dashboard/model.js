// The model page: draws the loss history with uPlot and polls the status while the model trains.
"use strict";
(function () {
  const POLL_MS = 2000;
  const ACTIVE_STATES = new Set(["queued", "training"]);
  // Error figures in target units, shown when the status carries them.
  const ERROR_FIGURES = [
    ["val_mae", "Validation MAE (target units)"],
    ["val_p95_abs_error", "95th percentile absolute error"],
    ["val_max_abs_error", "Maximum absolute error"],
    ["val_rows", "Validation rows"],
  ];
  let chart = null;

  function positiveOrNull(value) {
    return typeof value === "number" && value > 0 && isFinite(value) ? value : null;
  }

  // history: [[steps, train_loss, val_loss|null], ...] -> uPlot's columns, sorted by steps.
  function toColumns(history) {
    const points = history.slice().sort((a, b) => a[0] - b[0]);
    return [
      points.map((p) => p[0]),
      points.map((p) => positiveOrNull(p[1])),
      points.map((p) => positiveOrNull(p[2])),
    ];
  }

  // Log-axis ticks are powers of ten: 1e-5 reads better than a rounded 0.
  function formatTick(value) {
    if (value === null || value === undefined) return "";
    return value >= 0.01 && value < 1e4 ? String(Number(value.toPrecision(3))) : value.toExponential(0);
  }

  function chartWidth(container) {
    return Math.max(240, container.clientWidth || 600);
  }

  function drawLossChart(container, history) {
    const started = performance.now();
    const data = toColumns(history);
    if (chart !== null && chart.root.parentNode === container) {
      chart.setData(data);
    } else {
      container.replaceChildren();
      chart = new uPlot(
        {
          width: chartWidth(container),
          height: 320,
          scales: { x: { time: false }, y: { distr: 3 } },
          axes: [
            { label: "training steps" },
            { label: "loss (log)", size: 64, values: (_u, ticks) => ticks.map(formatTick) },
          ],
          series: [
            { label: "steps" },
            { label: "training loss (solid)", stroke: "#1f5fa8", width: 2 },
            { label: "validation loss (dashed)", stroke: "#b54708", width: 2, dash: [8, 5] },
          ],
        },
        data,
        container,
      );
    }
    container.dataset.points = String(data[0].length);
    // uPlot paints on its next commit: the time is taken once the next frame has run.
    return new Promise((resolve) => {
      requestAnimationFrame(() => {
        const ms = performance.now() - started;
        container.dataset.renderMs = ms.toFixed(1);
        resolve(ms);
      });
    });
  }

  function formatNumber(value) {
    return typeof value === "number" ? Number(value.toPrecision(4)).toString() : String(value);
  }

  function showErrors(status) {
    const list = document.getElementById("errors");
    const figures = ERROR_FIGURES.filter(([key]) => status[key] !== undefined && status[key] !== null);
    const entries = figures.map(([key, label]) => [label, formatNumber(status[key])]);
    for (const [key, value] of Object.entries(status)) {
      if (/mae/.test(key) && Array.isArray(value)) {
        entries.push(["MAE per output", value.map(formatNumber).join(", ")]);
      }
    }
    if (entries.length === 0) {
      entries.push(["Validation loss", status.val_loss === null ? "—" : formatNumber(status.val_loss)]);
    }
    entries.push(["Training loss", status.train_loss === null ? "—" : formatNumber(status.train_loss)]);
    list.replaceChildren();
    for (const [label, value] of entries) {
      const term = document.createElement("dt");
      term.textContent = label;
      const detail = document.createElement("dd");
      detail.textContent = value;
      list.append(term, detail);
    }
  }

  function showStatus(status) {
    const state = document.getElementById("state");
    state.textContent = status.state;
    state.className = "state state-" + status.state;
    document.getElementById("samples").textContent = String(status.sample_count);
    document.getElementById("steps").textContent = String(status.steps);
    document.getElementById("updated").textContent = status.updated_at || "—";
    showErrors(status);
    const empty = status.loss_history.length === 0;
    document.getElementById("chart-empty").hidden = !empty;
    if (!empty) {
      drawLossChart(document.getElementById("chart"), status.loss_history);
    }
  }

  async function poll(url) {
    const note = document.getElementById("polling");
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      note.textContent = "(server unreachable, retrying)";
      setTimeout(() => poll(url), POLL_MS);
      return;
    }
    if (!response.ok) {
      note.textContent = response.status === 401 ? "(signed out)" : "(model gone)";
      return;
    }
    const status = await response.json();
    showStatus(status);
    if (ACTIVE_STATES.has(status.state)) {
      note.textContent = "(refreshing every " + POLL_MS / 1000 + " s)";
      setTimeout(() => poll(url), POLL_MS);
    } else {
      note.textContent = "";
      document.getElementById("model").dataset.polling = "stopped";
    }
  }

  function confirmForms() {
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) {
          event.preventDefault();
        }
      });
    }
  }

  window.sgtDashboard = { drawLossChart };
  document.addEventListener("DOMContentLoaded", () => {
    confirmForms();
    const section = document.getElementById("model");
    if (section) {
      poll(section.dataset.statusUrl);
      window.addEventListener("resize", () => {
        if (chart !== null) {
          chart.setSize({ width: chartWidth(document.getElementById("chart")), height: 320 });
        }
      });
    }
  });
})();
