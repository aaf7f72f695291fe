// Conversation turns over the model's kept state: each turn feeds only its
// own text on top of everything before it.

export const TEMPLATES = {
  plain: { label: 'Plain continuation', text: '%s', stop: '' },
  // The reference engine's chat form.
  qa: { label: 'Question / Detailed answer', text: 'Question: %s\nDetailed answer:', stop: '\nQuestion:' },
  custom: { label: 'Custom (%s is the message)', text: '', stop: '' },
};

/** Checks a custom template: it needs exactly one %s. */
export function checkTemplate(template) {
  const count = template.split('%s').length - 1;
  if (count !== 1) {
    throw Object.assign(new Error(`A template needs exactly one %s where the message goes (this one has ${count}).`),
      { code: 'invalid_argument' });
  }
  return template;
}

/**
 * The text a turn feeds. After the first turn a templated turn starts on a
 * new line unless the context already ends with one. When the last reply ended on a stop
 * string, that string is already in the context: the turn leaves out the
 * longest start of its text that the stop string already ends with.
 */
export function turnText(template, message, { first, contextText, stopString }) {
  let text = checkTemplate(template).replace('%s', message);
  const plain = template === '%s';  // plain continuation: the text goes on exactly as typed
  if (!first && !plain && !contextText.endsWith('\n') && !text.startsWith('\n')) text = `\n${text}`;
  if (stopString && contextText.endsWith(stopString)) {
    for (let n = Math.min(stopString.length, text.length); n > 0; n--) {
      if (stopString.endsWith(text.slice(0, n))) return text.slice(n);
    }
  }
  return text;
}
