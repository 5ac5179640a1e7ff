// Text that came from another computer and is shown to a person (a node's name, a peer's name):
// control characters would reach a terminal as escape sequences (clear the screen, set the
// title, hide text) and bidirectional overrides would make a name read as another. They are
// removed, and the text is cut to a length that fits a line.

// C0 and C1 controls, DEL, and the Unicode bidirectional embeddings, overrides and isolates.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** The longest name shown, in characters. */
export const MAX_SHOWN_NAME_LENGTH = 128;

/** `text` without control or direction-changing characters, at most `maxLength` characters. */
export function plainText(text: string, maxLength = MAX_SHOWN_NAME_LENGTH): string {
  const cleaned = text.replace(UNSHOWABLE, '');
  const characters = Array.from(cleaned);
  return characters.length <= maxLength ? cleaned : characters.slice(0, maxLength).join('');
}
