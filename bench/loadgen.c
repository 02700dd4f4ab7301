/*
 * Load generator for the WebSocket echo benchmarks (bench/run.mjs builds it with gcc into
 * bench/.build/loadgen). One thread, epoll, non-blocking sockets, everything on 127.0.0.1.
 *
 * It has to be cheaper than any server under test, so:
 * - frames are built once, masked once (one fixed masking key: servers cannot tell), and the
 *   output of a connection is "this frame, n times": one write() sends every frame a connection
 *   owes, from a buffer holding the frame repeated;
 * - replies (unmasked server frames) are parsed only as far as their headers: the payload is
 *   skipped, never copied, inflated or validated;
 * - every reply completes one message and immediately queues the next, so each connection keeps
 *   exactly `inflight` messages outstanding.
 *
 * Compressed cases (permessage-deflate, RFC 7692): the client offers client_no_context_takeover,
 * so every message it sends may be the same pre-compressed frame (deflated once with zlib, the
 * trailing 00 00 ff ff removed, RFC 7692 §7.2.1). Compressed replies are counted, not inflated.
 * Built without zlib (-DNO_ZLIB) when the machine has no zlib headers: compressed cases then fail
 * with a clear error and run.mjs reports them as skipped.
 *
 * Modes (one JSON object per line on stdout; errors as {"ok":false,"error":...}, exit status 1):
 *   echo  --port P [--pid SERVER_PID] --conns N --inflight K --size S [--text] [--deflate]
 *         [--warmup MS] [--duration MS] [--timeout MS]
 *         Sustained echo; server CPU (utime+stime of /proc/PID/stat) and the generator's own CPU
 *         are read at both ends of the measurement window.
 *   idle  --port P --conns N [--concurrency C] [--timeout MS]
 *         Opens N connections, prints {"ready":...}, holds them until stdin closes, then resets them.
 *   handshake --port P [--pid SERVER_PID] --conns N [--warmup MS] [--duration MS] [--timeout MS]
 *         N connections in a loop: connect, opening handshake, close frame (1000), wait for the
 *         server's close frame, then an abortive close (RST: no TIME_WAIT, so no port exhaustion),
 *         and a new connection in its place. Handshakes per second (full cycles completed in the
 *         window), server CPU per handshake, mean time from connect() to the 101.
 *   lag   --port P --size S [--deflate] [--text] [--timeout MS]
 *         Connection A sends one big message; connection B ping-pongs 16 B messages meanwhile and
 *         reports its round-trip times: the event-loop delay other connections suffer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef NO_ZLIB
#include <zlib.h>
#endif

#define READ_BUF (256 * 1024)
#define MAX_BATCH_BYTES (1024 * 1024)
#define HS_MAX 4096

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

typedef struct {
  const uint8_t *pat; /* the frame repeated `reps` times */
  size_t flen;        /* length of one frame */
  size_t reps;
} pattern_t;

typedef struct {
  int fd;
  int state;
  int want_out; /* EPOLLOUT registered */
  const pattern_t *pat;
  /* handshake */
  char hs[HS_MAX];
  size_t hs_len;
  size_t req_off;
  /* output: `to_send` frames owed, `off` bytes of the first one already written */
  uint64_t to_send;
  size_t off;
  /* reply parser */
  uint8_t hdr[14];
  unsigned hlen;
  uint64_t payload_left;
  uint8_t ctl[125]; /* payload of the control frame being received (pings are answered) */
  unsigned ctl_len;
  /* counters */
  uint64_t received;
  double sent_at; /* lag mode: when the outstanding message was queued; handshake mode: connect() */
} conn_t;

static int ep;
static conn_t *conns;
static int nconns;
static int port = 0;
static int deflate_on = 0;
static int text = 0;
static char request[1024];
static size_t request_len;
static uint8_t rbuf[READ_BUF];
static const char *mode_name = "echo";

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '"' || *p == '\\') *p = '\'';
  printf("{\"ok\":false,\"mode\":\"%s\",\"error\":\"%s\"}\n", mode_name, msg);
  fflush(stdout);
  exit(1);
}

