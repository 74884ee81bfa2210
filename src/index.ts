/**
 * gelora's library API. Everything the CLI does is available here; the CLI only parses flags.
 * (This surface is completed once the foundation refactor lands.)
 */
export { backendInfo } from './engine/backend.js';
export { loadModel, createModel, type LoadOptions, type LoadReport } from './models/load.js';
export { TextTokenizer } from './io/tokenizer.js';
