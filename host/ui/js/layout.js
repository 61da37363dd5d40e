// A layered drawing of a DAG, left to right: longest-path layers, dummy points on long edges, barycentre sweeps against crossings, then coordinates.

/**
 * Places `nodes` ([{name, needs}]) in columns, one per layer, so that every
 * edge goes left to right. Answers `{nodes: [{name, x, y, width, height,
 * layer}], edges: [{from, to, points}], width, height, crossings}`, where
 * `x`, `y` are a node's top left corner and `points` run from the right
 * side of `from` to the left side of `to` through the edge's dummy points.
 */
export function layout(nodes, options = {}) {
  const o = {
    nodeWidth: 180, nodeHeight: 46, layerGap: 80, nodeGap: 18, dummyGap: 10, sweeps: 12, ...options,
  };
  const n = nodes.length;
  const index = new Map(nodes.map((node, i) => [node.name, i]));
  const parents = Array.from({ length: n }, () => []);
  const children = Array.from({ length: n }, () => []);
  const edges = [];
  nodes.forEach((node, v) => {
    const seen = new Set();
    for (const need of node.needs || []) {
      const u = index.get(need);
      if (u === undefined || u === v || seen.has(u)) continue;
      seen.add(u);
      parents[v].push(u);
      children[u].push(v);
      edges.push([u, v]);
    }
  });

  const layer = layers(n, parents, children);
  const drawn = edges.filter(([u, v]) => layer[v] > layer[u]);

  // Vertices: the nodes, then one dummy per layer an edge passes through.
  const vLayer = [...layer];
  const up = Array.from({ length: n }, () => []);
  const down = Array.from({ length: n }, () => []);
  const chains = drawn.map(([u, v]) => {
    const chain = [u];
    for (let l = layer[u] + 1; l < layer[v]; l += 1) {
      const d = vLayer.length;
      vLayer.push(l);
      up.push([]);
      down.push([]);
      chain.push(d);
    }
    chain.push(v);
    for (let i = 1; i < chain.length; i += 1) {
      down[chain[i - 1]].push(chain[i]);
      up[chain[i]].push(chain[i - 1]);
    }
    return chain;
  });
  const count = vLayer.length;
  const isDummy = (v) => v >= n;
  const depth = n === 0 ? 0 : Math.max(...layer) + 1;

  const order = initialOrder(depth, vLayer, down, n);
  const pos = new Array(count).fill(0);
  const place = () => order.forEach((row) => row.forEach((v, i) => { pos[v] = i; }));
  place();

  let best = order.map((row) => [...row]);
  let fewest = crossings(order, down, pos);
  for (let sweep = 0; sweep < o.sweeps && fewest > 0; sweep += 1) {
    for (let l = 1; l < depth; l += 1) reorder(order[l], up, pos);
    for (let l = depth - 2; l >= 0; l -= 1) reorder(order[l], down, pos);
    transpose(order, up, down, pos);
    const now = crossings(order, down, pos);
    if (now < fewest) {
      fewest = now;
      best = order.map((row) => [...row]);
    }
  }
  best.forEach((row, l) => { order[l] = row; });
  place();

  // Vertical positions: packed, centred, then pulled towards neighbours.
  const height = (v) => (isDummy(v) ? 0 : o.nodeHeight);
  const gap = (a, b) => (height(a) + height(b)) / 2 + (isDummy(a) || isDummy(b) ? o.dummyGap : o.nodeGap);
  const y = new Array(count).fill(0);
  const spans = order.map((row) => {
    let at = height(row[0] ?? 0) / 2;
    row.forEach((v, i) => {
      if (i > 0) at += gap(row[i - 1], v);
      y[v] = at;
    });
    return row.length ? at + height(row[row.length - 1]) / 2 : 0;
  });
  const tallest = Math.max(0, ...spans);
  order.forEach((row, l) => row.forEach((v) => { y[v] += (tallest - spans[l]) / 2; }));
  const passes = [up, down, up, down, null, null];
  for (const towards of passes) {
    const range = towards === down ? [...order.keys()].reverse() : [...order.keys()];
    for (const l of range) {
      const row = order[l];
      const desired = row.map((v) => {
        const near = towards ? towards[v] : [...up[v], ...down[v]];
        return near.length ? near.reduce((sum, w) => sum + y[w], 0) / near.length : y[v];
      });
      const weights = row.map((v) => (isDummy(v) ? 4 : 1));
      const placed = separated(desired, weights, row.map((v, i) => (i === 0 ? 0 : gap(row[i - 1], v))));
      row.forEach((v, i) => { y[v] = placed[i]; });
    }
  }

  let top = Infinity;
  let bottom = -Infinity;
  for (let v = 0; v < count; v += 1) {
    top = Math.min(top, y[v] - height(v) / 2);
    bottom = Math.max(bottom, y[v] + height(v) / 2);
  }
  if (!Number.isFinite(top)) { top = 0; bottom = 0; }
  const x = (v) => vLayer[v] * (o.nodeWidth + o.layerGap);
  const cy = (v) => y[v] - top;

  return {
    nodes: nodes.map((node, v) => ({
      name: node.name,
      x: x(v),
      y: cy(v) - o.nodeHeight / 2,
      width: o.nodeWidth,
      height: o.nodeHeight,
      layer: layer[v],
    })),
    edges: chains.map((chain) => {
      const from = chain[0];
      const to = chain[chain.length - 1];
      const points = [[x(from) + o.nodeWidth, cy(from)]];
      for (const d of chain.slice(1, -1)) {
        points.push([x(d), cy(d)], [x(d) + o.nodeWidth, cy(d)]);
      }
      points.push([x(to), cy(to)]);
      return { from: nodes[from].name, to: nodes[to].name, points };
    }),
    width: depth ? (depth - 1) * (o.nodeWidth + o.layerGap) + o.nodeWidth : 0,
    height: bottom - top,
    crossings: fewest,
  };
}