/* CPU time of a process in microseconds (utime + stime, every thread), -1 if unreadable; the
 * kernel's share (stime) in *sys when sys is not NULL. */
static double proc_cpu_us(int pid, double *sys) {
  if (sys) *sys = -1;
  if (pid <= 0) return -1;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may contain spaces */
  if (!p) return -1;
  p += 2;
  /* p is at field 3 (state); utime and stime are fields 14 and 15 */
  for (int field = 3; field < 14; field++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  unsigned long long ut = 0, st = 0;
  if (sscanf(p, "%llu %llu", &ut, &st) != 2) return -1;
  double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
  if (sys) *sys = (double)st * tick_us;
  return (double)(ut + st) * tick_us;
}

static double self_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

/* Deterministic, moderately compressible text: words from a small vocabulary (valid ASCII/UTF-8). */
static void fill_payload(uint8_t *p, size_t n, uint32_t seed) {
  static const char *words[] = {"alpha", "beta",  "gamma", "delta", "echo",  "socket", "frame",  "effect",
                                "fiber", "queue", "mask",  "ping",  "pong",  "close",  "stream", "value",
                                "42",    "1337",  "{",     "}",     "\"id\":", "true",  "false",  "null"};
  uint32_t x = seed * 2654435761u + 12345;
  size_t i = 0;
  while (i < n) {
    x = x * 1103515245u + 12345u;
    const char *w = words[(x >> 16) % (sizeof words / sizeof *words)];
    for (; *w && i < n; w++) p[i++] = (uint8_t)*w;
    if (i < n) p[i++] = (x >> 8) & 1 ? ' ' : ',';
  }
}

/* Builds one masked client frame (RFC 6455 §5.2) around `payload`; returns its length. */
static size_t build_frame(uint8_t *out, const uint8_t *payload, size_t len, int opcode, int rsv1) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t h = 0;
  out[h++] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | opcode);
  if (len < 126) {
    out[h++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    out[h++] = 0x80 | 126;
    out[h++] = (uint8_t)(len >> 8);
    out[h++] = (uint8_t)len;
  } else {
    out[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  memcpy(out + h, key, 4);
  h += 4;
  for (size_t i = 0; i < len; i++) out[h + i] = payload[i] ^ key[i & 3];
  return h + len;
}

/* The frame of one message of `size` bytes, compressed when deflate_on, repeated `reps` times. */
static pattern_t make_pattern(size_t size, size_t max_reps, uint32_t seed) {
  uint8_t *payload = malloc(size + 1);
  if (!payload) fail("out of memory");
  fill_payload(payload, size, seed);
  const uint8_t *body = payload;
  size_t body_len = size;
  int rsv1 = 0;
  if (deflate_on) {
#ifdef NO_ZLIB
    fail("built without zlib: compressed cases are unavailable");
#else
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("deflateInit2");
    size_t cap = deflateBound(&z, size) + 16;
    uint8_t *c = malloc(cap);
    if (!c) fail("out of memory");
    z.next_in = payload;
    z.avail_in = (uInt)size;
    z.next_out = c;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK) fail("deflate");
    size_t clen = cap - z.avail_out;
    deflateEnd(&z);
    /* RFC 7692 §7.2.1: remove the 00 00 ff ff tail of the sync flush. */
    if (clen >= 4 && memcmp(c + clen - 4, "\x00\x00\xff\xff", 4) == 0) clen -= 4;
    body = c;
    body_len = clen;
    rsv1 = 1;
#endif
  }
  uint8_t *frame = malloc(body_len + 14);
  if (!frame) fail("out of memory");
  size_t flen = build_frame(frame, body, body_len, text ? 1 : 2, rsv1);
  size_t reps = max_reps;
  if (reps < 1) reps = 1;
  while (reps > 1 && flen * reps > MAX_BATCH_BYTES) reps--;
  uint8_t *pat = malloc(flen * reps);
  if (!pat) fail("out of memory");
  for (size_t i = 0; i < reps; i++) memcpy(pat + i * flen, frame, flen);
  free(frame);
  if (body != payload) free((void *)body);
  free(payload);
  pattern_t p = {pat, flen, reps};
  return p;
}

static void set_events(conn_t *c, int want_out) {
  if (c->want_out == want_out) return;
  c->want_out = want_out;
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void open_conn(conn_t *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) fail("connect: %s", strerror(errno));
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->want_out = 1;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

/* Abortive close (RST): no TIME_WAIT left behind by thousands of short-lived connections. */
static void reset_conn(conn_t *c) {
  if (c->fd < 0) return;
  struct linger lg = {1, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c->fd);
  c->fd = -1;
  c->state = ST_DEAD;
}

/* Writes as much of what the connection owes as the socket takes. */
static void flush_out(conn_t *c) {
  const pattern_t *p = c->pat;
  while (c->to_send > 0) {
    size_t want;
    uint64_t owed = c->to_send * p->flen - c->off;
    size_t room = p->flen * p->reps - c->off;
    want = owed < room ? (size_t)owed : room;
    ssize_t n = write(c->fd, p->pat + c->off, want);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      fail("write: %s", strerror(errno));
    }
    size_t total = c->off + (size_t)n;
    c->to_send -= total / p->flen;
    c->off = total % p->flen;
  }
  set_events(c, c->to_send > 0);
}

static void (*on_message)(conn_t *c);
static int nclosed_by_peer = 0;
static int tolerate_close = 0; /* idle mode: count closes instead of failing */

/* Answers a ping with a pong carrying its payload (RFC 6455 §5.5.2): servers with keepalive
 * (ours by default) would otherwise close idle connections. Best effort: a pong that does not
 * fit in the socket buffer at once is dropped. */
static void send_pong(conn_t *c) {
  uint8_t f[6 + 125];
  size_t n = build_frame(f, c->ctl, c->ctl_len, 10, 0);
  ssize_t w = write(c->fd, f, n);
  (void)w;
}

/* Skims server frames: headers only, payloads skipped. */
static void parse_frames(conn_t *c, const uint8_t *b, size_t n) {
  size_t pos = 0;
  while (pos < n) {
    if (c->payload_left > 0) {
      uint64_t take = n - pos < c->payload_left ? n - pos : c->payload_left;
      if ((c->hdr[0] & 0x08) && c->ctl_len + take <= sizeof c->ctl) {
        memcpy(c->ctl + c->ctl_len, b + pos, (size_t)take);
        c->ctl_len += (unsigned)take;
      }
      c->payload_left -= take;
      pos += take;
      if (c->payload_left > 0) break;
    } else {
      c->hdr[c->hlen++] = b[pos++];
      if (c->hlen < 2) continue;
      unsigned len7 = c->hdr[1] & 0x7f;
      unsigned need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
      if (c->hlen < need) continue;
      uint64_t len = len7;
      if (len7 == 126) len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
      if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | c->hdr[2 + i];
      }
      c->payload_left = len;
      c->ctl_len = 0;
      if (len > 0) continue;
    }
    /* a frame is complete */
    unsigned opcode = c->hdr[0] & 0x0f, fin = c->hdr[0] & 0x80;
    c->hlen = 0;
    if (opcode == 8) {
      if (!tolerate_close) fail("server closed the connection (close frame)");
      nclosed_by_peer++;
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      reset_conn(c);
      return;
    }
    if (opcode == 9) send_pong(c);
    if (opcode <= 2 && fin) on_message(c);
  }
}

