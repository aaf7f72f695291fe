// Types of web/bitmamba.js, the page-side API of the BitMamba-2 browser runtime.

export type ErrorCode =
  | 'network'              // fetch failed or the connection dropped mid-download
  | 'http_status'          // the server answered with a non-2xx status (details.status)
  | 'not_a_model'          // not a BIT2 file (an HTML page, another file)
  | 'corrupt_model'        // a BIT2 file the engine or the size check refuses
  | 'quota'                // not enough (wasm) memory for the model
  | 'aborted'              // stopped through an AbortSignal
  | 'unsupported_browser'  // no WebAssembly SIMD128, no module workers, ...
  | 'invalid_argument'     // a parameter out of range, a token id outside the vocabulary
  | 'bad_state'            // restore() with a snapshot of another model
  | 'bad_text'             // text the tokenizer cannot take
  | 'disposed'             // the model was disposed
  | 'internal';            // a bug; the message says what happened

export class BitMambaError extends Error {
  readonly name: 'BitMambaError';
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
}

export type LoadPhase = 'engine' | 'download' | 'cache' | 'file' | 'parse' | 'ready';

export interface LoadProgress {
  /** Bytes so far in this phase. */
  loaded: number;
  /** Total bytes of this phase, or null while unknown (before the BIT2 header arrives without Content-Length). */
  total: number | null;
  phase: LoadPhase;
}

export interface LoadOptions {
  /** Threads for the kernels when the page is cross-origin isolated (default min(hardwareConcurrency, 8)); otherwise 1. */
  threads?: number;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Keep the model in the origin's storage (OPFS) and read it from there next time. Default true. */
  cache?: boolean;
  /**
   * How many times in a row a dropped download is resumed (Range + If-Range) without getting
   * further before load() fails with 'network'; waits 0.25 s, 0.5 s, 1 s, 2 s, then 4 s between
   * tries. Default 5; 0 to 100.
   */
  retries?: number;
  /** Folder (URL) holding bitmamba-{simd128,relaxed}.{js,wasm,worker.js}. Default: ./dist/ beside worker.js. */
  wasmBase?: string | URL;
  /** Force a build; default 'auto' (relaxed SIMD when the browser has it). */
  variant?: 'auto' | 'simd128' | 'relaxed';
  /**
   * Force a kernel table of the build, for benchmarks and tests: 'simd128'; 'relaxed' or
   * 'relaxed-dot-add'; or 'scalar'. Default: the fastest of the build's tables, timed at load.
   */
  kernels?: string;
  /**
   * Where worker.js is (served with the modules beside it), if not beside bitmamba.js: needed when a
   * bundler took bitmamba.js into a bundle elsewhere. On another origin it is started through a
   * same-origin blob: worker.
   */
  workerUrl?: string | URL;
}

export interface CacheState {
  /** hit: read from storage; stored: written after this download; skipped: could not store (reason); off: not asked or not possible */
  status: 'hit' | 'stored' | 'skipped' | 'off';
  reason?: 'quota' | 'storage_error' | 'disabled' | 'unsupported' | 'local file' | 'ArrayBuffer source' | string;
  message?: string;
}

export interface DownloadStats {
  requests: number;
  resumes: number;
  restarts: number;
  retries: number;
  receivedBytes: number;
  readBackBytes: number;
  /**
   * Where the time went: awaiting the body's chunks, the engine, copying into the heap, writing the cache, the hash.
   * `reader`: 'byob' where the body was read into one reused buffer (a byte stream), 'default' where the browser
   * handed over chunks of its own; null when nothing was fetched (all of it read back from a partial file).
   */
  timings: {
    chunks: number; reader: 'byob' | 'default' | null; networkWaitMs: number; engineWaitMs: number;
    heapCopyMs: number; cacheWriteMs: number; hashWaitMs: number;
  };
}

export interface ModelInfo {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  dInner: number;
  headDim: number;
  fileBytes: number;
  /** Kernel table in use, e.g. 'wasm_simd128'. */
  isa: string;
  variant: 'simd128' | 'relaxed';
  /** Why that variant, e.g. 'this browser has no relaxed SIMD, so the simd128 build'. */
  variantReason: string;
  /** Threads in use: 1 unless shared memory can be posted to workers and Atomics.wait works there. */
  threads: number;
  threadsRequested: number;
  /** Why that many threads. */
  threadsReason: string;
  crossOriginIsolated: boolean;
  source: 'network' | 'cache' | 'file' | 'buffer';
  url: string | null;
  /** SHA-256 of the file (hex) for URL sources; null for files and buffers. */
  /**
   * The SHA-256 the server published for the file (an ETag or X-Linked-Etag of 64 hex digits, as
   * Hugging Face sends for its LFS files), and whether the download matched it (false only when
   * hashing failed; a mismatch fails the load with 'corrupt_model'). null when none was published.
   */
  published: { sha256: string; header: 'etag' | 'x-linked-etag'; matched: boolean } | null;
  sha256: string | null;
  cache: CacheState;
  /** For URL sources loaded from the network: requests made, how many continued (206) or started over (200), retries, bytes received, and bytes read back from a partial cache file left by a reload. Null otherwise. */
  download: DownloadStats | null;
  timings: { engineMs: number; readMs: number; parseMs: number; totalMs: number };
  /** WebAssembly memory of the worker after loading. */
  heapBytes: number;
}

