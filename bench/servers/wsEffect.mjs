// Target: `ws` with the `effect` barrel merely loaded (no Effect code run), to tell what loading Effect
// costs from what our server does.
import "effect"
import "./ws.mjs"
