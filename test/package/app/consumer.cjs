// CommonJS consumer: require() of the ESM package (Node >= 20.19), and the modules that must stay private.
const assert = require("node:assert")
const { Client, Headers } = require("effect-websockets")
const { connect } = require("effect-websockets/Client")

assert.strictEqual(typeof Client.connect, "function")
assert.strictEqual(connect, Client.connect)
assert.strictEqual(new Headers.Headers({ A: "1" }).get("a"), "1")
for (const hidden of ["effect-websockets/bin/cli", "effect-websockets/internal/webSocket", "effect-websockets/index"]) {
  assert.throws(() => require(hidden), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" }, hidden)
}
console.log("cjs ok")
