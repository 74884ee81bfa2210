/** Dev labels in the order training used (an adapter's task.json), not in the order of the dev file. */
import type { Task } from './task.js';

/**
 * Renumbers a classification task's labels to `trainingLabels` (the label names in training's order,
 * as readTaskInfo returns them), in place. A dev label training never saw is an error naming it.
 */
export function useTrainingLabels(task: Task, trainingLabels: string[]): void {
  if (task.kind !== 'classification') return;
  const map = new Map(trainingLabels.map((l, i) => [l, i]));
  for (const x of task.dev) {
    const name = task.labels[x.label], idx = map.get(name);
    if (idx === undefined) throw new Error(`dev label "${name}" was not a training label (${trainingLabels.join(', ')})`);
    x.label = idx;
  }
  task.labels = trainingLabels;
}
