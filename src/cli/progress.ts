/** Progress bars with ETA on stderr (cli-progress); silent when stderr is not a terminal. */
import cliProgress from 'cli-progress';

import type { Progress } from '../train/run.js';

export type { Progress };

export function progressBar(label: string): Progress {
  let bar: cliProgress.SingleBar | null = null;
  return {
    update(done, total, info = '') {
      if (!bar) {
        bar = new cliProgress.SingleBar({
          format: `${label.padEnd(20)} {bar} {percentage}% | {value}/{total} | ETA {eta_formatted} {info}`,
          stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 20,
        }, cliProgress.Presets.shades_classic);
        bar.start(total, 0, { info });
      }
      bar.setTotal(total);
      bar.update(done, { info });
    },
    stop() { bar?.stop(); },
  };
}
