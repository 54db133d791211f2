/**
 * The Worker's command classifier, in one place so the executor's wiring does not change when it
 * does. Until worker/shell/classifier.ts lands, every command is `unknown` (counted as privileged):
 * with no command rules that changes nothing (operators run commands as before), and no rule can
 * mistake an unclassified command for a safe one.
 */
import type { ClassifyCommand } from '../../shared/shell/command-class.ts';

export const workerClassifier: ClassifyCommand = async () => ({
  class: 'unknown',
  programs: [],
  reasons: ['no command classifier is built into this Worker yet'],
});
