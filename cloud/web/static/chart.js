// The sensor chart: uPlot over the JSON the page embeds (cloud/web/chart.py).
// min and max are drawn with a band between them, the mean as a line; gaps (grey) and
// excursions (red) are shaded behind the series and labelled, gateway gaps judged delayed (nothing
// missing) outlined and hatched in green without breaking the lines; the alarm limits (red, dashed) and
// pre-alarm limits (amber, dashed) are drawn over each stretch they held for with the zones beyond them
// tinted, and a dotted line marks where the sensor moved to a room of another class; each alert is a
// vertical mark at its raising in its severity's colour, its message shown on hover.  The time axis is
// in the site's zone (data-zone).  Drag across to zoom, double-click to zoom out.  No data leaves the
// page: everything came with it.  What was drawn is counted in data-drawn, data-marks, data-bands,
// data-moves and data-delayed.
(function () {
  "use strict";
  const COLOURS = { critical: "#b3261e", warning: "#b26a00", info: "#5f6368" };
  // Gap labels go along the top of the plot, excursion labels along the bottom, so they never overlap.
  function shade(u, intervals, fill, labelColour, atBottom) {
    const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    for (const [start, end, label] of intervals) {
      const left = u.valToPos(Math.max(start, u.scales.x.min), "x", true);
      const right = u.valToPos(Math.min(end, u.scales.x.max), "x", true);
      if (right <= left) continue;
      ctx.fillStyle = fill;
      ctx.fillRect(left, top, Math.max(right - left, 2), height);
      ctx.fillStyle = labelColour;
      const room = u.bbox.left + u.bbox.width - ctx.measureText(label).width - 4;
      const y = atBottom ? top + height - 6 * devicePixelRatio : top + 14 * devicePixelRatio;
      ctx.fillText(label, Math.max(u.bbox.left + 4, Math.min(left + 4, room)), y);
    }
    ctx.restore();
  }
  // Gateway gaps judged "delayed, nothing missing": the readings all arrived late, so the band is only an
  // outline with light diagonal hatching (not the grey of "not monitored") and the lines run through it.
  // Returns how many bands were drawn (their labels come later, over the series: hatchLabels).
  function hatch(u, intervals) {
    const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height, step = 8 * devicePixelRatio;
    let drawn = 0;
    ctx.save();
    for (const [start, end] of intervals) {
      const left = u.valToPos(Math.max(start, u.scales.x.min), "x", true);
      const right = Math.max(u.valToPos(Math.min(end, u.scales.x.max), "x", true), left + 2);
      if (end < u.scales.x.min || start > u.scales.x.max) continue;
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, right - left, height);
      ctx.clip();
      ctx.strokeStyle = "rgba(27,127,59,.35)";
      ctx.lineWidth = 1 * devicePixelRatio;
      ctx.beginPath();
      for (let x = left - height; x < right; x += step) {
        ctx.moveTo(x, top + height);
        ctx.lineTo(x + height, top);
      }
      ctx.stroke();
      ctx.restore();
      ctx.strokeStyle = "#1b7f3b";
      ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.strokeRect(left, top, right - left, height);
      drawn++;
    }
    ctx.restore();
    return drawn;
  }
  // The delayed bands' labels, drawn after the series on a white ground so the line running through the
  // band does not cross them out.
  function hatchLabels(u, intervals) {
    const ctx = u.ctx, top = u.bbox.top;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    ctx.textAlign = "left";  // the axes, drawn before this hook, leave it centred or right-aligned
    ctx.textBaseline = "alphabetic";
    for (const [start, end, label] of intervals) {
      if (end < u.scales.x.min || start > u.scales.x.max) continue;
      const left = u.valToPos(Math.max(start, u.scales.x.min), "x", true);
      const wide = ctx.measureText(label).width, tall = 14 * devicePixelRatio, y = top + 44 * devicePixelRatio;
      const x = Math.max(u.bbox.left + 4, Math.min(left + 4, u.bbox.left + u.bbox.width - wide - 4));
      ctx.fillStyle = "rgba(255,255,255,.85)";
      ctx.fillRect(x - 2, y - tall + 3 * devicePixelRatio, wide + 4, tall);
      ctx.fillStyle = "#1b5e32";
      ctx.fillText(label, x, y);
    }
    ctx.restore();
  }
  // The limits as horizontal lines over each stretch they held for (a sensor moved to another room is
  // judged by that room's class from then on), with the zones past them tinted: amber between a
  // pre-alarm limit and its alarm limit, red beyond the alarm limit.  Returns how many lines were drawn.
  function limitBands(u, segments, unit) {
    if (!segments || !segments.length) return 0;
    const ctx = u.ctx, top = u.bbox.top, bottom = top + u.bbox.height;
    const plotLeft = u.bbox.left, plotRight = plotLeft + u.bbox.width;
    const y = (v) => Math.min(bottom, Math.max(top, u.valToPos(v, "y", true)));
    const x = (t) => Math.min(plotRight, Math.max(plotLeft, u.valToPos(t, "x", true)));
    let drawn = 0;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    for (const limits of segments) {
      const left = x(limits.from), width = x(limits.to) - left;
      if (width <= 0) continue;
      if (limits.high != null) {
        ctx.fillStyle = "rgba(179,38,30,.07)";
        ctx.fillRect(left, top, width, y(limits.high) - top);
        if (limits.pre_high != null && limits.pre_high < limits.high) {
          ctx.fillStyle = "rgba(178,106,0,.08)";
          ctx.fillRect(left, y(limits.high), width, y(limits.pre_high) - y(limits.high));
        }
      }
      if (limits.low != null) {
        ctx.fillStyle = "rgba(179,38,30,.07)";
        ctx.fillRect(left, y(limits.low), width, bottom - y(limits.low));
        if (limits.pre_low != null && limits.pre_low > limits.low) {
          ctx.fillStyle = "rgba(178,106,0,.08)";
          ctx.fillRect(left, y(limits.pre_low), width, y(limits.low) - y(limits.pre_low));
        }
      }
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.lineWidth = 1.5 * devicePixelRatio;
      for (const [name, colour] of [["high", COLOURS.critical], ["low", COLOURS.critical],
                                    ["pre_high", COLOURS.warning], ["pre_low", COLOURS.warning]]) {
        const value = limits[name];
        if (value == null) continue;
        const at = u.valToPos(value, "y", true);
        ctx.strokeStyle = colour;
        ctx.beginPath();
        ctx.moveTo(left, at);
        ctx.lineTo(left + width, at);
        ctx.stroke();
        ctx.fillStyle = colour;
        const label = `${name.replace("_", "-")} ${value} ${unit}`;
        ctx.fillText(label, left + width - ctx.measureText(label).width - 4, at - 3 * devicePixelRatio);
        drawn++;
      }
    }
    ctx.restore();
    return drawn;
  }
  // Where the limits' source changes inside the range (the sensor moved): a dotted vertical line
  // labelled with the new source.  Returns how many were drawn.
  function moveMarks(u, moves) {
    if (!moves || !moves.length) return 0;
    const ctx = u.ctx, top = u.bbox.top, bottom = top + u.bbox.height;
    let drawn = 0;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.strokeStyle = ctx.fillStyle = "#12324a";
    for (const [t, label] of moves) {
      const at = u.valToPos(t, "x", true);
      if (at < u.bbox.left || at > u.bbox.left + u.bbox.width) continue;
      ctx.beginPath();
      ctx.moveTo(at, top);
      ctx.lineTo(at, bottom);
      ctx.stroke();
      // At the foot of the line: the top holds the gap and alert labels.
      ctx.fillText(`→ ${label}`, at + 4 * devicePixelRatio, bottom - 6 * devicePixelRatio);
      drawn++;
    }
    ctx.restore();
    return drawn;
  }
  // A vertical line at each alert's raising, its severity's colour, a dot and a short label at the top.
  function alertMarks(u, marks) {
    const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    let drawn = 0;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const [at, severity, message] of marks) {
      if (at < u.scales.x.min || at > u.scales.x.max) continue;
      const x = u.valToPos(at, "x", true);
      const colour = COLOURS[severity] || COLOURS.info;
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, top + 26 * devicePixelRatio, 4 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.fill();
      const label = message.length > 40 ? message.slice(0, 39) + "…" : message;
      const room = u.bbox.left + u.bbox.width - ctx.measureText(label).width - 8;
      ctx.fillText(label, Math.min(x + 8 * devicePixelRatio, room), top + 30 * devicePixelRatio);
      drawn++;
    }
    ctx.restore();
    return drawn;
  }
  function draw() {
    const holder = document.getElementById("chart");
    const data = JSON.parse(document.getElementById("chart-data").textContent);
    const unit = holder.dataset.unit || "";
    const zone = holder.dataset.zone || "UTC";
    const limits = data.limits;
    const width = Math.max(320, holder.clientWidth - 16);
    // The y scale takes in the limits too, so the bands show even when every reading is well inside.
    const bounds = (limits || []).flatMap((l) => [l.low, l.high, l.pre_low, l.pre_high]).filter((v) => v != null);
    // 24-hour clock times and ISO dates on the time axis and in the cursor's legend, in the site's zone.
    const local = (ts) => uPlot.tzDate(new Date(ts * 1e3), zone);
    const day = uPlot.fmtDate("{YYYY}-{MM}-{DD}"), clock = uPlot.fmtDate("{HH}:{mm}");
    const full = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}");
    const ticks = (u, splits, axis, space, incr) => splits.map((v, i) => {
      if (v == null) return null;
      const d = local(v);
      if (incr >= 86400) return day(d);
      return i === 0 || (d.getHours() === 0 && d.getMinutes() === 0) ? `${clock(d)}\n${day(d)}` : clock(d);
    });
    const options = {
      width: width,
      height: 340,
      tzDate: local,
      scales: {
        x: { time: true, min: data.from, max: data.to },
        y: {
          range: (u, min, max) => {
            const low = Math.min(min ?? Infinity, ...bounds), high = Math.max(max ?? -Infinity, ...bounds);
            if (!isFinite(low) || !isFinite(high)) return [0, 1];
            const pad = Math.max((high - low) * 0.08, 0.5);
            return [low - pad, high + pad];
          },
        },
      },
      series: [
        { label: `time (${zone})`, value: (u, v) => (v == null ? "--" : full(local(v))) },
        { label: "min", stroke: "rgba(18,50,74,.35)", width: 1 },
        { label: "max", stroke: "rgba(18,50,74,.35)", width: 1 },
        { label: "mean", stroke: "#12324a", width: 2 },
      ],
      bands: [{ series: [2, 1], fill: "rgba(18,50,74,.18)" }],
      axes: [{ values: ticks, space: 60 }, { label: unit, size: 60 }],
      hooks: {
        drawClear: [
          (u) => {
            holder.dataset.bands = String(limitBands(u, limits, unit));
            shade(u, data.gaps, "rgba(95,99,104,.28)", "#3c4043", false);
            holder.dataset.delayed = String(hatch(u, data.delayed || []));
            shade(u, data.excursions, "rgba(179,38,30,.22)", "#b3261e", true);
          },
        ],
        draw: [(u) => {
          hatchLabels(u, data.delayed || []);
          holder.dataset.moves = String(moveMarks(u, data.moves || []));
          holder.dataset.marks = String(alertMarks(u, data.alerts));
        }],
      },
    };
    const plot = new uPlot(options, [data.x, data.min, data.max, data.mean], holder);
    // The whole message of the mark under the pointer, as the plot's tooltip.
    plot.over.addEventListener("mousemove", (event) => {
      const near = data.alerts.filter(([at]) => Math.abs(plot.valToPos(at, "x") - event.offsetX) <= 6);
      plot.over.title = near.map(([, severity, message]) => `${severity}: ${message}`).join("\n");
    });
    holder.dataset.drawn = String(data.x.length);
    window.addEventListener("resize", () => plot.setSize({ width: Math.max(320, holder.clientWidth - 16), height: 340 }));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
