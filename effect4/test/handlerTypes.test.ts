/**
 * The Effect 4 shell as test/handlerTypes.test.ts checks the Effect 3 one: the value a handler
 * receives as its second argument comes from `processRequest`. Without a hook that continues with
 * `Server.proceed(value)`, a handler that expects a value does not typecheck (it would receive
 * `undefined` at run time), and hooks written inline keep typing the handler. Checked by
 * `npm run typecheck` (the `@ts-expect-error` lines fail it when the error they expect is gone).
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as HttpRouterRoute from "../src/HttpRouterRoute.js"
import { Auth, NodeMount, Server, type WebSocket } from "../src/index.js"

interface User {
  readonly id: string
}
const greetUser = (ws: WebSocket.WebSocket, user: User) => ws.send(`hello ${user.id}`)
const echo = (ws: WebSocket.WebSocket) => ws.forEachMessage((message) => ws.send(message))
const basicAuth = Auth.basicAuth({ realm: "chat", credentials: ["ada", "pw"] })
const asUser = () => Effect.succeed(Server.proceed<User>({ id: "ada" }))

/** Only typechecked: building the Effects below is enough, none runs. */
const programs = () => {
  // @ts-expect-error no processRequest provides a User
  Server.serve(greetUser)
  // @ts-expect-error no processRequest provides a User
  Server.serve(greetUser, { port: 0 })
  // @ts-expect-error processRequest continues without a value
  Server.serve(greetUser, { processRequest: () => Effect.void })
  // @ts-expect-error processRequest provides a string, not a User
  Server.serve(greetUser, { processRequest: () => Effect.succeed(Server.proceed("ada")) })
  // @ts-expect-error no processRequest provides a User
  Server.serve(Server.onMessage((message, ws, user: User) => ws.send(`${user.id}: ${String(message)}`)))
  // @ts-expect-error no processRequest provides a User
  Server.layer(greetUser)
  // @ts-expect-error no processRequest provides a User
  Server.layerConfig(greetUser)
  // @ts-expect-error no processRequest provides a User
  Server.unixServe(greetUser, "/tmp/never.sock")
  // @ts-expect-error no processRequest provides a User
  Server.makeAcceptor(greetUser)
  // @ts-expect-error no processRequest provides a User
  NodeMount.make(greetUser)
  // @ts-expect-error no processRequest provides a User
  HttpRouterRoute.make(greetUser)

  // What typechecks: the value comes from the hook, and a handler without one needs no hook.
  Server.serve(greetUser, { processRequest: asUser })
  // The README's hook, a function whose parameter is typed by its context.
  Server.serve(greetUser, {
    processRequest: ({ headers }) =>
      Effect.succeed(headers.get("authorization") === "Bearer s3cret" ? Server.proceed({ id: "ada" }) : { status: 401 })
  })
  Server.layer(greetUser, { processRequest: asUser, port: 0 })
  NodeMount.make(greetUser, { processRequest: asUser })
  HttpRouterRoute.make(greetUser, { processRequest: asUser })
  Server.serve(echo, { port: 0 })
  Server.serve((ws) => ws.send("hi"), { port: 0 })
  Server.serve(echo)
  Server.serve(echo, { processRequest: () => Effect.void })
  Server.serve(echo, { processRequest: () => Effect.succeed({ status: 200 }) })
  Server.serve((ws, user) => ws.send(user), { processRequest: basicAuth })
  Server.serve(
    (ws, user) => {
      expectTypeOf(user).toEqualTypeOf<User>()
      return ws.send(user.id)
    },
    { processRequest: asUser }
  )
  Server.serve((_ws, value) => {
    expectTypeOf(value).toEqualTypeOf<undefined>()
    return Effect.void
  })
}

describe("Effect 4 shell: Handler types", () => {
  it("a handler's second argument is what processRequest continues with", () => {
    expect(typeof programs).toBe("function")
  })
})
