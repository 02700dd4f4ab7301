#!/usr/bin/env node
/**
 * The `effect-websockets` executable: `effect-websockets <uri>` (interactive client) and
 * `effect-websockets serve` (echo server). See `effect-websockets --help`.
 *
 * @since 0.1.0
 */
import { main } from "../internal/cli.js"

main()
