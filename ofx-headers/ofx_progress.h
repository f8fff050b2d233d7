/* GenClip's declaration of the OpenFX progress suite, versions 1 and 2 (same suite name). */
#ifndef GENCLIP_OFX_PROGRESS_H
#define GENCLIP_OFX_PROGRESS_H

#include "ofx_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define kOfxProgressSuite "OfxProgressSuite"

typedef struct OfxProgressSuiteV1 {
    OfxStatus (*progressStart)(void *effectInstance, const char *label);
    /* progress runs from 0 to 1; a reply of kOfxStatReplyNo asks the plugin to stop. */
    OfxStatus (*progressUpdate)(void *effectInstance, double progress);
    OfxStatus (*progressEnd)(void *effectInstance);
} OfxProgressSuiteV1;

/* Version 2 gives the progress a message id as well as its text. */
typedef struct OfxProgressSuiteV2 {
    OfxStatus (*progressStart)(void *effectInstance, const char *message, const char *messageid);
    OfxStatus (*progressUpdate)(void *effectInstance, double progress);
    OfxStatus (*progressEnd)(void *effectInstance);
} OfxProgressSuiteV2;

#ifdef __cplusplus
}
#endif
#endif /* GENCLIP_OFX_PROGRESS_H */
