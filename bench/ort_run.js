#!/usr/bin/env node
'use strict';
// Runs a model with ONNX Runtime (CPU, all graph optimisations) on .npy inputs and writes
// every output as OUTDIR/<output name>.npy -- the peer side of pillar's comparisons.
//
//   node bench/ort_run.js MODEL.onnx OUTDIR [--input NAME=FILE.npy ...] [--input-dir DIR]
//                         [--threads N] [--repeat N] [--warmup N]
//
// --input-dir DIR takes DIR/<input name>.npy for every graph input not given by --input.
// --repeat N times N more runs after --warmup runs (default 1) and prints one line
// "ort MODEL: median X ms, min Y ms over N runs" (outputs come from the first run).
// Output names are used as file names with characters other than [A-Za-z0-9._-] -> '_'.
const fs = require('fs');
const path = require('path');
const { readNpy, writeNpy } = require('./npy');

function usage(msg) {
  if (msg) console.error(`ort_run: ${msg}`);
  console.error('usage: node ort_run.js MODEL OUTDIR [--input NAME=FILE.npy ...] ' +
                '[--input-dir DIR] [--threads N] [--repeat N] [--warmup N]');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { inputs: {}, threads: 0, repeat: 0, warmup: 1, pos: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--input') {
      const v = val();
      const eq = v.lastIndexOf('=');
      if (eq <= 0) usage(`--input '${v}' is not NAME=FILE`);
      a.inputs[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (k === '--input-dir') a.inputDir = val();
    else if (k === '--threads') a.threads = parseInt(val(), 10);
    else if (k === '--repeat') a.repeat = parseInt(val(), 10);
    else if (k === '--warmup') a.warmup = parseInt(val(), 10);
    else if (k === '-h' || k === '--help') usage();
    else if (k.startsWith('--')) usage(`unknown option ${k}`);
    else a.pos.push(k);
  }
  if (a.pos.length !== 2) usage('expected MODEL and OUTDIR');
  for (const n of ['threads', 'repeat', 'warmup'])
    if (!Number.isInteger(a[n]) || a[n] < 0) usage(`--${n} must be a non-negative integer`);
  return a;
}

const fileName = (name) => name.replace(/[^A-Za-z0-9._-]/g, '_');

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const [modelPath, outDir] = a.pos;
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    console.error('ort_run: onnxruntime-node is not installed in bench/node_modules ' +
                  '(run scripts/install-deps.sh)');
    process.exit(3);
  }
  const opts = { graphOptimizationLevel: 'all', executionMode: 'sequential',
                 interOpNumThreads: 1 };
  if (a.threads > 0) opts.intraOpNumThreads = a.threads;
  const session = await ort.InferenceSession.create(modelPath, opts);

  const feeds = {};
  for (const name of session.inputNames) {
    let file = a.inputs[name];
    if (!file && a.inputDir) file = path.join(a.inputDir, fileName(name) + '.npy');
    if (!file || !fs.existsSync(file))
      throw new Error(`no .npy for model input '${name}'` + (file ? ` (${file} missing)` : ''));
    const t = readNpy(file);
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  for (const name of Object.keys(a.inputs))
    if (!session.inputNames.includes(name))
      throw new Error(`--input '${name}': the model has no such input ` +
                      `(inputs: ${session.inputNames.join(', ')})`);

  const results = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of session.outputNames) {
    const t = results[name];
    writeNpy(path.join(outDir, fileName(name) + '.npy'), t.type, t.dims, t.data);
  }

  if (a.repeat > 0) {
    for (let i = 0; i < a.warmup; i++) await session.run(feeds);
    const ms = [];
    for (let i = 0; i < a.repeat; i++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((x, y) => x - y);
    const med = ms.length % 2 ? ms[(ms.length - 1) / 2]
                              : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2;
    console.log(`ort ${path.basename(modelPath)}: median ${med.toFixed(3)} ms, ` +
                `min ${ms[0].toFixed(3)} ms over ${ms.length} runs`);
  }
  await session.release();
}

main().catch((e) => {
  console.error(`ort_run: ${e.message || e}`);
  process.exit(1);
});