static void do_handshake_read(conn_t *c) {
  ssize_t n = read(c->fd, c->hs + c->hs_len, HS_MAX - 1 - c->hs_len);
  if (n == 0) fail("server closed during the handshake");
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    fail("read: %s", strerror(errno));
  }
  c->hs_len += (size_t)n;
  c->hs[c->hs_len] = 0;
  char *end = strstr(c->hs, "\r\n\r\n");
  if (!end) {
    if (c->hs_len >= HS_MAX - 1) fail("handshake response too long");
    return;
  }
  if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
    char *eol = strstr(c->hs, "\r\n");
    if (eol) *eol = 0;
    fail("handshake refused: %s", c->hs);
  }
  if (deflate_on && !strcasestr(c->hs, "permessage-deflate")) fail("server did not accept permessage-deflate");
  c->state = ST_OPEN;
  size_t head = (size_t)(end + 4 - c->hs);
  if (c->hs_len > head) parse_frames(c, (uint8_t *)c->hs + head, c->hs_len - head);
}

static int nopen = 0;
static int hs_mode = 0; /* handshake mode: close each connection as soon as it is open */
static double hs_latency_sum = 0;
static uint64_t hs_opened = 0;

/* Handshake mode: a masked close frame, status 1000 (RFC 6455 §5.5.1), right after the 101. */
static void send_close(conn_t *c) {
  static const uint8_t code[2] = {0x03, 0xe8};
  uint8_t f[8];
  size_t n = build_frame(f, code, 2, 8, 0);
  ssize_t w = write(c->fd, f, n);
  if (w != (ssize_t)n) fail("write of the close frame: %s", w < 0 ? strerror(errno) : "short");
}

