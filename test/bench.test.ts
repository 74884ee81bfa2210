import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decoderAnalyzeBench } from '../bench/analyze.js';
import { attentionBench } from '../bench/attention.js';
import { benchConfigs, peakRssMb, resetPeakRss, type DecoderBenchConfig } from '../bench/configs.js';
import { decoderForwardBench } from '../bench/forward.js';
import { buildDecoderBenchModel, decoderBenchBatch, decoderLoraStepBench, modelParams } from '../bench/lora-step.js';
import { bf16Available } from '../src/engine/backends/dnnl.js';
import { IGNORE_INDEX } from '../src/train/objectives/causal-lm.js';

const MAIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

/** qwen05b's shape at a tiny scale: 2 layers, GQA 4:2, tied embeddings, q/k/v biases; its batch, LoRA and mask settings. */
function mini(): DecoderBenchConfig {
  const q = benchConfigs().decoder.qwen05b;
  return {
    ...q, batch: 2, seq: 24, analyze: { samples: 12, seq: 12, batch_size: 5 },
    config: { ...q.config, hidden_size: 32, num_hidden_layers: 2, intermediate_size: 48, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 300 },
  };
}

describe('decoder bench configs (qwen05b shape)', () => {
  it('qwen05b is Qwen2.5-0.5B: 494,032,768 parameters (tied), 24 layers, GQA 14:2, LoRA r 8 on the seven PEFT modules, B4 x T256', () => {
    const q = benchConfigs().decoder.qwen05b, c = q.config;
    // counted from the shapes without building the 2 GB model: embeddings + 24 x (q, k, v with biases, o, gate, up, down, 2 norms) + final norm
    const h = Number(c.hidden_size), kv = Number(c.num_key_value_heads) * (h / Number(c.num_attention_heads)), i = Number(c.intermediate_size);
    const layer = (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * i + 2 * h;
    assert.equal(Number(c.vocab_size) * h + Number(c.num_hidden_layers) * layer + h, 494_032_768);
    assert.deepEqual([c.model_type, c.tie_word_embeddings, c.rope_theta, c.rms_norm_eps, h / Number(c.num_attention_heads)], ['qwen2', true, 1e6, 1e-6, 64]);
    assert.deepEqual([q.batch, q.seq, q.lora_r, q.analyze.samples, q.analyze.seq], [4, 256, 8, 256, 128]);
    assert.deepEqual(q.targets, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    // the same counting on a built model of the tiny shape agrees with modelParams (lm_head tied, counted once)
    const m = mini(), model = buildDecoderBenchModel(m), mh = 32, mkv = 16, mi = 48;
    assert.equal(modelParams(model), 300 * mh + 2 * ((mh * mh + mh) + 2 * (mh * mkv + mkv) + mh * mh + 3 * mh * mi + 2 * mh) + mh);
    assert.equal(model.params.get('lm_head.weight').data, model.params.get('model.embed_tokens.weight').data, 'lm_head shares the embeddings');
  });

  it('the batch masks each row\'s prompt (-100) and trains its completion', () => {
    const c = mini(), b = decoderBenchBatch(c);
    assert.deepEqual([b.x.batch, b.x.seq], [2, 24]);
    for (let r = 0; r < 2; r++) {
      const row = Array.from(b.shifted.subarray(r * 24, (r + 1) * 24));
      const firstTrained = row.findIndex((l) => l !== IGNORE_INDEX);
      // prompt fraction in [0.25, 0.5): labels from there on are the next tokens
      assert.ok(firstTrained >= 24 * 0.25 - 1 && firstTrained < 24 * 0.5, `row ${r}: first trained position ${firstTrained}`);
      for (let t = firstTrained; t < 23; t++) assert.equal(row[t], b.x.inputIds[r * 24 + t + 1]);
      assert.equal(row[23], IGNORE_INDEX);
    }
    assert.equal(b.tokens, Array.from(b.shifted).filter((l) => l !== IGNORE_INDEX).length);
  });

  for (const precision of ['fp32', 'bf16'] as const) {
    it(`lora-step (${precision}): one causal-LM step with a finite loss near ln(vocab), the LoRA parameter count, peak RSS and the path that ran`, { skip: precision === 'bf16' && !bf16Available().available && 'no oneDNN bf16 here' }, () => {
      const r = decoderLoraStepBench(mini(), 'mini', 1, 1, precision);
      assert.equal(r.bench, 'lora_step');
      assert.ok(Number.isFinite(r.first_loss) && Number.isFinite(r.last_loss));
      assert.ok(Math.abs(r.first_loss - Math.log(300)) < 0.5, `loss ${r.first_loss} of a random model is about ln(300) = ${Math.log(300).toFixed(2)}`);
      // r (in + out) per adapted Linear: q 32+32, k 32+16, v 32+16, o 32+32, gate/up 32+48, down 48+32, two layers
      assert.equal(r.trainable_params, 2 * 8 * (64 + 48 + 48 + 64 + 80 + 80 + 80));
      assert.equal(r.steps, 1);
      assert.ok(r.median_step_s > 0 && r.tokens_per_s > 0);
      assert.equal(r.precision, precision);
      assert.ok(r.peak_rss_mb > 10 && r.peak_rss_mb <= peakRssMb() + 1e-9);
      assert.equal(r.peak_rss_window, process.platform === 'linux' ? 'steps' : 'process');
      assert.ok(r.build_peak_rss_mb > 10);
      assert.equal(typeof r.isa, 'string');
      assert.equal(typeof r.library, 'string');
      assert.deepEqual([r.model_type, r.batch, r.seq], ['qwen2', 2, 24]);
    });
  }

  it('forward keeps every hidden state; analyze times forward and ID apart and gives a rank per block', () => {
    const f = decoderForwardBench(mini(), 'mini', 1, 1);
    assert.deepEqual([f.bench, f.hidden_states, f.precision], ['forward', 3, 'fp32']);
    assert.ok((f.median_s as number) > 0 && (f.peak_rss_mb as number) > 0);
    const a = decoderAnalyzeBench(mini(), 'mini');
    assert.deepEqual([a.bench, a.samples, a.seq, a.tokens, a.layers, a.points], ['analyze', 12, 12, 144, 3, 12]);
    for (const k of ['forward_s', 'id_s', 'allocate_s']) assert.ok((a[k] as number) >= 0, k);
    assert.ok(Math.abs((a.analysis_s as number) - (a.forward_s as number) - (a.id_s as number) - (a.allocate_s as number)) < 1e-6);
    assert.equal((a.ranks as number[]).length, 2);
    assert.ok((a.id_profile as number[]).every((d) => Number.isFinite(d) && d > 0));
  });

  it('gelora bench lora-step --config qwen-mini runs the decoder bench (steps from the flags); an unknown config lists both tables', () => {
    const r = spawnSync(process.execPath, [MAIN, 'bench', 'lora-step', '--config', 'qwen-mini', '--steps', '2', '--warmup', '1', '--precision', 'fp32'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual([j.config, j.model_type, j.steps, j.warmup, j.precision], ['qwen-mini', 'qwen2', 2, 1, 'fp32']);
    for (const k of ['median_step_s', 'peak_rss_mb', 'isa', 'library', 'blas', 'trainable_params']) assert.ok(k in j, k);
    const bad = spawnSync(process.execPath, [MAIN, 'bench', 'forward', '--config', 'nope'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /unknown config "nope" \(encoders: mini, base; decoders: qwen05b, qwen-mini; bench\/configs\.json\)/);
  });

  it('peak RSS is /proc/self/status VmHWM, and resetPeakRss starts a new window at the current RSS', { skip: process.platform !== 'linux' && 'no /proc' }, () => {
    const status = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
    assert.ok(Math.abs(peakRssMb() - status('VmHWM')) < 1, `${peakRssMb()} vs ${status('VmHWM')}`);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let big: Float64Array | null = new Float64Array(2 ** 24).fill(1); // 128 MB touched
    const before = peakRssMb();
    assert.ok(big[5] === 1 && before > 128);
    big = null;
    gc();
    assert.ok(resetPeakRss());
    assert.ok(peakRssMb() < before - 64, `after the 128 MB are freed the new window's peak ${peakRssMb()} MB is below the old ${before} MB`);
  });
});

describe('bench --profile', () => {
  it('lora-step and forward time every kernel call of the timed steps, oneDNN\'s in bf16 mode, and put the kernels back after', async () => {
    const { kernels } = await import('../src/engine/backend.js');
    const before = kernels();
    const modes = bf16Available().available ? (['fp32', 'bf16'] as const) : (['fp32'] as const);
    for (const precision of modes) {
      const step = decoderLoraStepBench(mini(), 'tiny', 2, 1, precision, true);
      const fwd = decoderForwardBench(mini(), 'tiny', 2, 1, precision, true) as { profile?: { per_step_s: number; kernels_s: number; js_s: number; kernels: { kernel: string; calls: number; seconds: number; share: number }[] } };
      for (const [what, p] of [['lora-step', step.profile], ['forward', fwd.profile]] as const) {
        assert.ok(p, `${what} ${precision}: no profile`);
        const names = p.kernels.map((k) => k.kernel);
        assert.ok(p.kernels_s > 0 && p.kernels_s <= p.per_step_s * 1.0001 && Math.abs(p.kernels_s + p.js_s - p.per_step_s) < 1e-9, `${what} ${precision}: kernel and JS seconds must add up to the step`);
        assert.ok(names.includes('softmax') && names.includes('rmsnorm'), `${what} ${precision}: ${names.join(', ')}`);
        // bf16 mode: the frozen products are oneDNN's (gemmBf16), attention's batched products too (gemmBatchedDnnl)
        if (precision === 'bf16') assert.ok(names.includes('dnnl.gemmBf16') && names.includes('dnnl.gemmBatchedDnnl'), `${what} bf16: ${names.join(', ')}`);
        else assert.ok(names.includes('gemm') && !names.some((n) => n.startsWith('dnnl.')), `${what} fp32: ${names.join(', ')}`);
        if (what === 'lora-step') assert.ok(names.includes('adamw'));
        else assert.ok(!names.includes('adamw') && !names.includes('softmaxBackward'), 'a forward runs no backward or optimizer kernel');
        const sorted = [...p.kernels].sort((a, b) => b.seconds - a.seconds);
        assert.deepEqual(p.kernels, sorted, 'slowest first');
      }
      assert.equal(kernels(), before, 'the kernels are restored after profiling');
    }
  });
});

describe('bench attention', () => {
  it('times QK^T by every path this machine has, on the mini and base shapes, and the softmax', () => {
    const r = attentionBench(1);
    assert.deepEqual(r.results.map((x) => x.shape.split(':')[0]), ['mini', 'base']);
    const dnnl = bf16Available().available;
    for (const x of r.results as Record<string, unknown>[]) {
      const names = Object.keys(x).filter((k) => k.endsWith('_ms'));
      assert.deepEqual(names, ['qk_openblas_per_problem_ms', ...(dnnl ? ['qk_dnnl_batched_fp32_ms', 'qk_dnnl_batched_bf16_ms'] : []), 'softmax_ms']);
      for (const n of names) assert.ok((x[n] as number) > 0, `${n} ${x[n]}`);
    }
    assert.equal(r.results[0].gflop, 0.134); // 2 * 16 * 4 * 128 * 128 * 64
  });
});
