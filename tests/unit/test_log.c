#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* Captures stderr into a temporary file while fn runs; returns what was written. */
static char *capture(void (*fn)(void)) {
    char path[] = "/tmp/iotgw-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char buf[65536];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void log_levels(void) {
    gw_log_set_level(GW_LOG_WARN);
    GW_INFO("t", "hidden %d", 1);
    GW_WARN("t", "shown %d", 2);
    GW_ERROR("stage", "also shown");
    gw_log_set_level(GW_LOG_INFO);
}

static void test_levels_and_format(void **state) {
    (void)state;
    char *out = capture(log_levels);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "WARN  t: shown 2\n"));
    assert_non_null(strstr(out, "ERROR stage: also shown\n"));
    assert_int_equal(count_lines(out), 2);
    /* Lines start with an RFC 3339 UTC time stamp. */
    assert_true(out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
    assert_int_equal(gw_log_set_level_name("debug"), 0);
    assert_int_equal(gw_log_get_level(), GW_LOG_DEBUG);
    assert_int_equal(gw_log_set_level_name("loud"), -1);
    gw_log_set_level(GW_LOG_INFO);
}

static void burst(void) {
    gw_ratelimit rl = GW_RATELIMIT_INIT;
    rl.burst = 3;
    rl.period_ms = 3600 * 1000;
    for (int i = 0; i < 100; i++) {
        gw_log_limited(&rl, GW_LOG_WARN, "decode", "bad message %d", i);
    }
    /* The next period reports how many were held back. */
    rl.window_start_ms = gw_mono_ms() - rl.period_ms - 1;
    gw_log_limited(&rl, GW_LOG_WARN, "decode", "bad message again");
}

static void test_rate_limit_counts_suppressed(void **state) {
    (void)state;
    char *out = capture(burst);
    assert_int_equal(count_lines(out), 4);
    assert_non_null(strstr(out, "bad message 2\n"));
    assert_null(strstr(out, "bad message 3\n"));
    assert_non_null(strstr(out, "bad message again (97 similar suppressed)\n"));
}

static void long_line(void) {
    char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    GW_WARN("t", "%s", big);
}

static void test_long_lines_are_cut_not_overflowed(void **state) {
    (void)state;
    char *out = capture(long_line);
    assert_int_equal(count_lines(out), 1);
    assert_true(strlen(out) <= 1024);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_format),
        cmocka_unit_test(test_rate_limit_counts_suppressed),
        cmocka_unit_test(test_long_lines_are_cut_not_overflowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
