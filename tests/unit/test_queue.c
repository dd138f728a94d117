#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>

#include "queue.h"

static void test_fifo_and_stats(void **state) {
    (void)state;
    gw_queue *q;
    assert_int_equal(gw_queue_new(&q, "t", 4, 1000), 0);
    int v[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(gw_queue_push(q, &v[i], 10, 0), 0);
    }
    /* Full by count: a zero timeout fails at once, and counts a wait only when it blocks. */
    assert_int_equal(gw_queue_push(q, &v[0], 10, 0), GW_ETIMEDOUT);
    assert_int_equal(gw_queue_push(q, &v[0], 10, 5), GW_ETIMEDOUT);
    gw_queue_stats st;
    gw_queue_stats_get(q, &st);
    assert_int_equal(st.depth, 4);
    assert_int_equal(st.bytes, 40);
    assert_int_equal(st.hwm, 4);
    assert_int_equal(st.pushes, 4);
    assert_int_equal(st.waits, 1);
    void *out[8];
    size_t sz[8];
    assert_int_equal(gw_queue_pop(q, out, sz, 3, 0), 3);
    assert_ptr_equal(out[0], &v[0]);
    assert_ptr_equal(out[2], &v[2]);
    assert_int_equal(sz[1], 10);
    assert_int_equal(gw_queue_pop(q, out, NULL, 8, 0), 1);
    assert_ptr_equal(out[0], &v[3]);
    assert_int_equal(gw_queue_pop(q, out, NULL, 8, 1), 0);
    gw_queue_count_drop(q);
    gw_queue_stats_get(q, &st);
    assert_int_equal(st.drops, 1);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.bytes, 0);
    gw_queue_free(q);
}

static void test_byte_bound(void **state) {
    (void)state;
    gw_queue *q;
    assert_int_equal(gw_queue_new(&q, "t", 100, 100), 0);
    int a, b, c;
    /* An oversized item still enters an empty queue. */
    assert_int_equal(gw_queue_push(q, &a, 500, 0), 0);
    assert_int_equal(gw_queue_push(q, &b, 1, 0), GW_ETIMEDOUT);
    void *out[2];
    assert_int_equal(gw_queue_pop(q, out, NULL, 2, 0), 1);
    assert_int_equal(gw_queue_push(q, &b, 60, 0), 0);
    assert_int_equal(gw_queue_push(q, &c, 41, 0), GW_ETIMEDOUT);
    assert_int_equal(gw_queue_push(q, &c, 40, 0), 0);
    assert_ptr_equal(gw_queue_steal_oldest(q, NULL), &b);
    assert_ptr_equal(gw_queue_steal_oldest(q, NULL), &c);
    assert_null(gw_queue_steal_oldest(q, NULL));
    gw_queue_free(q);
}

static void test_close_drains(void **state) {
    (void)state;
    gw_queue *q;
    assert_int_equal(gw_queue_new(&q, "t", 4, 1000), 0);
    int a;
    assert_int_equal(gw_queue_push(q, &a, 1, 0), 0);
    gw_queue_close(q);
    assert_true(gw_queue_is_closed(q));
    assert_int_equal(gw_queue_push(q, &a, 1, -1), GW_ECLOSED);
    void *out[2];
    assert_int_equal(gw_queue_pop(q, out, NULL, 2, -1), 1);
    assert_int_equal(gw_queue_pop(q, out, NULL, 2, -1), 0);
    gw_queue_free(q);
}

/* A lazy push still delivers: a polling consumer finds the items, in order. */
static void test_lazy_push_delivers(void **state) {
    (void)state;
    gw_queue *q;
    assert_int_equal(gw_queue_new(&q, "t", 8, 1000), 0);
    int v[3];
    assert_int_equal(gw_queue_push_lazy(q, &v[0], 1, 0, false), 0);
    assert_int_equal(gw_queue_push_lazy(q, &v[1], 1, 0, true), 0);
    assert_int_equal(gw_queue_push_lazy(q, &v[2], 1, 0, false), 0);
    void *out[4];
    assert_int_equal(gw_queue_pop(q, out, NULL, 4, 10), 3);
    assert_ptr_equal(out[0], &v[0]);
    assert_ptr_equal(out[2], &v[2]);
    gw_queue_free(q);
}

enum { N_ITEMS = 200000, N_PRODUCERS = 3 };

static void *producer(void *arg) {
    gw_queue *q = arg;
    for (uintptr_t i = 1; i <= N_ITEMS; i++) {
        int rc = gw_queue_push(q, (void *)i, 8, -1);
        if (rc != 0) {
            return (void *)1;
        }
    }
    return NULL;
}

/* Several producers and one consumer through a small queue: every item arrives once and each
 * producer's items stay in order. */
static void test_threads_blocking(void **state) {
    (void)state;
    gw_queue *q;
    assert_int_equal(gw_queue_new(&q, "t", 16, 64), 0);
    pthread_t th[N_PRODUCERS];
    for (int i = 0; i < N_PRODUCERS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, producer, q), 0);
    }
    uint64_t sum = 0, count = 0;
    void *out[32];
    while (count < (uint64_t)N_ITEMS * N_PRODUCERS) {
        size_t n = gw_queue_pop(q, out, NULL, 32, -1);
        for (size_t i = 0; i < n; i++) {
            sum += (uintptr_t)out[i];
        }
        count += n;
    }
    for (int i = 0; i < N_PRODUCERS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(sum, (uint64_t)N_PRODUCERS * N_ITEMS * (N_ITEMS + 1) / 2);
    gw_queue_stats st;
    gw_queue_stats_get(q, &st);
    assert_true(st.hwm <= 16);
    assert_true(st.waits > 0);
    gw_queue_free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_stats),   cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_close_drains),     cmocka_unit_test(test_lazy_push_delivers),
        cmocka_unit_test(test_threads_blocking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
