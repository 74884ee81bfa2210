/** Learning curves from a run's log.jsonl (one JSON object per line: train steps and evaluations). */
import { existsSync, readFileSync } from 'node:fs';
import { lineChartSvg, smooth } from './plots.js';

export interface LogCurves {
  /** [step, train loss] of every logged step */
  loss: [number, number][];
  /** [step, dev metric] of every evaluation */
  metric: [number, number][];
  /** [step, dev loss] of every evaluation */
  devLoss: [number, number][];
}

/** The curves of a log.jsonl; a missing log gives empty curves (a run that has not logged yet). */
export function readLogCurves(logFile: string): LogCurves {
  const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
  const pick = (key: string): [number, number][] => lines.filter((l) => typeof l[key] === 'number').map((l) => [l.step as number, l[key] as number]);
  return { loss: pick('loss'), metric: pick('primary'), devLoss: pick('dev_loss') };
}

/** learning_curve.svg of `gelora train`: loss (train smoothed, dev) and the dev metric over steps. */
export function learningCurveSvg(logFile: string, title: string): string {
  const c = readLogCurves(logFile);
  return [
    lineChartSvg([{ name: 'train loss (smoothed)', points: smooth(c.loss) }, { name: 'dev loss', points: c.devLoss, dashed: true }], { title: `${title}: loss`, xLabel: 'optimizer step', yLabel: 'loss' }),
    lineChartSvg([{ name: 'dev metric', points: c.metric }], { title: `${title}: dev metric`, xLabel: 'optimizer step', yLabel: 'metric' }),
  ].join('\n');
}
