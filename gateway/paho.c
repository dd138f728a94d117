/* Loads libpaho-mqtt3a or libpaho-mqtt3as with dlopen (see paho.h). RTLD_LOCAL keeps the two
 * copies apart should one process ever load both. */
#include "paho.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static gw_paho apis[2];
static bool loaded[2];

static int load(gw_paho *a, const char *lib, char *err, size_t errlen) {
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "cannot load %s (%s): install the package libpaho-mqtt1.3", lib,
                 dlerror());
        return -1;
    }
    /* The assignment through *(void **)& is the form POSIX gives for dlsym. */
#define GW_PAHO_LOAD(field, fn)                                                                    \
    *(void **)&a->field = dlsym(h, #fn);                                                           \
    if (a->field == NULL) {                                                                        \
        snprintf(err, errlen, "%s has no function %s: paho-mqtt-c 1.3.9 or later is needed", lib,  \
                 #fn);                                                                             \
        dlclose(h);                                                                                \
        return -1;                                                                                 \
    }
    GW_PAHO_FUNCS(GW_PAHO_LOAD)
#undef GW_PAHO_LOAD
    a->library = lib;
    return 0;
}

const gw_paho *gw_paho_load(bool tls, char *err, size_t errlen) {
    int k = tls ? 1 : 0;
    const gw_paho *out = NULL;
    pthread_mutex_lock(&load_mu);
    if (loaded[k] ||
        load(&apis[k], tls ? "libpaho-mqtt3as.so.1" : "libpaho-mqtt3a.so.1", err, errlen) == 0) {
        loaded[k] = true;
        out = &apis[k];
    }
    pthread_mutex_unlock(&load_mu);
    return out;
}
