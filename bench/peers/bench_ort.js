#!/usr/bin/env node
// ONNX Runtime peer of `regain bench infer`: images/s of one inference batch
// of a benchmark network exported from PyTorch (export_onnx.py).
//
//   node bench/peers/bench_ort.js infer MODEL [--batch 1] [--threads 1] \
//       [--steps 200] [--windows 5] [--warmup 20] [--onnx-dir bench/out/onnx]
//
// The session is set up "at its best" for a CPU: intraOpNumThreads = --threads,
// interOpNumThreads = 1, sequential execution, every graph optimization
// (BN folded into the convolutions, activations fused, layouts chosen by ORT).
// The input is one fixed random float32 [batch, 1, 28, 28] tensor made once.
// --warmup runs first (untimed), then --windows timed windows of --steps runs;
// images_per_s and latency_ms are the medians over windows.
//
// Output: progress on stderr; the last stdout line is the JSON object every
// benchmark of the project prints (tool "onnxruntime"). peak_rss_mib is the
// process's own maximum resident set (getrusage).
//
// onnxruntime-node 1.30 from npm: `cd bench/peers && npm install --ignore-scripts`
// (the CPU library ships inside the package; the install script would only
// fetch GPU libraries).
'use strict';

const path = require('path');
const fs = require('fs');

const MODELS = ['mbv2-tiny', 'resnet20', 'resnet20-w2'];
const USAGE = 'usage: node bench_ort.js infer MODEL [--batch N] [--threads N] ' +
  '[--steps N] [--windows N] [--warmup N] [--onnx-dir DIR]';

function fail(msg) {
  process.stderr.write(`bench_ort.js: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    batch: 1, threads: 1, steps: 200, windows: 5, warmup: 20,
    onnxDir: path.join(__dirname, '..', 'out', 'onnx'),
  };
  const pos = [];
  const ints = { '--batch': 'batch', '--threads': 'threads', '--steps': 'steps',
                 '--windows': 'windows', '--warmup': 'warmup' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    if (a in ints || a === '--onnx-dir') {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--onnx-dir') { opts.onnxDir = v; continue; }
      if (!/^[0-9]+$/.test(v)) fail(`${a}: expected a whole number, got '${v}'`);
      opts[ints[a]] = parseInt(v, 10);
    } else if (a.startsWith('-')) {
      fail(`unknown option '${a}'`);
    } else {
      pos.push(a);
    }
  }
  if (pos.length !== 2) fail(`expected WORK and MODEL, got ${pos.length} arguments`);
  [opts.work, opts.model] = pos;
  if (opts.work === 'train') fail('ONNX Runtime does not train; only "infer" is measured');
  if (opts.work !== 'infer') fail(`unknown work '${opts.work}'; expected infer`);
  if (!MODELS.includes(opts.model)) fail(`unknown model '${opts.model}'; expected one of ${MODELS.join(', ')}`);
  for (const k of ['batch', 'threads', 'steps', 'windows']) {
    if (opts[k] < 1) fail(`--${k} must be at least 1, got ${opts[k]}`);
  }
  return opts;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function log(msg) { process.stderr.write(`bench_ort: ${msg}\n`); }

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const file = path.join(opts.onnxDir, `${opts.model}.onnx`);
  if (!fs.existsSync(file)) {
    fail(`${file}: no such model; export it first with /usr/bin/python3 bench/peers/export_onnx.py`);
  }
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    fail(`cannot load onnxruntime-node (${e.message}); run: cd bench/peers && npm install --ignore-scripts`);
  }

  const session = await ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const n = opts.batch * 28 * 28;
  const data = new Float32Array(n);
  // A fixed pseudo-random input (xorshift32) so runs are repeatable; values
  // do not change the speed of float arithmetic, only avoid all-zero input.
  let s = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    data[i] = s / 4294967296 - 0.5;
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [opts.batch, 1, 28, 28]) };
  const check = await session.run(feeds);
  const dims = check[session.outputNames[0]].dims;
  if (dims.length !== 2 || dims[0] !== opts.batch || dims[1] !== 10) {
    fail(`${file}: output shape [${dims}] is not [${opts.batch}, 10]`);
  }

  log(`infer ${opts.model} batch ${opts.batch} threads ${opts.threads} ` +
      `(onnxruntime-node ${require('onnxruntime-node/package.json').version}): ` +
      `${opts.warmup} warm-up runs, ${opts.windows} windows of ${opts.steps}`);
  for (let i = 0; i < opts.warmup; i++) await session.run(feeds);
  const rates = [];
  const lat = [];
  for (let w = 0; w < opts.windows; w++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < opts.steps; i++) await session.run(feeds);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(opts.steps * opts.batch / dt);
    lat.push(1000 * dt / opts.steps);
    log(`window ${w + 1}/${opts.windows}: ${rates[w].toFixed(1)} images/s, ${lat[w].toFixed(3)} ms/batch`);
  }
  await session.release();

  const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
  process.stdout.write(JSON.stringify({
    tool: 'onnxruntime', work: 'infer', model: opts.model,
    batch: opts.batch, threads: opts.threads,
    images_per_s: round(median(rates), 3),
    latency_ms: round(median(lat), 4),
    windows: opts.windows,
    peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1), // maxRSS is KiB
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench_ort.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
