/** An error as a hostile handler may throw it: reading its stack, name or message throws. */
export function boobyTrappedError(): Error {
  const error = new Error('set');
  // The stack first: V8 formats it from the name and message when it is redefined.
  for (const field of ['stack', 'name', 'message']) {
    Object.defineProperty(error, field, {
      get() {
        throw new Error(`reading ${field}`);
      },
    });
  }
  return error;
}
