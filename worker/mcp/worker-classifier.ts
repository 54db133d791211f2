/**
 * The Worker's command classifier, in one place so the executor's wiring names it once: the shell
 * parser compiled to WebAssembly, loaded as workerd modules (worker/shell/classifier.ts).
 */
export { classifyCommand as workerClassifier } from '../shell/classifier.ts';
