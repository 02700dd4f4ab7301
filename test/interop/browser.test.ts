/**
 * Interoperability with a real browser: Debian's chromium, headless, driven by playwright-core. Our
 * server serves fixtures/page.html through `processRequest` (GET / → 200 text/html); the page's
 * script opens WebSockets to the same server with the browser's own implementation (which offers
 * permessage-deflate), receives messages of several sizes and types from the server (fragmented
 * ones included), sends its own (up to 1 MiB) and checks the echoes, then closes and is closed with
 * codes and reasons. The test asserts what the page reports and what the server saw. One browser
 * per file: launching it is the slow part. The page served by `processRequest` runs against both
 * shells (test/conformance/shells.ts); the node:http and HttpRouter front doors are the Effect 3
 * shell's (the Effect 4 shell's mount and route are tested in effect4/test).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { BrowserContext } from "playwright-core"
import { effect3, effect4, recordsOf, type Shell, type ShellServer } from "../conformance/shells.js"
import { mountLocal, routeLocal } from "../fixtures/frontDoors.js"
import { LOCALHOST, portOf } from "../fixtures/loopback.js"
import {
  CI,
  checkPeer,
  type Description,
  expected,
  extensionNames,
  interopHandler,
  MAX_SIZE,
  type MessageSpec,
  MiB,
  SERVER_SUBPROTOCOLS,
  type ServerLog
} from "./fixtures/peers.js"

const CHROMIUM = "/usr/bin/chromium"
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]
const PAGE = readFileSync(new URL("./fixtures/page.html", import.meta.url), "utf8")
const CONFIG_PLACEHOLDER = '{ "placeholder": "configuration injected by browser.test.ts" }'

const problem = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found`
const available = checkPeer("chromium", problem)

/** Messages the server sends on the page's command: every size class, both types, fragmented. */
const SERVER_SENDS: ReadonlyArray<MessageSpec> = [
  { text: "Hello, browser! \u00e9\u20ac\u{1f600}" },
  { text: "" },
  { hex: "00ff7f80" },
  { pattern: "text", size: 125 },
  { pattern: "binary", size: 126 },
  { pattern: "text", size: 65_536 },
  { pattern: "binary", size: MiB },
  { pattern: "text", size: MiB },
  { fragments: [{ text: "frag" }, { text: "" }, { text: "mented \u{1f600}" }] },
  { fragments: [{ pattern: "binary", size: 70_000 }, { hex: "01" }, { pattern: "binary", size: 70_000 }] }
]

/** Messages the page sends (text: the shared pattern; binary: random bytes), echoed by the server. */
const PAGE_SENDS: ReadonlyArray<{ readonly type: "text" | "binary"; readonly size: number }> = [
  { type: "text", size: 0 },
  { type: "text", size: 20 },
  { type: "binary", size: 1 },
  { type: "text", size: 126 },
  { type: "binary", size: 65_535 },
  { type: "binary", size: 65_536 },
  { type: "text", size: MiB },
  { type: "binary", size: MiB }
]

const CONFIG = {
  protocols: ["superchat", "chat.v1"],
  serverSends: SERVER_SENDS,
  pageSends: PAGE_SENDS,
  serverClose: { code: 4000, reason: "bye" },
  pageClose: { code: 4001, reason: "page bye" },
  timeoutMillis: 5000
}

interface PageResult {
  readonly error?: string
  readonly protocol: string
  readonly extensions: string
  readonly fromServer: ReadonlyArray<Description>
  readonly sent: ReadonlyArray<Description>
  readonly echoes: ReadonlyArray<Description>
  readonly serverClose: { readonly code: number; readonly reason: string; readonly wasClean: boolean }
  readonly beforeClosing: string
  readonly pageClose: { readonly code: number; readonly reason: string; readonly wasClean: boolean }
}

