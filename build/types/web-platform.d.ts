// The few web-platform globals that shared/ may use because browsers and Node both have them.
// Only shared/tsconfig.json reads this file: elsewhere Node's or the DOM's own types declare them.

declare var crypto: {
  getRandomValues<T extends Uint8Array>(array: T): T;
};
