#!/usr/bin/env node
'use strict';
// Times one model with ONNX Runtime (onnxruntime-node, CPU, all graph optimisations,
// sequential execution, inter-op threads 1) on random inputs: the peer side of
// `pillar bench`, with the same options, the same input values and the same statistics.
//
//   node bench/ort_bench.js MODEL.onnx [--threads N] [--batch N] [--shape NAME=DIMS]...
//                           [--dim SYMBOL=N]... [--time S] [--warmup S] [--seed S] [--json]
//
// --threads N   intra-op threads (0 = ORT's default, one per physical core)
// --batch N     leading dimension of every input whose first dimension is symbolic
//               (default 1; an error if the model fixes it to another value)
// --shape, --dim  as in `pillar bench`, for other symbolic dimensions
// --time S      timed seconds (default 5); --warmup S untimed seconds first (default 1);
//               each at least one run
// --seed S      seed of the random inputs (default 1): the values `pillar run` and
//               `pillar bench` make (splitmix64; floats uniform in [0,1), integers in
//               [0,10), bools 0/1)
// --json        end with one line holding a JSON object with the keys of
//               `pillar bench --json` (tool "ort"; isa is the best level this CPU has,
//               which ORT's MLAS kernels dispatch to on their own)
// Peak RSS is that of the whole node process (process.resourceUsage().maxRSS).
// Exit codes: 0 ok, 1 usage, 2 the model fails to load or run, 3 no onnxruntime-node.
const fs = require('fs');

function usage(msg) {
  if (msg) console.error(`ort_bench: ${msg}`);
  console.error('usage: node ort_bench.js MODEL [--threads N] [--batch N] [--shape NAME=DIMS] ' +
                '[--dim SYMBOL=N] [--time S] [--warmup S] [--seed S] [--json]');
  process.exit(1);
}

function parseArgs(argv) {
  const a = { threads: 0, batch: 1, batchGiven: false, time: 5, warmup: 1, seed: 1n,
              json: false, shapes: {}, dims: {}, pos: [] };
  for (let i = 0; i < argv.length; i++) {
    let k = argv[i];
    let inline = null;
    const eq = k.indexOf('=');
    if (k.startsWith('--') && eq > 0) {
      inline = k.slice(eq + 1);
      k = k.slice(0, eq);
    }
    const val = () => {
      if (inline !== null) return inline;
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      return argv[++i];
    };
    const int = (v, lo) => {
      if (!/^[0-9]+$/.test(v) || Number(v) < lo) usage(`${k}: '${v}' is not an integer >= ${lo}`);
      return Number(v);
    };
    const secs = (v) => {
      const x = Number(v);
      if (v === '' || !Number.isFinite(x) || x < 0 || x > 1e6) usage(`${k}: '${v}' is not a number of seconds`);
      return x;
    };
    const named = (v) => {
      const e = v.lastIndexOf('=');
      if (e <= 0) usage(`${k} expects NAME=VALUE, got '${v}'`);
      return [v.slice(0, e), v.slice(e + 1)];
    };
    if (k === '--threads') a.threads = int(val(), 0);
    else if (k === '--batch') { a.batch = int(val(), 1); a.batchGiven = true; }
    else if (k === '--time') a.time = secs(val());
    else if (k === '--warmup') a.warmup = secs(val());
    else if (k === '--seed') { const v = val(); int(v, 0); a.seed = BigInt(v); }
    else if (k === '--json') a.json = true;
    else if (k === '--shape') {
      const [n, t] = named(val());
      const dims = t.split(/[x,]/).map((d) => int(d, 0));
      a.shapes[n] = dims;
    } else if (k === '--dim') {
      const [n, t] = named(val());
      a.dims[n] = int(t, 0);
    } else if (k === '-h' || k === '--help') {
      const src = fs.readFileSync(__filename, 'utf8').split('\n');
      console.log(src.slice(2, 24).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else if (k.startsWith('-')) usage(`unknown option ${k}`);
    else a.pos.push(k);
  }
  if (a.pos.length !== 1) usage('expected one MODEL');
  return a;
}

// splitmix64 over BigInt, as tools/pillar/bench.c: the same input values for a seed.
const M64 = (1n << 64n) - 1n;
function makeRng(seed) {
  let s = seed & M64;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M64;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
}

const TYPED = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array, float16: Uint16Array,
};

function f32ToF16Exact(f) { // f = k/1024 with k < 1024: exactly representable
  if (f === 0) return 0;
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, f);
  const x = buf.getUint32(0);
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  return (e << 10) | ((x & 0x7fffff) >>> 13);
}

function randomTensor(ort, type, dims, rng) {
  const Arr = TYPED[type];
  if (!Arr) throw new Error(`cannot make random ${type} values`);
  const n = dims.reduce((p, d) => p * d, 1);
  const data = new Arr(n);
  for (let i = 0; i < n; i++) {
    const r = rng();
    const small = Number(r % 10n);
    switch (type) {
      case 'float32': data[i] = Number(r >> 40n) / 16777216; break;
      case 'float64': data[i] = Number(r >> 11n) / 9007199254740992; break;
      case 'float16': data[i] = f32ToF16Exact(Number(r >> 54n) / 1024); break;
      case 'bool': data[i] = Number(r >> 63n); break;
      case 'int64': case 'uint64': data[i] = BigInt(small); break;
      default: data[i] = small;
    }
  }
  return new ort.Tensor(type, data, dims);
}

