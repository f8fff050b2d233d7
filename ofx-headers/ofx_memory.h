/* GenClip's declaration of the OpenFX memory suite (version 1). */
#ifndef GENCLIP_OFX_MEMORY_H
#define GENCLIP_OFX_MEMORY_H

#include "ofx_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define kOfxMemorySuite "OfxMemorySuite"

typedef struct OfxMemorySuiteV1 {
    OfxStatus (*memoryAlloc)(void *handle, size_t nBytes, void **allocatedData);
    OfxStatus (*memoryFree)(void *allocatedData);
} OfxMemorySuiteV1;

#ifdef __cplusplus
}
#endif
#endif /* GENCLIP_OFX_MEMORY_H */
