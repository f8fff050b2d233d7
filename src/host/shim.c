/*
 * The C-variadic functions of GenClip's headless host.
 *
 * The parameter suite's value functions and the message suite's message functions take
 * `...`; stable Rust can call such functions but cannot define them. Each function here
 * asks Rust how many arguments of which type the parameter takes, pulls exactly those from
 * the va_list, and hands them to a plain Rust function (src/host/params.rs, suites.rs).
 *
 * Rust is reached through a table of function pointers it installs (src/host/shim.rs), and
 * every symbol here is hidden: the plugin binary links the same crate and must export
 * nothing but the OpenFX entry points.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ofx.h"

#define SHIM __attribute__((visibility("hidden")))

/* Value kinds and get modes; keep in step with params.rs. */
enum { KIND_BAD = -1, KIND_NONE = 0, KIND_INT = 1, KIND_DOUBLE = 2, KIND_STRING = 3 };
enum { GET_VALUE = 0, GET_AT_TIME = 1, GET_DERIVATIVE = 2, GET_INTEGRAL = 3 };
#define MAX_COMPONENTS 4

/* Values of a set call; layout shared with ShimValues in params.rs. */
typedef struct genclip_shim_values {
    int ints[MAX_COMPONENTS];
    double doubles[MAX_COMPONENTS];
    const char *string;
} genclip_shim_values;

/* Implemented in Rust; layout shared with Callbacks in shim.rs. */
typedef struct genclip_shim_callbacks {
    int (*param_kind)(OfxParamHandle h, int *count);
    OfxStatus (*param_get)(OfxParamHandle h, int mode, double t1, double t2, void *const *outs, int n);
    OfxStatus (*param_set)(OfxParamHandle h, int at_time, double t, const genclip_shim_values *values);
    OfxStatus (*message)(void *handle, const char *type, const char *id, const char *text, int persistent);
} genclip_shim_callbacks;

static const genclip_shim_callbacks *callbacks;

SHIM void genclip_shim_install(const genclip_shim_callbacks *table)
{
    __atomic_store_n(&callbacks, table, __ATOMIC_RELEASE);
}

static const genclip_shim_callbacks *rust(void)
{
    return __atomic_load_n(&callbacks, __ATOMIC_ACQUIRE);
}

/* Pulls one pointer per component and reads the value into them. */
static OfxStatus param_get(OfxParamHandle h, int mode, double t1, double t2, va_list ap)
{
    const genclip_shim_callbacks *cb = rust();
    int count = 0;
    int kind;
    void *outs[MAX_COMPONENTS] = {0};
    int i;

    if (cb == NULL) {
        return kOfxStatErrUnknown;
    }
    kind = cb->param_kind(h, &count);
    if (kind == KIND_BAD) {
        return kOfxStatErrBadHandle;
    }
    if (count < 0 || count > MAX_COMPONENTS) {
        return kOfxStatErrUnknown;
    }
    for (i = 0; i < count; ++i) {
        outs[i] = va_arg(ap, void *);
    }
    return cb->param_get(h, mode, t1, t2, outs, count);
}

/* Pulls one value per component, of the type the C calling convention promotes it to. */
static OfxStatus param_set(OfxParamHandle h, int at_time, double t, va_list ap)
{
    const genclip_shim_callbacks *cb = rust();
    int count = 0;
    int kind;
    genclip_shim_values values = {{0}, {0}, NULL};
    int i;

    if (cb == NULL) {
        return kOfxStatErrUnknown;
    }
    kind = cb->param_kind(h, &count);
    if (kind == KIND_BAD) {
        return kOfxStatErrBadHandle;
    }
    if (count < 0 || count > MAX_COMPONENTS) {
        return kOfxStatErrUnknown;
    }
    for (i = 0; i < count; ++i) {
        switch (kind) {
        case KIND_INT:
            values.ints[i] = va_arg(ap, int);
            break;
        case KIND_DOUBLE:
            values.doubles[i] = va_arg(ap, double);
            break;
        case KIND_STRING:
            values.string = va_arg(ap, const char *);
            break;
        default:
            break;
        }
    }
    return cb->param_set(h, at_time, t, &values);
}

SHIM OfxStatus genclip_shim_param_get_value(OfxParamHandle h, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, h);
    st = param_get(h, GET_VALUE, 0.0, 0.0, ap);
    va_end(ap);
    return st;
}

SHIM OfxStatus genclip_shim_param_get_value_at_time(OfxParamHandle h, OfxTime time, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, time);
    st = param_get(h, GET_AT_TIME, time, 0.0, ap);
    va_end(ap);
    return st;
}

SHIM OfxStatus genclip_shim_param_get_derivative(OfxParamHandle h, OfxTime time, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, time);
    st = param_get(h, GET_DERIVATIVE, time, 0.0, ap);
    va_end(ap);
    return st;
}

SHIM OfxStatus genclip_shim_param_get_integral(OfxParamHandle h, OfxTime time1, OfxTime time2, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, time2);
    st = param_get(h, GET_INTEGRAL, time1, time2, ap);
    va_end(ap);
    return st;
}

SHIM OfxStatus genclip_shim_param_set_value(OfxParamHandle h, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, h);
    st = param_set(h, 0, 0.0, ap);
    va_end(ap);
    return st;
}

SHIM OfxStatus genclip_shim_param_set_value_at_time(OfxParamHandle h, OfxTime time, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, time);
    st = param_set(h, 1, time, ap);
    va_end(ap);
    return st;
}

/* Formats a printf-style message and passes the text to Rust. */
static OfxStatus post(void *handle, const char *type, const char *id, const char *format, va_list ap, int persistent)
{
    const genclip_shim_callbacks *cb = rust();
    char small[256];
    char *text = small;
    va_list probe;
    int n;
    OfxStatus st;

    if (cb == NULL) {
        return kOfxStatErrUnknown;
    }
    if (format == NULL) {
        return cb->message(handle, type, id, NULL, persistent);
    }
    va_copy(probe, ap);
    n = vsnprintf(NULL, 0, format, probe);
    va_end(probe);
    if (n < 0) {
        return kOfxStatErrValue;
    }
    if ((size_t)n >= sizeof small) {
        text = malloc((size_t)n + 1);
        if (text == NULL) {
            return kOfxStatErrMemory;
        }
    }
    vsnprintf(text, (size_t)n + 1, format, ap);
    st = cb->message(handle, type, id, text, persistent);
    if (text != small) {
        free(text);
    }
    return st;
}

SHIM OfxStatus genclip_shim_message(void *handle, const char *type, const char *id, const char *format, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, format);
    st = post(handle, type, id, format, ap, 0);
    va_end(ap);
    return st;
}

SHIM OfxStatus genclip_shim_set_persistent_message(void *handle, const char *type, const char *id, const char *format, ...)
{
    va_list ap;
    OfxStatus st;
    va_start(ap, format);
    st = post(handle, type, id, format, ap, 1);
    va_end(ap);
    return st;
}