/**
 * Each node's layer: one more than its deepest need (longest path), then
 * nodes that need nothing moved right next to their first dependant, so
 * that a lone input does not draw a long edge across the picture. Nodes
 * on a cycle (never in a DAG drover accepted) go after the rest.
 */
function layers(n, parents, children) {
  const layer = new Array(n).fill(0);
  const waiting = parents.map((p) => p.length);
  const topo = [];
  for (let v = 0; v < n; v += 1) if (waiting[v] === 0) topo.push(v);
  for (let head = 0; head < topo.length; head += 1) {
    const u = topo[head];
    for (const v of children[u]) {
      layer[v] = Math.max(layer[v], layer[u] + 1);
      waiting[v] -= 1;
      if (waiting[v] === 0) topo.push(v);
    }
  }
  if (topo.length < n) {
    const after = Math.max(0, ...topo.map((v) => layer[v])) + 1;
    for (let v = 0; v < n; v += 1) if (waiting[v] > 0) layer[v] = after;
  }
  for (let v = 0; v < n; v += 1) {
    if (parents[v].length === 0 && children[v].length > 0) {
      layer[v] = Math.max(0, Math.min(...children[v].map((c) => layer[c])) - 1);
    }
  }
  return layer;
}

/** Each layer's vertices in the order a depth-first walk from the first layer meets them, so that relatives start near each other. */
function initialOrder(depth, vLayer, down, n) {
  const order = Array.from({ length: depth }, () => []);
  const seen = new Uint8Array(vLayer.length);
  const visit = (start) => {
    const stack = [start];
    while (stack.length) {
      const v = stack.pop();
      if (seen[v]) continue;
      seen[v] = 1;
      order[vLayer[v]].push(v);
      for (let i = down[v].length - 1; i >= 0; i -= 1) if (!seen[down[v][i]]) stack.push(down[v][i]);
    }
  };
  for (let v = 0; v < n; v += 1) if (vLayer[v] === 0) visit(v);
  for (let v = 0; v < vLayer.length; v += 1) visit(v);
  return order;
}

