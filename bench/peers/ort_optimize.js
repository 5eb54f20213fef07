#!/usr/bin/env node
// Writes ONNX Runtime's optimized form of a model (every graph optimization,
// as bench_ort.js runs it) so that export_int8.py can check what ORT fused:
//
//   node bench/peers/ort_optimize.js MODEL.onnx OUT.onnx
'use strict';

async function main() {
  const [src, out] = process.argv.slice(2);
  if (!src || !out) {
    process.stderr.write('usage: node ort_optimize.js MODEL.onnx OUT.onnx\n');
    process.exit(2);
  }
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(src, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: out,
  });
  await session.release();
}

main().catch((e) => {
  process.stderr.write(`ort_optimize.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
