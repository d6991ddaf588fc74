// A small line chart in SVG for the delivery history (`GET /api/integration/{id}/deliveryHistory`):
// one polyline per series over a shared time axis, each series scaled to its own maximum on a
// chart of its own, so that a backlog of thousands does not flatten a rate of five.

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

/**
 * A chart of `points` (objects with `time` in ms) for the series `[{key, label, cls}]`, over the
 * window `[from, to]` (ms). Missing values (null) break the line.
 */
export function lineChart(points, series, from, to, { width = 640, height = 90 } = {}) {
  const pad = { left: 56, right: 8, top: 8, bottom: 18 };
  const x = (t) => pad.left + ((t - from) / Math.max(to - from, 1)) * (width - pad.left - pad.right);
  return series.map(({ key, label, cls }) => {
    const values = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
    const max = Math.max(1, ...values);
    const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
    // Runs of points with a value, each drawn as one polyline.
    const runs = [];
    let run = [];
    for (const p of points) {
      const v = p[key];
      if (v === null || v === undefined) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(`${x(p.time).toFixed(1)},${y(v).toFixed(1)}`);
      }
    }
    if (run.length) runs.push(run);
    const last = values.length ? values[values.length - 1] : null;
    const title = `${label}: ${last === null ? 'no data' : format(last)} now, ${format(Math.max(0, ...values))} at most`;
    return svg('svg', { class: `chart ${cls}`, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'data-series': key },
      svg('title', {}, title),
      svg('line', { class: 'axis', x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }),
      svg('text', { x: pad.left - 4, y: pad.top + 8, 'text-anchor': 'end' }, format(max)),
      svg('text', { x: pad.left - 4, y: height - pad.bottom, 'text-anchor': 'end' }, '0'),
      svg('text', { x: pad.left, y: height - 4 }, `${label} · −15 min`),
      svg('text', { x: width - pad.right, y: height - 4, 'text-anchor': 'end' }, 'now'),
      ...runs.map((r) => r.length === 1
        ? svg('circle', { class: 'line', cx: r[0].split(',')[0], cy: r[0].split(',')[1], r: 2 })
        : svg('polyline', { class: 'line', points: r.join(' ') })));
  });
}

function format(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
