// http-health: a drover driver, written in C, that checks an HTTP endpoint
// with curl.
//
// The bindings (driver.h, driver.c) are generated from wit/driver.wit by
// `wit-bindgen c` at build time; see build.sh and README.md.
//
// Ownership, as wit-bindgen's C bindings define it:
// - an exported function owns its arguments: it frees the task with
//   driver_task_free();
// - what an export returns is freed with free() by the generated
//   post-return functions after the host has copied it, so every string
//   and list returned must be malloc'd (driver_string_dup*, xmalloc), never
//   a string literal;
// - arguments passed to imports are only borrowed, and what imports return
//   belongs to us (freed with the *_free helpers).

#include "driver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRIVER_NAME "http-health"
#define DRIVER_VERSION "1.0.0"

// Where curl writes the response body, relative to the workspace: curl's
// working directory and WASI's preopened `.` are both the workspace.
#define BODY_FILE "body.txt"
// The `body` output is cut to this many bytes.
#define BODY_MAX 4096
#define DEFAULT_TIMEOUT_S 10
#define MAX_TIMEOUT_S 3600
// Extra time the host gives curl beyond its own --max-time before killing
// it, so that curl normally reports its own timeout (exit code 28).
#define KILL_GRACE_MS 5000

typedef drover_driver_types_pair_t pair_t;

// ---------------------------------------------------------------------------
// Small helpers.

// Allocation failure in a driver instance is not recoverable (the bindings'
// own cabi_realloc aborts too), so trap instead of threading NULL around.
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }
    return p;
}

// vprintf into a freshly malloc'd component string.
__attribute__((format(printf, 2, 0)))
static void string_vprintf(driver_string_t *ret, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) {
        abort();
    }
    char *buf = xmalloc((size_t)n + 1);
    vsnprintf(buf, (size_t)n + 1, fmt, again);
    va_end(again);
    ret->ptr = (uint8_t *)buf;
    ret->len = (size_t)n;
}

// printf into a freshly malloc'd component string.
__attribute__((format(printf, 2, 3)))
static void string_printf(driver_string_t *ret, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    string_vprintf(ret, fmt, ap);
    va_end(ap);
}

// Writes one line to the node's log.
__attribute__((format(printf, 2, 3)))
static void log_line(drover_driver_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    char *buf = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    driver_string_t msg = {(uint8_t *)buf, (size_t)n};
    drover_driver_log_write(level, &msg);  // borrows msg
    free(buf);
}

// Component strings are not NUL-terminated: print them with "%.*s", S(s).
// Lengths here come from the host and are far below INT_MAX; clamp anyway.
#define S(s) ((s).len > 65536 ? 65536 : (int)(s).len), (const char *)(s).ptr