/** Sorts `row` by the mean position of each vertex's neighbours (`near`); a vertex without any keeps its place. */
function reorder(row, near, pos) {
  const key = new Map();
  for (const v of row) {
    const list = near[v];
    key.set(v, list.length ? list.reduce((sum, w) => sum + pos[w], 0) / list.length : pos[v]);
  }
  row.sort((a, b) => key.get(a) - key.get(b) || pos[a] - pos[b]);
  row.forEach((v, i) => { pos[v] = i; });
}

/** Swaps neighbours in a layer while that removes crossings with the layers on both sides (a few rounds at most). */
function transpose(order, up, down, pos) {
  const cost = (a, b) => {
    // Crossings among the edges of `a` and `b` when `a` is above `b`.
    let c = 0;
    for (const near of [up, down]) {
      for (const x of near[a]) for (const y of near[b]) if (pos[x] > pos[y]) c += 1;
    }
    return c;
  };
  for (let round = 0; round < 4; round += 1) {
    let improved = false;
    for (const row of order) {
      for (let i = 0; i + 1 < row.length; i += 1) {
        const a = row[i];
        const b = row[i + 1];
        if (cost(b, a) < cost(a, b)) {
          row[i] = b;
          row[i + 1] = a;
          pos[a] = i + 1;
          pos[b] = i;
          improved = true;
        }
      }
    }
    if (!improved) break;
  }
}

/** Edge crossings between each pair of neighbouring layers: inversions counted with a Fenwick tree. */
export function crossings(order, down, pos) {
  let total = 0;
  for (let l = 0; l + 1 < order.length; l += 1) {
    const pairs = [];
    for (const v of order[l]) for (const w of down[v]) pairs.push([pos[v], pos[w]]);
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const size = order[l + 1].length;
    const tree = new Array(size + 1).fill(0);
    let seen = 0;
    for (const [, p] of pairs) {
      // Count earlier edges that end below this one's end.
      let notAbove = 0;
      for (let i = p + 1; i > 0; i -= i & -i) notAbove += tree[i];
      total += seen - notAbove;
      for (let i = p + 1; i <= size; i += i & -i) tree[i] += 1;
      seen += 1;
    }
  }
  return total;
}

/**
 * Positions as close as may be (weighted least squares) to `desired`,
 * keeping the order and at least `gaps[i]` between `i - 1` and `i`:
 * isotonic regression (pool adjacent violators) on the positions less
 * their cumulative gaps.
 */
export function separated(desired, weights, gaps) {
  const offset = [];
  let sum = 0;
  for (let i = 0; i < desired.length; i += 1) {
    sum += i === 0 ? 0 : gaps[i];
    offset.push(sum);
  }
  const blocks = [];
  desired.forEach((d, i) => {
    blocks.push({ value: d - offset[i], weight: weights[i], size: 1 });
    while (blocks.length > 1 && blocks[blocks.length - 2].value > blocks[blocks.length - 1].value) {
      const b = blocks.pop();
      const a = blocks[blocks.length - 1];
      const weight = a.weight + b.weight;
      a.value = (a.value * a.weight + b.value * b.weight) / weight;
      a.weight = weight;
      a.size += b.size;
    }
  });
  const placed = [];
  for (const block of blocks) for (let k = 0; k < block.size; k += 1) placed.push(block.value + offset[placed.length]);
  return placed;
}

/** An SVG path through `points`: straight along a dummy's column, smooth curves between columns. */
export function edgePath(points) {
  let d = `M${points[0][0].toFixed(1)},${points[0][1].toFixed(1)}`;
  for (let i = 1; i < points.length; i += 1) {
    const [x1, y1] = points[i - 1];
    const [x2, y2] = points[i];
    if (Math.abs(y1 - y2) < 0.5) {
      d += `L${x2.toFixed(1)},${y2.toFixed(1)}`;
    } else {
      const mid = (x2 - x1) / 2;
      d += `C${(x1 + mid).toFixed(1)},${y1.toFixed(1)} ${(x2 - mid).toFixed(1)},${y2.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`;
    }
  }
  return d;
}
