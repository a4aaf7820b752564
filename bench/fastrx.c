/* The load tool's receive loop in C (bench/fastrx.py builds and loads it with ctypes).
 *
 * Why: in Python, one delivery costs the tool ~10 us when every read holds one frame
 * (epoll event -> read -> parse -> count), and the tool shares the machine's 2 cores with
 * the server it measures. This loop does the same work for the common case: it reads every
 * ready socket and, for each complete unmasked FIN text frame holding a bench publication
 * ("bseq": N, "bts": T, the regex of bench/wsproto.py), records the latency (receipt
 * CLOCK_REALTIME - bts), counts the delivery and marks N in the socket's bitmap (a second N
 * is a duplicate). Anything else (a control frame such as heartbeat or published, a frame
 * cut across reads, a close, EOF) is handed back to Python as "the rest of this read" and
 * parsed there by the same WSClient code as before, which also owns any partial frame.
 *
 * Returns from rx_run: 0 = its time budget passed, 1 = the command pipe is readable,
 * 2 = bytes for Python: buf[out_off : out_off + out_len] read from out_fd,
 * 3 = out_fd reached EOF or a read error, < 0 = -errno of epoll_wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define DUP_SAMPLES 20

typedef struct {
    int64_t *lats;      /* latencies, ns */
    int64_t lat_cap;
    int64_t lat_n;
    int64_t deliveries;
    int64_t distinct;
    int64_t dups;
    int64_t first_rx;   /* CLOCK_REALTIME ns of the first / last read holding a delivery */
    int64_t last_rx;
    uint8_t *seen;      /* per fd: seen_stride bytes, bit N = publication N arrived */
    int64_t seen_stride;
    int64_t max_fd;
    uint8_t *slow;      /* per fd: 1 = Python holds a partial frame, all reads go there */
    uint8_t *buf;       /* read buffer */
    int64_t buf_cap;
    int64_t out_fd;
    int64_t out_off;
    int64_t out_len;
    int64_t reads;
    int64_t max_seq;    /* highest publication number seen (-1: none) */
    int64_t dup_n;
    int64_t dup_fd[DUP_SAMPLES];
    int64_t dup_seq[DUP_SAMPLES];
    int64_t dup_ts[DUP_SAMPLES];
} rx_state;

static int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const uint8_t *digits(const uint8_t *p, const uint8_t *end, int64_t *out) {
    const uint8_t *start = p;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 19) v = v * 10 + (*p++ - '0');
    if (p == start) return NULL;
    *out = v;
    return p;
}

/* "bseq":\s*(\d+),\s*"bts":\s*(\d+) at the first "bseq": of the payload. */
static int match(const uint8_t *s, int64_t n, int64_t *seq, int64_t *ts) {
    static const char key1[] = "\"bseq\":", key2[] = "\"bts\":";
    const uint8_t *end = s + n;
    const uint8_t *p = memmem(s, (size_t)n, key1, sizeof key1 - 1);
    if (p == NULL) return 0;
    p = skip_ws(p + sizeof key1 - 1, end);
    if ((p = digits(p, end, seq)) == NULL) return 0;
    if (p >= end || *p != ',') return 0;
    p = skip_ws(p + 1, end);
    if ((size_t)(end - p) < sizeof key2 - 1 || memcmp(p, key2, sizeof key2 - 1) != 0) return 0;
    p = skip_ws(p + sizeof key2 - 1, end);
    return digits(p, end, ts) != NULL;
}

/* Consumes complete publication frames from the front of b; returns how many bytes. */
static int64_t parse(rx_state *st, int64_t fd, const uint8_t *b, int64_t n, int64_t now) {
    int64_t pos = 0, got = 0;
    uint8_t *seen = st->seen + fd * st->seen_stride;
    while (n - pos >= 2) {
        int64_t ln = b[pos + 1] & 0x7F, start;
        if (b[pos] != 0x81 || (b[pos + 1] & 0x80)) break;
        if (ln < 126) {
            start = pos + 2;
        } else if (ln == 126) {
            if (n - pos < 4) break;
            ln = ((int64_t)b[pos + 2] << 8) | b[pos + 3];
            start = pos + 4;
        } else {
            if (n - pos < 10) break;
            ln = 0;
            for (int i = 0; i < 8; i++) ln = (ln << 8) | b[pos + 2 + i];
            start = pos + 10;
        }
        if (ln < 0 || start + ln > n) break;
        int64_t seq, ts;
        if (!match(b + start, ln, &seq, &ts) || seq >= st->seen_stride * 8) break;
        if (st->lat_n < st->lat_cap) st->lats[st->lat_n++] = now - ts;
        st->deliveries++;
        if (seq > st->max_seq) st->max_seq = seq;
        uint8_t bit = (uint8_t)(1u << (seq & 7));
        if (seen[seq >> 3] & bit) {
            st->dups++;
            if (st->dup_n < DUP_SAMPLES) {
                st->dup_fd[st->dup_n] = fd;
                st->dup_seq[st->dup_n] = seq;
                st->dup_ts[st->dup_n] = now;
                st->dup_n++;
            }
        } else {
            seen[seq >> 3] |= bit;
            st->distinct++;
        }
        got = 1;
        pos = start + ln;
    }
    if (got) {
        if (st->first_rx == 0) st->first_rx = now;
        st->last_rx = now;
    }
    return pos;
}

int rx_run(rx_state *st, int epfd, int stop_fd, int budget_ms) {
    struct epoll_event evs[512];
    int64_t deadline = clock_ns(CLOCK_MONOTONIC) + (int64_t)budget_ms * 1000000LL;
    for (;;) {
        int64_t left = (deadline - clock_ns(CLOCK_MONOTONIC)) / 1000000LL;
        if (left <= 0) return 0;
        int k = epoll_wait(epfd, evs, 512, (int)left);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (k == 0) return 0;
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == stop_fd) return 1;
            ssize_t r = read(fd, st->buf, (size_t)st->buf_cap);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            st->out_fd = fd;
            if (r <= 0) return 3;
            st->reads++;
            int64_t used = 0;
            if (fd <= st->max_fd && !st->slow[fd])
                used = parse(st, fd, st->buf, r, clock_ns(CLOCK_REALTIME));
            if (used < r) {
                st->out_off = used;
                st->out_len = r - used;
                return 2;
            }
        }
    }
}
