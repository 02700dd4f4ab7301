/**
 * What the attacker processes of test/hostile (pingFlooder.mjs, headFlooder.mjs) share: a write
 * that waits for 'drain' like a TCP sender, or for the socket's close.
 */

/** Writes `bytes`; resolves at once if the socket took them, else at 'drain' or close. */
export const write = (socket, bytes) =>
  new Promise((resolve) => {
    if (socket.destroyed || socket.write(bytes)) return resolve()
    const finish = () => {
      socket.off("drain", finish)
      socket.off("close", finish)
      resolve()
    }
    socket.on("drain", finish)
    socket.on("close", finish)
  })