export interface GenerateOptions {
  /** Default 200. */
  maxTokens?: number;
  /** Default 0.8; below 0.05 picks the most likely token. */
  temperature?: number;
  /** Default 40; 0 = off. */
  topK?: number;
  /** Default 0.9; 1 = off. */
  topP?: number;
  /** Default 0.05; 0 = off. */
  minP?: number;
  /** Default 1.15; 1 = off. */
  repetitionPenalty?: number;
  /** 0 .. 2^64-1 (number, bigint or decimal string). Default: random, reported in the stats. */
  seed?: number | bigint | string;
  /** Aborting ends the iteration with an 'aborted' error. */
  signal?: AbortSignal;
  /** Append to the current context (after an earlier generate or restore) instead of starting afresh. */
  continue?: boolean;
  /**
   * End the run on the token whose text completes one of these (at most 16, each 1..256 UTF-8 bytes),
   * wherever the tokens split it; that token is the last piece and stays in the context. Only the
   * generated text counts, not the prompt.
   */
  stop?: string | string[];
  /**
   * 0..20: each piece carries its token's `logprob` and the `logprobs` likeliest tokens as
   * `topLogprobs`, under the model's distribution (before penalty, temperature and cut-offs).
   */
  logprobs?: number;
}

export interface TokenLogprob {
  token: number;
  /** The token's own text (a partial UTF-8 character shows as U+FFFD). */
  text: string;
  logprob: number;
}

export interface PerplexityResult {
  /** Tokens of the text, all scored after a leading <|endoftext|>. */
  tokens: number;
  /** Total negative log-likelihood, nats. */
  nll: number;
  /** exp(nll / tokens). */
  ppl: number;
  /** exp(nll / words), words as Python's len(re.split(r"\s+", text)). */
  wordPpl: number;
  /** nll / bytes / ln 2, bytes of UTF-8. */
  bitsPerByte: number;
  words: number;
  bytes: number;
}

export interface TokenPiece {
  /** The token id; null only for a final piece that flushes an unfinished UTF-8 sequence. */
  token: number | null;
  /** Its text; '' while a character is incomplete (the next piece carries it). */
  text: string;
  /** When the worker produced it (performance.timeOrigin + performance.now()). */
  t: number;
  /** With GenerateOptions.logprobs (not on a final flush piece): the token's log-probability. */
  logprob?: number;
  /** With GenerateOptions.logprobs: the likeliest tokens, highest first. */
  topLogprobs?: TokenLogprob[];
}

export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number | null;
  decodeTokensPerSecond: number | null;
  timeToFirstTokenMs: number | null;
  totalMs: number;
  stopReason: 'eos' | 'max_tokens' | 'stopped' | 'stop';
  /** The stop string that ended the run (stopReason 'stop'), else null. */
  stopString: string | null;
  /** The seed used, as a decimal string. */
  seed: string;
  /**
   * The seed that goes on with this run's random stream: generate(input, {continue: true, seed: nextSeed})
   * gives the tokens one longer run would have (also after a stop string or stop()).
   */
  nextSeed: string;
  threads: number;
  heapBytes: number;
}

export interface Generation extends AsyncIterableIterator<TokenPiece> {
  /** Resolves when the run ends. */
  readonly stats: Promise<GenerateStats>;
  /** Ends the run after the token being computed (stopReason 'stopped'). Breaking out of for-await does the same. */
  stop(): void;
  /** When stop() was called (same clock as TokenPiece.t), or null. */
  readonly stopRequestedAt: number | null;
}

export interface Model {
  readonly info: Readonly<ModelInfo>;
  generate(input: string | { tokens: ArrayLike<number> }, options?: GenerateOptions): Generation;
  tokenize(text: string): Promise<Int32Array>;
  detokenize(tokens: ArrayLike<number>): Promise<string>;
  /** Logits [vocab] after feeding `tokens` from an empty state; the generation context is untouched. */
  logits(tokens: ArrayLike<number>): Promise<Float32Array>;
  /**
   * Log-likelihood of each continuation after the context, tokenized as lm-eval-harness does
   * (trailing whitespace of the context moves to the continuation; an empty context is
   * <|endoftext|>). The generation context is untouched.
   */
  score(context: string, continuations: string[]): Promise<Float64Array>;
  /**
   * Perplexity of `text`: one pass (or a fresh state every `window` tokens), as `bitmamba perplexity`.
   * The generation context is untouched; the worker is busy until it ends.
   */
  perplexity(
    text: string,
    options?: { window?: number; onProgress?: (p: { done: number; total: number }) => void },
  ): Promise<PerplexityResult>;
  /** The generation context as bytes (constant size per model). */
  snapshot(): Promise<Uint8Array>;
  /** Back to a snapshot (copied, so it can be restored again); continue with generate(x, {continue: true}). */
  restore(snapshot: Uint8Array): Promise<void>;
  /** Empty context. */
  reset(): Promise<void>;
  memory(): Promise<{ heapBytes: number; modelBytes: number }>;
  /** Frees the model and ends its worker. */
  dispose(): Promise<void>;
}

export interface CachedModel {
  url: string;
  size: number;
  sha256: string;
  storedAt: string;
}

export declare const BitMamba: {
  /** A URL (fetched with progress and cached), a File/Blob, or an ArrayBuffer (transferred: detached afterwards). */
  load(source: string | URL | Blob | ArrayBuffer | ArrayBufferView, options?: LoadOptions): Promise<Model>;
  clearCache(): Promise<void>;
  cachedModels(): Promise<CachedModel[]>;
  removeCached(url: string | URL): Promise<void>;
  readonly crossOriginIsolated: boolean;
};

export default BitMamba;
