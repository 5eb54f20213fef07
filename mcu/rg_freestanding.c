/* The library functions the exported integer kernels call besides
 * memcpy/memset: rg_fail, which records a failed parameter check, and
 * rg_error_prefix, which adds context to it. On a microcontroller there is
 * no printf, so the message is the format string itself (it names the op
 * and the field) and a prefix is dropped; the code is what model_invoke
 * reports. The host library's versions (src/core/status.c) format them. */
#include "regain/status.h"

rg_status rg_fail(rg_error *err, rg_status code, const char *fmt, ...)
{
    if (err) {
        size_t i = 0;
        for (; fmt && fmt[i] && i + 1 < RG_ERR_MSG_MAX; i++) err->msg[i] = fmt[i];
        err->msg[i] = 0;
        err->code = code;
    }
    return code;
}

rg_status rg_error_prefix(rg_error *err, const char *fmt, ...)
{
    (void)fmt;
    return err ? err->code : RG_ERR_ARG;
}
