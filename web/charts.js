// Small live charts as inline SVG: one or more series of recent samples,
// scaled to the largest value shown (with some headroom, so a steady value
// is not drawn along the top edge). No library: a shaded polyline per series.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 120;
const HEIGHT = 32;

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

/** An empty chart to `draw` into; it stretches to its container's width. */
export function chart(label) {
  return svg("svg", { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "aria-label": label });
}

/**
 * Redraws `node` with `series` (arrays of numbers, oldest first, each drawn
 * over `capacity` slots so time runs at the same pace in every chart).
 */
export function draw(node, series, capacity) {
  const max = Math.max(1, ...series.flat()) * 1.25;
  const x = (i, length) => WIDTH - (length - 1 - i) * (WIDTH / (capacity - 1));
  const y = (v) => HEIGHT - (v / max) * HEIGHT;
  node.replaceChildren(
    ...series.flatMap((values, n) => {
      if (values.length === 0) return [];
      const points = values.map((v, i) => `${x(i, values.length).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const area = `${x(0, values.length).toFixed(1)},${HEIGHT} ${points} ${WIDTH},${HEIGHT}`;
      return [
        svg("polygon", { points: area, class: `area series-${n}` }),
        svg("polyline", { points, class: `series-${n}`, fill: "none", "vector-effect": "non-scaling-stroke" }),
      ];
    }),
  );
}