static bool has_prefix(const uint8_t *p, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

static bool contains(const uint8_t *p, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++) {
        if (memcmp(p + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

// Whether an arg holds an upstream output reference (`${{ ... }}` or
// `get_attribute NAME:KEY`). validate sees such values as written, so they
// can only be checked once run gets them substituted.
static bool is_reference(const uint8_t *p, size_t len) {
    return contains(p, len, "${{") || contains(p, len, "get_attribute");
}

// Parses a non-empty run of ASCII digits no greater than max. strtol would
// accept signs, spaces and overflow; this accepts exactly what the docs say.
static bool parse_uint(const uint8_t *p, size_t len, unsigned max, unsigned *out) {
    if (len == 0) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(p[i] - '0');
        if (v > max) {
            return false;
        }
    }
    *out = v;
    return true;
}

// ---------------------------------------------------------------------------
// Checking a task: shared by validate and run.

// A growable list of problems, returned to the host as is.
typedef struct {
    driver_problem_t *ptr;
    size_t len, cap;
} problems_t;

__attribute__((format(printf, 3, 4)))
static void add_problem(problems_t *ps, const char *field, const char *fmt, ...) {
    if (ps->len == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 4;
        driver_problem_t *grown = realloc(ps->ptr, cap * sizeof *grown);
        if (grown == NULL) {
            abort();
        }
        ps->ptr = grown;
        ps->cap = cap;
    }
    driver_problem_t *p = &ps->ptr[ps->len++];
    driver_string_dup(&p->field, field);

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    char *buf = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->message.ptr = (uint8_t *)buf;
    p->message.len = (size_t)n;
}

static void problems_free(problems_t *ps) {
    for (size_t i = 0; i < ps->len; i++) {
        driver_problem_free(&ps->ptr[i]);
    }
    free(ps->ptr);
    ps->ptr = NULL;
    ps->len = ps->cap = 0;
}

typedef struct {
    unsigned expect;     // expected status code; 0 means any 2xx
    unsigned timeout_s;  // curl's --max-time
} config_t;

static void check_url(const driver_string_t *url, bool deferred_ok, problems_t *ps) {
    // The host substitutes only `${{ ... }}` in an artifact.
    if (deferred_ok && contains(url->ptr, url->len, "${{")) {
        return;  // checked again in run, after substitution
    }
    if (url->len == 0) {
        add_problem(ps, "artifact", "the URL to check is required: http://... or https://...");
        return;
    }
    size_t scheme;
    if (has_prefix(url->ptr, url->len, "http://")) {
        scheme = strlen("http://");
    } else if (has_prefix(url->ptr, url->len, "https://")) {
        scheme = strlen("https://");
    } else {
        add_problem(ps, "artifact",
                    "`%.*s` is not an HTTP URL: it must start with http:// or https://",
                    S(*url));
        return;
    }
    if (url->len == scheme || url->ptr[scheme] == '/') {
        add_problem(ps, "artifact", "`%.*s` has no host", S(*url));
        return;
    }
    // curl would refuse these anyway; saying so here is clearer, and the
    // host refuses NUL bytes in process arguments.
    for (size_t i = 0; i < url->len; i++) {
        if (url->ptr[i] <= ' ' || url->ptr[i] == 0x7f) {
            add_problem(ps, "artifact",
                        "the URL contains a space or control character at byte %zu; "
                        "percent-encode it", i);
            return;
        }
    }
}

// Reads `expect=NNN` and `timeout=SECONDS` into cfg. With deferred_ok,
// values that are output references are accepted unchecked (validate).
static void parse_args(const driver_list_string_t *args, bool deferred_ok,
                       config_t *cfg, problems_t *ps) {
    bool seen_expect = false, seen_timeout = false;
    cfg->expect = 0;
    cfg->timeout_s = DEFAULT_TIMEOUT_S;

    for (size_t i = 0; i < args->len; i++) {
        const driver_string_t *arg = &args->ptr[i];
        const uint8_t *eq = memchr(arg->ptr, '=', arg->len);
        if (eq == NULL) {
            // A whole-arg `get_attribute NAME:KEY` becomes `key=value` later.
            if (!(deferred_ok && is_reference(arg->ptr, arg->len))) {
                add_problem(ps, "args",
                            "unknown arg `%.*s`: expected expect=NNN or timeout=SECONDS",
                            S(*arg));
            }
            continue;
        }
        size_t key_len = (size_t)(eq - arg->ptr);
        const uint8_t *val = eq + 1;
        size_t val_len = arg->len - key_len - 1;
        bool deferred = deferred_ok && is_reference(val, val_len);

        if (key_len == 6 && memcmp(arg->ptr, "expect", 6) == 0) {
            if (seen_expect) {
                add_problem(ps, "args", "`expect` is given more than once");
            }
            seen_expect = true;
            unsigned code;
            if (deferred) {
                continue;
            }
            if (val_len != 3 || !parse_uint(val, val_len, 599, &code) || code < 100) {
                add_problem(ps, "args",
                            "`%.*s`: expect must be an HTTP status code, 100 to 599",
                            S(*arg));
                continue;
            }
            cfg->expect = code;
        } else if (key_len == 7 && memcmp(arg->ptr, "timeout", 7) == 0) {
            if (seen_timeout) {
                add_problem(ps, "args", "`timeout` is given more than once");
            }
            seen_timeout = true;
            unsigned secs;
            if (deferred) {
                continue;
            }
            if (!parse_uint(val, val_len, MAX_TIMEOUT_S, &secs) || secs == 0) {
                add_problem(ps, "args",
                            "`%.*s`: timeout must be whole seconds, 1 to %d",
                            S(*arg), MAX_TIMEOUT_S);
                continue;
            }
            cfg->timeout_s = secs;
        } else {
            add_problem(ps, "args",
                        "unknown arg `%.*s`: expected expect=NNN or timeout=SECONDS",
                        S(*arg));
        }
    }
}

// ---------------------------------------------------------------------------
// describe

static void dup_pair(pair_t *p, const char *key, const char *value, size_t value_len) {
    driver_string_dup(&p->f0, key);
    driver_string_dup_n(&p->f1, value, value_len);
}

void exports_driver_describe(driver_description_t *ret) {
    driver_string_dup(&ret->name, DRIVER_NAME);
    driver_string_dup(&ret->version, DRIVER_VERSION);
    driver_string_dup(&ret->summary, "Checks an HTTP endpoint with curl.");
    driver_string_dup(&ret->artifact,
                      "The URL to check: http://... or https://... (redirects are not followed).");
    driver_string_dup(&ret->args,
                      "Optional `expect=NNN`, the status code that counts as healthy "
                      "(default: any 2xx), and `timeout=SECONDS` (default 10, at most 3600).");
    driver_string_dup(&ret->outputs,
                      "`status` (the HTTP status code), `time_ms` (the request's total time, "
                      "in milliseconds) and `body` (the response body, cut to 4096 bytes). "
                      "The node succeeds iff the status is the expected one.");

    drover_driver_types_capabilities_t *caps = &ret->capabilities;
    caps->exec.len = 1;
    caps->exec.ptr = xmalloc(sizeof *caps->exec.ptr);
    driver_string_dup(&caps->exec.ptr[0], "curl");
    caps->workspace = true;  // curl writes body.txt there; we read it back
    caps->network = true;
    caps->container = false;
    caps->secrets = false;
}

// ---------------------------------------------------------------------------
// validate

void exports_driver_validate(driver_task_t *task, driver_list_problem_t *ret) {
    problems_t ps = {0};
    config_t cfg;
    check_url(&task->artifact, true, &ps);
    parse_args(&task->args, true, &cfg, &ps);

    // The host frees the list (post-return) once it has copied it.
    ret->ptr = ps.ptr;
    ret->len = ps.len;
    driver_task_free(task);
}

// ---------------------------------------------------------------------------
// run

// What curl's exit codes mean, for the ones a health check meets
// (see curl(1), "EXIT CODES").
static const char *curl_error(int code) {
    switch (code) {
    case 1: return "unsupported protocol";
    case 2: return "failed to initialize";
    case 3: return "malformed URL";
    case 5: return "could not resolve proxy";
    case 6: return "could not resolve host";
    case 7: return "failed to connect to host (connection refused or unreachable)";
    case 16: return "HTTP/2 error";
    case 18: return "partial file: the transfer was cut short";
    case 23: return "could not write the body to " BODY_FILE;
    case 27: return "out of memory";
    case 28: return "operation timed out";
    case 35: return "TLS handshake failed";
    case 47: return "too many redirects";
    case 52: return "the server sent an empty reply";
    case 55: return "failed sending network data";
    case 56: return "failure receiving network data (connection reset?)";
    case 60: return "the server's TLS certificate could not be verified";
    default: return "see curl(1), EXIT CODES";
    }
}

static const char *exec_error_kind(const drover_driver_exec_error_t *e) {
    switch (e->tag) {
    case DROVER_DRIVER_EXEC_ERROR_NOT_ALLOWED: return "not allowed";
    case DROVER_DRIVER_EXEC_ERROR_NOT_FOUND: return "not found";
    case DROVER_DRIVER_EXEC_ERROR_INVALID: return "invalid command";
    case DROVER_DRIVER_EXEC_ERROR_SANDBOX: return "sandbox";
    default: return "i/o error";
    }
}

// Every variant of exec's error carries a string in the same place.
static const driver_string_t *exec_error_text(const drover_driver_exec_error_t *e) {
    return &e->val.io;
}

// Copies the valid UTF-8 in in[0..n) to out (capacity cap), replacing each
// invalid byte with '?': a WIT string must be valid UTF-8 or the host traps,
// and response bodies may be anything. When in_cut, a sequence cut off at
// the end of the input is dropped rather than replaced. Returns the length.
static size_t utf8_sanitize(const uint8_t *in, size_t n, bool in_cut, char *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n && o < cap) {
        uint8_t c = in[i];
        size_t len;
        uint32_t min;
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000;
        } else {
            len = 0, min = 0;
        }
        bool valid = len != 0 && i + len <= n;
        uint32_t cp = len ? c & (0x7f >> len) : 0;
        for (size_t k = 1; valid && k < len; k++) {
            if ((in[i + k] & 0xc0) != 0x80) {
                valid = false;
            }
            cp = (cp << 6) | (in[i + k] & 0x3f);
        }
        // Overlong forms, surrogates and code points past U+10FFFF are
        // invalid UTF-8 too.
        if (valid && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) {
            valid = false;
        }
        if (valid) {
            if (o + len > cap) {
                break;
            }
            memcpy(out + o, in + i, len);
            o += len;
            i += len;
        } else if (in_cut && len != 0 && i + len > n) {
            break;  // a character cut in two by the size limit
        } else {
            out[o++] = '?';
            i++;
        }
    }
    return o;
}

// Reads the start of the response body into a malloc'd, valid UTF-8 string.
// Returns false (and sets *err) if the file cannot be read.
static bool read_body(driver_string_t *ret, bool *cut, const char **err) {
    FILE *f = fopen(BODY_FILE, "rb");
    if (f == NULL) {
        if (errno == ENOENT) {  // curl writes no file for an empty body
            ret->ptr = NULL;
            ret->len = 0;
            *cut = false;
            return true;
        }
        *err = strerror(errno);
        return false;
    }
    // One byte more than kept, to learn whether the body was cut.
    uint8_t *raw = xmalloc(BODY_MAX + 1);
    size_t n = fread(raw, 1, BODY_MAX + 1, f);
    bool failed = ferror(f) != 0;
    int saved = errno;
    fclose(f);
    if (failed) {
        free(raw);
        *err = strerror(saved);
        return false;
    }
    *cut = n > BODY_MAX;
    if (*cut) {
        n = BODY_MAX;
    }
    char *text = xmalloc(BODY_MAX);
    ret->len = utf8_sanitize(raw, n, *cut, text, BODY_MAX);
    ret->ptr = (uint8_t *)text;
    free(raw);
    return true;
}

// Parses curl's `-w '%{http_code} %{time_total}'`, e.g. `200 0.012345`.
static bool parse_write_out(const driver_string_t *s, unsigned *status, unsigned long *ms) {
    // NUL-terminate a copy so that strtod can be used safely.
    char buf[64];
    if (s->len == 0 || s->len >= sizeof buf) {
        return false;
    }
    memcpy(buf, s->ptr, s->len);
    buf[s->len] = '\0';

    const char *space = strchr(buf, ' ');
    if (space == NULL || !parse_uint((const uint8_t *)buf, (size_t)(space - buf), 999, status)) {
        return false;
    }
    char *end;
    errno = 0;
    double secs = strtod(space + 1, &end);
    if (end == space + 1 || *end != '\0' || errno != 0 || !(secs >= 0) || secs > 1e6) {
        return false;
    }
    *ms = (unsigned long)(secs * 1000.0 + 0.5);
    return true;
}

// Fills a failure outcome; the message is printf-formatted.
__attribute__((format(printf, 2, 3)))
static void fail(driver_outcome_t *ret, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    string_vprintf(&ret->message, fmt, ap);
    va_end(ap);
    ret->status = DROVER_DRIVER_TYPES_STATUS_FAILURE;
}

// The work of run, apart from freeing the task.
static void check(const driver_task_t *task, driver_outcome_t *ret) {
    const driver_string_t *url = &task->artifact;

    // validate could not check values holding output references; the host
    // has substituted them now.
    problems_t ps = {0};
    config_t cfg;
    check_url(url, false, &ps);
    parse_args(&task->args, false, &cfg, &ps);
    if (ps.len > 0) {
        fail(ret, "invalid %.*s: %.*s", S(ps.ptr[0].field), S(ps.ptr[0].message));
        problems_free(&ps);
        return;
    }

    // A body left by an earlier attempt must not pass for this one's.
    if (remove(BODY_FILE) != 0 && errno != ENOENT) {
        fail(ret, "cannot remove the stale " BODY_FILE ": %s", strerror(errno));
        return;
    }

    char max_time[16];
    snprintf(max_time, sizeof max_time, "%u", cfg.timeout_s);
    // -q: ignore any .curlrc, so that the check means the same everywhere.
    // -sS: no progress meter, but errors still go to stderr (and the log).
    // --proto: curl itself refuses anything but HTTP(S), belt and braces
    // for the artifact check above.
    const char *argv[] = {
        "-q", "-sS", "--proto", "=http,https", "-o", BODY_FILE,
        "-w", "%{http_code} %{time_total}", "--max-time", max_time,
    };
    enum { NARGS = sizeof argv / sizeof argv[0] };
    driver_string_t args[NARGS + 1];
    for (size_t i = 0; i < NARGS; i++) {
        driver_string_set(&args[i], argv[i]);  // borrowed by spawn
    }
    args[NARGS] = *url;

    drover_driver_exec_command_t cmd = {0};
    driver_string_set(&cmd.program, "curl");
    cmd.args.ptr = args;
    cmd.args.len = NARGS + 1;
    // The node's env (proxies, CA bundles, ...) is curl's env. A task pair
    // and an exec pair are the same WIT type.
    cmd.env.ptr = task->env.ptr;
    cmd.env.len = task->env.len;
    cmd.capture_stdout = true;
    cmd.timeout_ms.is_some = true;
    cmd.timeout_ms.val = (uint64_t)cfg.timeout_s * 1000 + KILL_GRACE_MS;

    drover_driver_exec_own_process_t proc;
    drover_driver_exec_error_t err;
    if (!drover_driver_exec_spawn(&cmd, &proc, &err)) {
        fail(ret, "cannot run curl: %s: %.*s", exec_error_kind(&err), S(*exec_error_text(&err)));
        drover_driver_exec_error_free(&err);
        return;
    }
    drover_driver_exec_exit_status_t st;
    bool waited = drover_driver_exec_method_process_wait(
        drover_driver_exec_borrow_process(proc), &st, &err);
    drover_driver_exec_process_drop_own(proc);
    if (!waited) {
        fail(ret, "cannot wait for curl: %s: %.*s", exec_error_kind(&err),
             S(*exec_error_text(&err)));
        drover_driver_exec_error_free(&err);
        return;
    }

    if (st.code.is_some) {
        ret->exit_code.is_some = true;
        ret->exit_code.val = st.code.val;
    } else if (st.signal.is_some) {
        ret->exit_code.is_some = true;  // the shell's convention
        ret->exit_code.val = 128 + st.signal.val;
    }

    unsigned status;
    unsigned long ms;
    if (st.timed_out) {
        fail(ret, "GET %.*s: curl did not finish within %u s and was killed", S(*url),
             cfg.timeout_s);
    } else if (!st.code.is_some) {
        fail(ret, "GET %.*s: curl was killed by signal %d", S(*url),
             st.signal.is_some ? st.signal.val : -1);
    } else if (st.code.val != 0) {
        fail(ret, "GET %.*s: curl failed with exit code %d: %s", S(*url), st.code.val,
             curl_error(st.code.val));
    } else if (!parse_write_out(&st.stdout_, &status, &ms)) {
        fail(ret, "GET %.*s: cannot parse curl's output `%.*s`", S(*url), S(st.stdout_));
    } else {
        bool cut = false;
        const char *why = NULL;
        driver_string_t body;
        if (!read_body(&body, &cut, &why)) {
            fail(ret, "GET %.*s -> %u, but " BODY_FILE " cannot be read: %s", S(*url), status,
                 why);
            drover_driver_exec_exit_status_free(&st);
            return;
        }
        if (cut) {
            log_line(DROVER_DRIVER_LOG_LEVEL_DEBUG, "the body output is cut to %d bytes",
                     BODY_MAX);
        }
        log_line(DROVER_DRIVER_LOG_LEVEL_INFO, "GET %.*s -> %u in %lu ms", S(*url), status, ms);

        char num[24];
        pair_t *outs = xmalloc(3 * sizeof *outs);
        snprintf(num, sizeof num, "%u", status);
        dup_pair(&outs[0], "status", num, strlen(num));
        snprintf(num, sizeof num, "%lu", ms);
        dup_pair(&outs[1], "time_ms", num, strlen(num));
        driver_string_dup(&outs[2].f0, "body");
        outs[2].f1 = body;  // ownership moves to the outcome
        ret->outputs.ptr = outs;
        ret->outputs.len = 3;

        bool ok = cfg.expect ? status == cfg.expect : (status >= 200 && status <= 299);
        if (ok) {
            ret->status = DROVER_DRIVER_TYPES_STATUS_SUCCESS;
            string_printf(&ret->message, "GET %.*s -> %u in %lu ms", S(*url), status, ms);
        } else if (cfg.expect) {
            fail(ret, "GET %.*s: expected %u, got %u", S(*url), cfg.expect, status);
        } else {
            fail(ret, "GET %.*s: expected 2xx, got %u", S(*url), status);
        }
    }
    drover_driver_exec_exit_status_free(&st);
}

void exports_driver_run(driver_task_t *task, driver_outcome_t *ret) {
    memset(ret, 0, sizeof *ret);
    check(task, ret);
    driver_task_free(task);
}
