/**
 * Who `Auth.basicAuth` authenticated, by handshake request headers: the server hands the same
 * `Headers` to `processRequest` and to the connection (`requestHeaders`), so the connection finds
 * the username and realm there without a field of its own (a WeakMap: nothing to clean up).
 */
export interface Authenticated {
  readonly username: string
  readonly realm: string
}

export const authenticatedBy = new WeakMap<object, Authenticated>()