static void handle_event(conn_t *c, uint32_t events) {
  if (c->state == ST_DEAD) return;
  if (c->state == ST_CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      fail("connect: %s", strerror(err ? err : ECONNREFUSED));
    }
    if (!(events & EPOLLOUT)) return;
    c->state = ST_HANDSHAKE;
  }
  if (c->state == ST_HANDSHAKE) {
    while (c->req_off < request_len) {
      ssize_t n = write(c->fd, request + c->req_off, request_len - c->req_off);
      if (n < 0) {
        if (errno == EAGAIN) return;
        fail("write: %s", strerror(errno));
      }
      c->req_off += (size_t)n;
    }
    set_events(c, 0);
    if (events & EPOLLIN) do_handshake_read(c);
    if (c->state == ST_OPEN) {
      nopen++;
      if (hs_mode) {
        hs_opened++;
        hs_latency_sum += now_ms() - c->sent_at;
        send_close(c);
      }
    }
    return;
  }
  if (events & EPOLLIN) {
    ssize_t n = read(c->fd, rbuf, sizeof rbuf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (tolerate_close) {
        nclosed_by_peer++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        reset_conn(c);
        return;
      }
      fail("server closed the connection: %s", n == 0 ? "EOF" : strerror(errno));
    }
    parse_frames(c, rbuf, (size_t)n);
  }
  if (c->to_send > 0 && (events & EPOLLOUT || !c->want_out)) flush_out(c);
}

static int poll_once(int timeout_ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(ep, evs, 256, timeout_ms);
  if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
  for (int i = 0; i < n; i++) {
    if (evs[i].data.ptr == NULL) return -1; /* stdin */
    handle_event(evs[i].data.ptr, evs[i].events);
  }
  return n;
}

static void build_request(void) {
  request_len = (size_t)snprintf(request, sizeof request,
                                 "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                                 port,
                                 deflate_on ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
                                            : "");
}

/* ---------------------------------------------------------------- echo mode */

static uint64_t total_received = 0;

static void echo_on_message(conn_t *c) {
  c->received++;
  total_received++;
  c->to_send++;
}

/* Connects and handshakes conns [from, to) with at most `concurrency` handshakes in flight. */
static void open_all(int concurrency, double deadline) {
  int next = 0;
  while (nopen < nconns) {
    while (next < nconns && next - nopen < concurrency) open_conn(&conns[next++]);
    if (now_ms() > deadline) fail("timeout: %d of %d connections open", nopen, nconns);
    poll_once(10);
  }
}

