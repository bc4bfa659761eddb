#!/usr/bin/env node
'use strict';
// Top-1 class of every sample in a batch, with ONNX Runtime (CPU, all graph
// optimisations): the peer side of bench/int8_agreement.sh.
//
//   node bench/ort_top1.js MODEL.onnx INPUTS.npy OUT.npy [--threads N] [--no-opt]
//
// --no-opt runs without graph optimisations: QDQ nodes then run as themselves (float
// semantics) instead of fused integer kernels, which shows how much two exact
// implementations of the same QDQ file can disagree on a model's top-1.
// INPUTS.npy holds N samples along axis 0; each is run on its own (batch 1) through the
// model's single input, and OUT.npy gets the int32 argmax of the first output per sample.
const { readNpy, writeNpy } = require('./npy');

async function main() {
  const argv = process.argv.slice(2);
  let threads = 0;
  let noOpt = false;
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--threads') threads = parseInt(argv[++i], 10);
    else if (argv[i] === '--no-opt') noOpt = true;
    else pos.push(argv[i]);
  }
  if (pos.length !== 3 || !Number.isInteger(threads) || threads < 0) {
    console.error('usage: node ort_top1.js MODEL.onnx INPUTS.npy OUT.npy [--threads N] [--no-opt]');
    process.exit(1);
  }
  const ort = require('onnxruntime-node');
  const opts = { graphOptimizationLevel: noOpt ? 'disabled' : 'all', executionMode: 'sequential', interOpNumThreads: 1 };
  if (threads) opts.intraOpNumThreads = threads;
  const sess = await ort.InferenceSession.create(pos[0], opts);
  const x = readNpy(pos[1]);
  const n = x.dims[0];
  const per = x.data.length / n;
  const dims = [1, ...x.dims.slice(1)];
  const top = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const t = new ort.Tensor('float32', x.data.subarray(i * per, (i + 1) * per), dims);
    const out = await sess.run({ [sess.inputNames[0]]: t });
    const y = out[sess.outputNames[0]].data;
    let best = 0;
    for (let k = 1; k < y.length; k++) if (y[k] > y[best]) best = k;
    top[i] = best;
  }
  writeNpy(pos[2], 'int32', [n], top);
}
main().catch((e) => { console.error(`ort_top1: ${e.message}`); process.exit(2); });
