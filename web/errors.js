// Typed errors shared by the page side (bitmamba.js) and the worker.
// Every failure a person can meet becomes a BitMambaError with a stable
// `code`; errors cross the worker boundary as plain {name, code, message}.

export class BitMambaError extends Error {
  /**
   * @param {string} code one of ERROR_CODES
   * @param {string} message a sentence a person can act on
   * @param {object} [details] machine-readable extras (HTTP status, byte counts)
   */
  constructor(code, message, details) {
    super(message);
    this.name = 'BitMambaError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }
}

export const ERROR_CODES = Object.freeze([
  'network',              // fetch failed or the connection dropped mid-download
  'http_status',          // the server answered with a non-2xx status
  'not_a_model',          // the bytes are not a BIT2 file (an HTML page, a wrong file)
  'corrupt_model',        // a BIT2 file the engine rejects (truncated, bad tensor)
  'quota',                // not enough memory for the model
  'aborted',              // stopped through an AbortSignal or dispose()
  'unsupported_browser',  // no WebAssembly SIMD128, no module workers, ...
  'invalid_argument',     // from the engine: a parameter out of range, a bad id
  'bad_state',            // from the engine: a snapshot of another model
  'bad_text',             // from the engine: text the tokenizer cannot take
  'disposed',             // the model was disposed
  'internal',             // a bug: the message says what happened
]);

// The engine's status names (core/status.h) that mean something else here.
const ENGINE_CODES = {
  bad_model: 'corrupt_model',
  io: 'network',
  out_of_memory: 'quota',
  unsupported: 'unsupported_browser',
};

/** Any thrown value as a BitMambaError (engine errors keep their message). */
export function asBitMambaError(e) {
  if (e instanceof BitMambaError) return e;
  if (e && typeof e === 'object' && typeof e.code === 'string' && e.name === 'BitMambaError') {
    return new BitMambaError(ENGINE_CODES[e.code] ?? e.code, e.message, e.details);
  }
  if (e && e.name === 'AbortError') return new BitMambaError('aborted', 'Stopped.');
  if (e && e.name === 'QuotaExceededError') return new BitMambaError('quota', e.message);
  const message = e && e.message ? e.message : String(e);
  return new BitMambaError('internal', message);
}

export function errorToMessage(e) {
  const err = asBitMambaError(e);
  return { name: err.name, code: err.code, message: err.message, details: err.details };
}

export function errorFromMessage(m) {
  return new BitMambaError(m.code, m.message, m.details);
}
