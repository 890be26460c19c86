// The sensor chart: uPlot over the JSON the page embeds (cloud/web/chart.py).
// min and max are drawn with a band between them, the mean as a line; gaps (grey) and
// excursions (red) are shaded behind the series and labelled; drag across to zoom,
// double-click to zoom out.  No data leaves the page: everything came with it.
(function () {
  "use strict";
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
  function draw() {
    const holder = document.getElementById("chart");
    const data = JSON.parse(document.getElementById("chart-data").textContent);
    const unit = holder.dataset.unit || "";
    const width = Math.max(320, holder.clientWidth - 16);
    const options = {
      width: width,
      height: 340,
      scales: { x: { time: true, min: data.from, max: data.to } },
      series: [
        {},
        { label: "min", stroke: "rgba(18,50,74,.35)", width: 1 },
        { label: "max", stroke: "rgba(18,50,74,.35)", width: 1 },
        { label: "mean", stroke: "#12324a", width: 2 },
      ],
      bands: [{ series: [2, 1], fill: "rgba(18,50,74,.18)" }],
      axes: [{}, { label: unit, size: 60 }],
      hooks: {
        drawClear: [
          (u) => {
            shade(u, data.gaps, "rgba(95,99,104,.28)", "#3c4043", false);
            shade(u, data.excursions, "rgba(179,38,30,.22)", "#b3261e", true);
          },
        ],
      },
    };
    const plot = new uPlot(options, [data.x, data.min, data.max, data.mean], holder);
    holder.dataset.drawn = String(data.x.length);
    window.addEventListener("resize", () => plot.setSize({ width: Math.max(320, holder.clientWidth - 16), height: 340 }));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