// Physical cores this process may use (SMT siblings once), like pillar's default.
function physicalCores() {
  const keys = new Set();
  try {
    for (const d of fs.readdirSync('/sys/devices/system/cpu')) {
      if (!/^cpu[0-9]+$/.test(d)) continue;
      const base = `/sys/devices/system/cpu/${d}/topology/`;
      try {
        const online = `/sys/devices/system/cpu/${d}/online`;
        if (fs.existsSync(online) && fs.readFileSync(online, 'utf8').trim() === '0') continue;
        keys.add(fs.readFileSync(base + 'physical_package_id', 'utf8').trim() + ':' +
                 fs.readFileSync(base + 'core_id', 'utf8').trim());
      } catch (e) { /* no topology: counted below */ }
    }
  } catch (e) { /* not Linux */ }
  return keys.size || require('os').cpus().length || 1;
}

function cpuIsa() {
  let flags = '';
  try {
    const m = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m);
    if (m) flags = ` ${m[1]} `;
  } catch (e) { return 'unknown'; }
  const has = (f) => flags.includes(` ${f} `);
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every(has)) return 'avx512';
  if (['avx2', 'fma'].every(has)) return 'avx2';
  return 'ref';
}

function percentile(sorted, q) { // numpy's default: linear between neighbours
  const n = sorted.length;
  if (!n) return 0;
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  if (lo + 1 >= n) return sorted[n - 1];
  return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (pos - lo);
}

// The shape of input `meta` from --shape, --batch and --dim; throws on an open dim.
function inputShape(a, meta) {
  if (a.shapes[meta.name]) {
    const s = a.shapes[meta.name];
    if (a.batchGiven && s.length && s[0] !== a.batch)
      throw new Error(`--batch ${a.batch} disagrees with --shape ${meta.name}=${s.join('x')}`);
    return s;
  }
  return meta.shape.map((d, i) => {
    if (typeof d === 'number' && d >= 0) {
      if (i === 0 && a.batchGiven && d !== a.batch)
        throw new Error(`--batch ${a.batch}: input '${meta.name}' has a fixed leading dimension of ${d}`);
      return d;
    }
    if (typeof d === 'string' && d && d in a.dims) return a.dims[d];
    if (i === 0) return a.batch;
    throw new Error(`input '${meta.name}' has ${typeof d === 'string' && d ? `symbolic dimension '${d}'` : 'an unknown dimension'} ` +
                    `(dimension ${i}): give --dim or --shape ${meta.name}=DIMS`);
  });
}

const nowS = () => Number(process.hrtime.bigint()) / 1e9;

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const model = a.pos[0];
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    console.error('ort_bench: onnxruntime-node is not installed in bench/node_modules ' +
                  '(run scripts/install-deps.sh)');
    process.exit(3);
  }
  if (!fs.existsSync(model)) {
    console.error(`ort_bench: ${model}: no such file`);
    process.exit(2);
  }
  const threads = a.threads > 0 ? a.threads : physicalCores();
  const opts = { graphOptimizationLevel: 'all', executionMode: 'sequential',
                 interOpNumThreads: 1, intraOpNumThreads: threads };
  let session;
  try {
    session = await ort.InferenceSession.create(model, opts);
  } catch (e) {
    console.error(`ort_bench: ${model}: ${e.message || e}`);
    process.exit(2);
  }
  const rng = makeRng(a.seed);
  const feeds = {};
  let batch = 0;
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input '${meta.name}' is not a tensor`);
    const dims = inputShape(a, meta);
    if (!batch && dims.length) batch = dims[0];
    feeds[meta.name] = randomTensor(ort, meta.type, dims, rng);
    console.log(`input '${meta.name}': random ${meta.type} ${dims.length ? dims.join('x') : 'scalar'}`);
  }
  if (!batch) batch = 1;

  let warm = 0;
  const t0 = nowS();
  do {
    await session.run(feeds);
    warm++;
  } while (nowS() - t0 < a.warmup);
  const warmS = nowS() - t0;
  const ms = [];
  const start = nowS();
  do {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - s) / 1e6);
  } while (nowS() - start < a.time && ms.length < 1000000);
  const timedS = nowS() - start;
  await session.release();

  const mean = ms.reduce((p, x) => p + x, 0) / ms.length;
  ms.sort((x, y) => x - y);
  const r = {
    tool: 'ort', model, batch, threads, isa: cpuIsa(),
    mean_ms: mean, median_ms: percentile(ms, 50), p90_ms: percentile(ms, 90),
    p99_ms: percentile(ms, 99), min_ms: ms[0], max_ms: ms[ms.length - 1], runs: ms.length,
    items_per_s: mean > 0 ? (batch * 1e3) / mean : 0,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    ort_version: require('onnxruntime-node/package.json').version,
  };
  const f = (x) => x.toFixed(3);
  console.log(`model: ${model}`);
  console.log(`onnxruntime-node ${r.ort_version}, threads: ${threads}, batch: ${batch}`);
  console.log(`warm-up: ${warm} runs in ${warmS.toFixed(2)} s; timed: ${ms.length} runs in ${timedS.toFixed(2)} s`);
  console.log(`latency ms: mean ${f(r.mean_ms)}  median ${f(r.median_ms)}  p90 ${f(r.p90_ms)}  ` +
              `p99 ${f(r.p99_ms)}  min ${f(r.min_ms)}  max ${f(r.max_ms)}`);
  console.log(`throughput: ${r.items_per_s.toFixed(2)} items/s`);
  console.log(`peak RSS: ${r.peak_rss_mb.toFixed(1)} MB`);
  if (a.json) {
    r.peak_rss_mb = Number(r.peak_rss_mb.toFixed(2));
    console.log(JSON.stringify(r));
  }
}

main().catch((e) => {
  console.error(`ort_bench: ${e.message || e}`);
  process.exit(2);
});
