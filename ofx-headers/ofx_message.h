/* GenClip's declaration of the OpenFX message suite, versions 1 and 2 (same suite name). */
#ifndef GENCLIP_OFX_MESSAGE_H
#define GENCLIP_OFX_MESSAGE_H

#include "ofx_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define kOfxMessageError    "OfxMessageError"
#define kOfxMessageFatal    "OfxMessageFatal"
#define kOfxMessageLog      "OfxMessageLog"
#define kOfxMessageMessage  "OfxMessageMessage"
#define kOfxMessageQuestion "OfxMessageQuestion"
#define kOfxMessageSuite    "OfxMessageSuite"
#define kOfxMessageWarning  "OfxMessageWarning"

/* format is printf-like; GenClip itself always passes "%s" and one string. */
typedef struct OfxMessageSuiteV1 {
    OfxStatus (*message)(void *handle, const char *messageType, const char *messageId, const char *format, ...);
} OfxMessageSuiteV1;

/* Version 2 adds a message that stays on the effect until cleared. */
typedef struct OfxMessageSuiteV2 {
    OfxStatus (*message)(void *handle, const char *messageType, const char *messageId, const char *format, ...);
    OfxStatus (*setPersistentMessage)(void *handle, const char *messageType, const char *messageId, const char *format, ...);
    OfxStatus (*clearPersistentMessage)(void *handle);
} OfxMessageSuiteV2;

#ifdef __cplusplus
}
#endif
#endif /* GENCLIP_OFX_MESSAGE_H */