static int run_echo(int pid, int inflight, size_t size, double warmup, double duration, double timeout) {
  double start = now_ms(), deadline = start + timeout;
  pattern_t p = make_pattern(size, (size_t)inflight, 1);
  for (int i = 0; i < nconns; i++) conns[i].pat = &p;
  on_message = echo_on_message;
  open_all(256, deadline);
  double t_open = now_ms();
  for (int i = 0; i < nconns; i++) {
    conns[i].to_send = (uint64_t)inflight;
    flush_out(&conns[i]);
  }
  double t_warm = t_open + warmup;
  while (now_ms() < t_warm) {
    if (now_ms() > deadline) fail("timeout during warmup");
    poll_once(5);
  }
  double k0, k1;
  double t0 = now_ms(), s0 = proc_cpu_us(pid, &k0), l0 = self_cpu_us();
  uint64_t m0 = total_received;
  double t_end = t0 + duration;
  double now;
  while ((now = now_ms()) < t_end) {
    if (now > deadline) fail("timeout during measurement");
    int wait = (int)(t_end - now);
    poll_once(wait < 1 ? 1 : wait > 50 ? 50 : wait);
  }
  double t1 = now_ms(), s1 = proc_cpu_us(pid, &k1), l1 = self_cpu_us();
  uint64_t m = total_received - m0;
  double secs = (t1 - t0) / 1e3;
  double server_cpu = s0 >= 0 && s1 >= 0 ? s1 - s0 : -1;
  uint64_t min_recv = UINT64_MAX;
  for (int i = 0; i < nconns; i++)
    if (conns[i].received < min_recv) min_recv = conns[i].received;
  printf("{\"ok\":true,\"mode\":\"echo\",\"conns\":%d,\"inflight\":%d,\"size\":%zu,\"frameBytes\":%zu,\"text\":%s,"
         "\"deflate\":%s,\"messages\":%llu,\"seconds\":%.4f,\"rate\":%.1f,\"serverCpuUs\":%.0f,"
         "\"serverCpuUsPerMsg\":%.4f,\"serverSysShare\":%.3f,\"serverCpuShare\":%.3f,\"loadgenCpuUs\":%.0f,"
         "\"loadgenCpuShare\":%.3f,\"minPerConn\":%llu,\"connectMs\":%.1f}\n",
         nconns, inflight, size, p.flen, text ? "true" : "false", deflate_on ? "true" : "false", (unsigned long long)m,
         secs, m / secs, server_cpu, m > 0 && server_cpu >= 0 ? server_cpu / m : -1,
         server_cpu > 0 ? (k1 - k0) / server_cpu : -1, server_cpu >= 0 ? server_cpu / 1e6 / secs : -1, l1 - l0, (l1 - l0) / 1e6 / secs,
         (unsigned long long)min_recv, t_open - start);
  fflush(stdout);
  for (int i = 0; i < nconns; i++) reset_conn(&conns[i]);
  return 0;
}

/* ---------------------------------------------------------------- idle mode */

static void noop_on_message(conn_t *c) { (void)c; }

static int run_idle(int concurrency, double timeout) {
  double start = now_ms();
  static const pattern_t none = {NULL, 1, 1};
  for (int i = 0; i < nconns; i++) conns[i].pat = &none;
  on_message = noop_on_message;
  tolerate_close = 1;
  open_all(concurrency, start + timeout);
  printf("{\"ok\":true,\"mode\":\"idle\",\"ready\":true,\"conns\":%d,\"connectMs\":%.1f,\"closedByServer\":%d}\n",
         nconns, now_ms() - start, nclosed_by_peer);
  fflush(stdout);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  double deadline = start + timeout;
  while (now_ms() < deadline) {
    if (poll_once(100) < 0) break; /* stdin readable: EOF or a line; either way we are done */
  }
  for (int i = 0; i < nconns; i++) reset_conn(&conns[i]);
  printf("{\"ok\":true,\"mode\":\"idle\",\"closed\":true,\"closedByServer\":%d}\n", nclosed_by_peer);
  fflush(stdout);
  return 0;
}

/* ---------------------------------------------------------------- handshake mode */

/* A slot whose connection ended (reset after the server's close frame, or closed by the server)
 * gets a fresh connection; returns how many cycles ended. */
static uint64_t recycle(void) {
  uint64_t ended = 0;
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &conns[i];
    if (c->state != ST_DEAD) continue;
    ended++;
    const pattern_t *pat = c->pat;
    memset(c, 0, sizeof *c);
    c->pat = pat;
    c->sent_at = now_ms();
    open_conn(c);
  }
  return ended;
}

