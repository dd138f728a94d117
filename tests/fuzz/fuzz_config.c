/* libFuzzer target for the config parser: comments, JSON, every option table, durations,
 * rules and subscriptions, the topic map built from them.
 *
 * The input is the config text (not NUL-terminated: the parser must not need it). Besides
 * crashes and sanitizer reports, the target traps when a contract breaks: a return other than
 * 0 or -EINVAL, a failure without a message or with an unterminated one, counts beyond their
 * arrays, or a parsed config whose topic map cannot be built for a reason other than its
 * subscriptions.
 *
 * Build: CC=clang cmake -B build-fuzz -DIOTGW_FUZZ=ON -DIOTGW_SANITIZE=ON */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "topic.h"

static gw_config cfg; /* large (the rules array): not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, so that AddressSanitizer sees any read past the end. */
    char *text = malloc(size > 0 ? size : 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    char err[256];
    memset(err, 'x', sizeof(err));
    int rc = gw_config_parse(&cfg, text, size, err, sizeof(err));
    if (rc != 0) {
        size_t n = strnlen(err, sizeof(err));
        if (rc != -EINVAL || n == 0 || n == sizeof(err)) {
            __builtin_trap();
        }
    } else {
        if (cfg.n_subs > GW_TOPIC_MAX_SUBS || cfg.n_rules > GW_CFG_MAX_RULES) {
            __builtin_trap();
        }
        gw_topic_map *m = NULL;
        memset(err, 'x', sizeof(err));
        if (gw_config_topic_map(&cfg, &m, err, sizeof(err)) == 0) {
            gw_topic_map_free(m);
        } else if (strnlen(err, sizeof(err)) == sizeof(err)) {
            __builtin_trap();
        }
    }
    free(text);
    return 0;
}