describe("interop with chromium", () => {
  if (!available && CI) {
    it("chromium is installed (required in CI)", () => {
      expect.fail(problem)
    })
  }

  describe.skipIf(!available)("browser", () => {
    let context: BrowserContext
    let userDataDir: string

    beforeAll(async () => {
      const { chromium } = await import("playwright-core")
      userDataDir = mkdtempSync(join(tmpdir(), "effect-websockets-chromium-"))
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 15_000
      })
    }, 20_000)

    afterAll(async () => {
      await context?.close()
      if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true })
    }, 10_000)

    /**
     * Opens the page at `url` and checks what it and the server exchanged: compression and
     * subprotocol negotiated, messages both ways byte for byte, closes both ways.
     */
    const exchange = (url: string, server: Pick<ShellServer, "opened" | "closed">, serverRequests: () => string) =>
      Effect.gen(function* () {
        const page = yield* Effect.acquireRelease(
          Effect.promise(() => context.newPage()),
          (page) => Effect.promise(() => page.close())
        )
        const pageErrors: Array<string> = []
        page.on("pageerror", (error) => pageErrors.push(String(error)))
        page.on("console", (message) => {
          if (message.type() === "error") pageErrors.push(message.text())
        })
        const response = yield* Effect.promise(() => page.goto(url, { timeout: 5000 }))
        expect(response?.status()).toBe(200)
        expect(response?.headers()["content-type"]).toBe("text/html; charset=utf-8")
        // On a timeout, fail with what the page logged and what the server saw, not just "timeout".
        yield* Effect.tryPromise(() =>
          page.waitForFunction("window.__result !== undefined", undefined, { timeout: 12_000 })
        ).pipe(
          Effect.catchAll((error) =>
            Effect.promise(() => page.evaluate("document.getElementById('log').textContent")).pipe(
              Effect.flatMap((pageLog) =>
                Effect.dieMessage(
                  `${error.error}\npage log:\n${pageLog}\npage errors: ${pageErrors.join("; ")}\n` +
                    `server requests: ${serverRequests()}`
                )
              )
            )
          )
        )
        const result = (yield* Effect.promise(() => page.evaluate("window.__result"))) as PageResult
        expect(result.error).toBeUndefined()
        expect(pageErrors).toEqual([])

        // Opening handshake: the browser offered permessage-deflate and the server accepted it.
        const first = yield* server.opened("/ws/1")
        expect(extensionNames(first.requestExtensions)).toContain("permessage-deflate")
        expect(first.extensions).toEqual(["permessage-deflate"])
        expect(extensionNames([result.extensions])).toEqual(["permessage-deflate"])
        expect(first.subprotocol).toBe("chat.v1")
        expect(result.protocol).toBe("chat.v1")

        // What the page received from the server, byte for byte (by SHA-256).
        expect(result.fromServer).toEqual(SERVER_SENDS.map(expected))
        // What the page sent: its echoes, and what the server itself received.
        expect(result.sent.map(({ type, length }) => ({ type, length }))).toEqual(
          PAGE_SENDS.map(({ type, size }) => ({ type, length: size }))
        )
        expect(result.sent.filter(({ type }) => type === "text")).toEqual(
          PAGE_SENDS.filter(({ type }) => type === "text").map(({ size }) => expected({ pattern: "text", size }))
        )
        expect(result.echoes).toEqual(result.sent)
        const firstClosed = yield* server.closed("/ws/1")
        expect(firstClosed.received).toEqual(result.sent)

        // The server closed with 4000 "bye"; the browser echoed the code.
        expect(result.serverClose).toEqual({ code: 4000, reason: "bye", wasClean: true })
        expect(firstClosed).toMatchObject({ error: "ConnectionClosedError", closeCode: 4000 })

        // The page closed with 4001 "page bye"; the server observed both, and echoed the code.
        expect(result.beforeClosing).toBe("before closing")
        expect(result.pageClose).toMatchObject({ code: 4001, wasClean: true })
        expect(yield* server.closed("/ws/2")).toEqual({
          path: "/ws/2",
          received: [expected({ text: "before closing" })],
          error: "ConnectionClosedError",
          errorCode: 4001,
          errorReason: "page bye",
          closeCode: 4001,
          closeReason: "page bye"
        })
      })

    describe("on both shells", () => {
      const shells: ReadonlyArray<Shell> = [effect3, effect4()]
      beforeAll(() => Promise.all(shells.map((shell) => shell.start())), 60_000)
      afterAll(() => Promise.all(shells.map((shell) => shell.stop())))

      for (const shell of shells) {
        it.scopedLive(
          `page served by processRequest exchanges messages over permessage-deflate and closes both ways [${shell.name}]`,
          () =>
            Effect.gen(function* () {
              const html = PAGE.replace(CONFIG_PLACEHOLDER, JSON.stringify(CONFIG))
              const server = yield* Effect.orDie(
                shell.serve(
                  "interop",
                  {
                    maxSize: MAX_SIZE,
                    subprotocols: SERVER_SUBPROTOCOLS,
                    // Chromium preconnects sockets that never send a request; shutting the server down
                    // waits for those until openTimeout (default 10 s) — see the report on Server.close.
                    // Keep it short.
                    openTimeout: "1 second"
                  },
                  { page: html }
                )
              )
              yield* exchange(`http://${LOCALHOST}:${server.port}/`, server, () => server.requests().join(", "))
              expect(server.requests()).toEqual(["/", "/ws/1", "/ws/2"])
            }).pipe(Effect.timeout("14 seconds")),
          15_000
        )
      }
    })

    for (const door of ["node:http", "HttpRouter"] as const) {
      it.scopedLive(
        `page served by ${door}, WebSockets on an endpoint mounted beside it, over permessage-deflate`,
        () =>
          Effect.gen(function* () {
            const log: ServerLog = new Map()
            const html = PAGE.replace(CONFIG_PLACEHOLDER, JSON.stringify(CONFIG))
            const options = { maxSize: MAX_SIZE, subprotocols: SERVER_SUBPROTOCOLS, compression: "deflate" as const }
            const server =
              door === "node:http"
                ? yield* mountLocal(interopHandler(log), options, (request, response) => {
                    if (request.url === "/")
                      response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(html)
                    else response.writeHead(404).end()
                  })
                : yield* routeLocal(interopHandler(log), options, undefined, (router) =>
                    HttpRouter.get(
                      router,
                      "/",
                      HttpServerResponse.text(html, { contentType: "text/html; charset=utf-8" })
                    )
                  )
            yield* exchange(`http://${LOCALHOST}:${portOf(server)}/`, recordsOf(log), () => door)
          }).pipe(Effect.timeout("14 seconds")),
        15_000
      )
    }
  })
})