static int run_handshake(int pid, double warmup, double duration, double timeout) {
  double start = now_ms(), deadline = start + timeout;
  static const pattern_t none = {NULL, 1, 1};
  on_message = noop_on_message;
  tolerate_close = 1; /* the server's close frame (or its FIN) ends a cycle */
  hs_mode = 1;
  for (int i = 0; i < nconns; i++) {
    conns[i].pat = &none;
    conns[i].sent_at = now_ms();
    open_conn(&conns[i]);
  }
  double t_warm = start + warmup;
  while (now_ms() < t_warm) {
    if (now_ms() > deadline) fail("timeout during warmup");
    poll_once(5);
    recycle();
  }
  double k0, k1;
  double t0 = now_ms(), s0 = proc_cpu_us(pid, &k0), l0 = self_cpu_us();
  double lat0 = hs_latency_sum;
  uint64_t o0 = hs_opened, cycles = 0;
  double t_end = t0 + duration, now;
  while ((now = now_ms()) < t_end) {
    if (now > deadline) fail("timeout during measurement");
    int wait = (int)(t_end - now);
    poll_once(wait < 1 ? 1 : wait > 50 ? 50 : wait);
    cycles += recycle();
  }
  double t1 = now_ms(), s1 = proc_cpu_us(pid, &k1), l1 = self_cpu_us();
  double secs = (t1 - t0) / 1e3;
  double server_cpu = s0 >= 0 && s1 >= 0 ? s1 - s0 : -1;
  uint64_t opened = hs_opened - o0;
  printf("{\"ok\":true,\"mode\":\"handshake\",\"conns\":%d,\"handshakes\":%llu,\"seconds\":%.4f,\"rate\":%.1f,"
         "\"serverCpuUs\":%.0f,\"serverCpuUsPerHandshake\":%.2f,\"serverSysShare\":%.3f,\"serverCpuShare\":%.3f,"
         "\"loadgenCpuUs\":%.0f,\"loadgenCpuShare\":%.3f,\"handshakeMs\":%.3f}\n",
         nconns, (unsigned long long)cycles, secs, cycles / secs, server_cpu,
         cycles > 0 && server_cpu >= 0 ? server_cpu / cycles : -1, server_cpu > 0 ? (k1 - k0) / server_cpu : -1,
         server_cpu >= 0 ? server_cpu / 1e6 / secs : -1, l1 - l0, (l1 - l0) / 1e6 / secs,
         opened > 0 ? (hs_latency_sum - lat0) / opened : -1);
  fflush(stdout);
  for (int i = 0; i < nconns; i++) reset_conn(&conns[i]);
  return 0;
}

/* ---------------------------------------------------------------- lag mode */

static double big_done_at = 0;
static double *rtts;
static size_t nrtts = 0, cap_rtts = 0;

static void lag_on_message(conn_t *c) {
  double t = now_ms();
  if (c == &conns[0]) {
    big_done_at = t;
    return;
  }
  if (nrtts == cap_rtts) {
    cap_rtts = cap_rtts ? cap_rtts * 2 : 1024;
    rtts = realloc(rtts, cap_rtts * sizeof *rtts);
    if (!rtts) fail("out of memory");
  }
  rtts[nrtts++] = t - c->sent_at;
  c->sent_at = t;
  c->to_send = 1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double q) {
  if (n == 0) return -1;
  qsort(v, n, sizeof *v, cmp_double);
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return v[i];
}

static int run_lag(size_t size, double timeout) {
  double start = now_ms(), deadline = start + timeout;
  nconns = 2;
  pattern_t big = make_pattern(size, 1, 7);
  /* the pinger sends small uncompressed text (RSV1 clear is allowed with permessage-deflate) */
  int saved_deflate = deflate_on, saved_text = text;
  deflate_on = 0;
  text = 1;
  pattern_t small = make_pattern(16, 1, 3);
  deflate_on = saved_deflate;
  text = saved_text;
  conns[0].pat = &big;
  conns[1].pat = &small;
  on_message = lag_on_message;
  open_all(2, deadline);
  /* baseline: B alone for 300 ms */
  conn_t *b = &conns[1];
  b->sent_at = now_ms();
  b->to_send = 1;
  flush_out(b);
  double t_base = now_ms() + 300;
  while (now_ms() < t_base) {
    if (now_ms() > deadline) fail("timeout during baseline");
    poll_once(5);
  }
  size_t base_n = nrtts;
  double base_p50 = percentile(rtts, base_n, 0.5);
  nrtts = 0;
  /* the big message */
  double t0 = now_ms();
  conns[0].to_send = 1;
  flush_out(&conns[0]);
  while (big_done_at == 0) {
    if (now_ms() > deadline) fail("timeout waiting for the echo of the big message");
    poll_once(5);
  }
  /* let B's outstanding round trip finish: it may be the one that waited longest */
  size_t during = nrtts;
  double wait_until = now_ms() + 2000;
  while (nrtts == during && now_ms() < wait_until) poll_once(5);
  size_t n = nrtts;
  double max = 0;
  for (size_t i = 0; i < n; i++)
    if (rtts[i] > max) max = rtts[i];
  double p50 = percentile(rtts, n, 0.5), p99 = percentile(rtts, n, 0.99);
  printf("{\"ok\":true,\"mode\":\"lag\",\"size\":%zu,\"frameBytes\":%zu,\"deflate\":%s,\"bigEchoMs\":%.2f,"
         "\"baselineRttP50Ms\":%.3f,\"baselineSamples\":%zu,\"rttMaxMs\":%.2f,\"rttP50Ms\":%.3f,\"rttP99Ms\":%.2f,"
         "\"samples\":%zu}\n",
         size, big.flen, deflate_on ? "true" : "false", big_done_at - t0, base_p50, base_n, max, p50, p99, n);
  fflush(stdout);
  for (int i = 0; i < nconns; i++) reset_conn(&conns[i]);
  return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  /* Die with the parent (run.mjs), however it ends. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  const char *mode = argc > 1 ? argv[1] : "";
  int pid = 0, inflight = 1, concurrency = 256;
  size_t size = 16;
  double warmup = 500, duration = 2000, timeout = 0;
  nconns = 1;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
    if (ARG("--port")) port = atoi(v);
    else if (ARG("--pid")) pid = atoi(v);
    else if (ARG("--conns")) nconns = atoi(v);
    else if (ARG("--inflight")) inflight = atoi(v);
    else if (ARG("--size")) size = (size_t)strtoull(v, NULL, 10);
    else if (ARG("--warmup")) warmup = atof(v);
    else if (ARG("--duration")) duration = atof(v);
    else if (ARG("--timeout")) timeout = atof(v);
    else if (ARG("--concurrency")) concurrency = atoi(v);
    else if (strcmp(a, "--text") == 0) text = 1;
    else if (strcmp(a, "--deflate") == 0) deflate_on = 1;
    else fail("unknown argument %s", a);
#undef ARG
  }
  mode_name = mode;
  if (port <= 0) fail("--port is required");
  if (nconns < 1 || inflight < 1 || concurrency < 1) fail("bad --conns, --inflight or --concurrency");
  /* one descriptor per connection, plus a few */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nconns + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)nconns + 64) fail("ulimit -n is %llu, %d connections need more", (unsigned long long)rl.rlim_cur, nconns);
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  conns = calloc((size_t)(nconns < 2 ? 2 : nconns), sizeof *conns);
  if (!conns) fail("out of memory");
  for (int i = 0; i < (nconns < 2 ? 2 : nconns); i++) conns[i].fd = -1;
  build_request();
  if (strcmp(mode, "echo") == 0) {
    if (timeout <= 0) timeout = warmup + duration + 15000;
    return run_echo(pid, inflight, size, warmup, duration, timeout);
  }
  if (strcmp(mode, "idle") == 0) {
    if (timeout <= 0) timeout = 120000;
    return run_idle(concurrency, timeout);
  }
  if (strcmp(mode, "handshake") == 0) {
    if (timeout <= 0) timeout = warmup + duration + 15000;
    return run_handshake(pid, warmup, duration, timeout);
  }
  if (strcmp(mode, "lag") == 0) {
    if (timeout <= 0) timeout = 30000;
    return run_lag(size, timeout);
  }
  fail("usage: loadgen echo|idle|handshake|lag --port P [options]");
  return 1;
}
