/* GenClip's declaration of the OpenFX image effect API: contexts, clips, images, actions,
 * the image effect suite (version 1), with its abort poll and image memory calls. */
#ifndef GENCLIP_OFX_IMAGE_EFFECT_H
#define GENCLIP_OFX_IMAGE_EFFECT_H

#include "ofx_core.h"
#include "ofx_param.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct OfxImageEffectStruct *OfxImageEffectHandle;
typedef struct OfxImageClipStruct *OfxImageClipHandle;
typedef struct OfxImageMemoryStruct *OfxImageMemoryHandle;

#define kOfxHostNativeOriginBottomLeft                  "kOfxImageEffectHostPropNativeOriginBottomLeft"
#define kOfxHostNativeOriginCenter                      "kOfxImageEffectHostPropNativeOriginCenter"
#define kOfxHostNativeOriginTopLeft                     "kOfxImageEffectHostPropNativeOriginTopLeft"
#define kOfxImageClipPropConnected                      "OfxImageClipPropConnected"
#define kOfxImageClipPropContinuousSamples              "OfxImageClipPropContinuousSamples"
#define kOfxImageClipPropFieldExtraction                "OfxImageClipPropFieldExtraction"
#define kOfxImageClipPropFieldOrder                     "OfxImageClipPropFieldOrder"
#define kOfxImageClipPropIsMask                         "OfxImageClipPropIsMask"
#define kOfxImageClipPropOptional                       "OfxImageClipPropOptional"
#define kOfxImageClipPropUnmappedComponents             "OfxImageClipPropUnmappedComponents"
#define kOfxImageClipPropUnmappedPixelDepth             "OfxImageClipPropUnmappedPixelDepth"
#define kOfxImageComponentAlpha                         "OfxImageComponentAlpha"
#define kOfxImageComponentNone                          "OfxImageComponentNone"
#define kOfxImageComponentRGB                           "OfxImageComponentRGB"
#define kOfxImageComponentRGBA                          "OfxImageComponentRGBA"
#define kOfxImageEffectActionBeginSequenceRender        "OfxImageEffectActionBeginSequenceRender"
#define kOfxImageEffectActionDescribeInContext          "OfxImageEffectActionDescribeInContext"
#define kOfxImageEffectActionEndSequenceRender          "OfxImageEffectActionEndSequenceRender"
#define kOfxImageEffectActionGetClipPreferences         "OfxImageEffectActionGetClipPreferences"
#define kOfxImageEffectActionGetFramesNeeded            "OfxImageEffectActionGetFramesNeeded"
#define kOfxImageEffectActionGetRegionOfDefinition      "OfxImageEffectActionGetRegionOfDefinition"
#define kOfxImageEffectActionGetRegionsOfInterest       "OfxImageEffectActionGetRegionsOfInterest"
#define kOfxImageEffectActionGetTimeDomain              "OfxImageEffectActionGetTimeDomain"
#define kOfxImageEffectActionIsIdentity                 "OfxImageEffectActionIsIdentity"
#define kOfxImageEffectActionRender                     "OfxImageEffectActionRender"
#define kOfxImageEffectContextFilter                    "OfxImageEffectContextFilter"
#define kOfxImageEffectContextGeneral                   "OfxImageEffectContextGeneral"
#define kOfxImageEffectContextGenerator                 "OfxImageEffectContextGenerator"
#define kOfxImageEffectContextPaint                     "OfxImageEffectContextPaint"
#define kOfxImageEffectContextRetimer                   "OfxImageEffectContextRetimer"
#define kOfxImageEffectContextTransition                "OfxImageEffectContextTransition"
#define kOfxImageEffectFrameVarying                     "OfxImageEffectFrameVarying"
#define kOfxImageEffectHostPropIsBackground             "OfxImageEffectHostPropIsBackground"
#define kOfxImageEffectHostPropNativeOrigin             "OfxImageEffectHostPropNativeOrigin"
#define kOfxImageEffectInstancePropEffectDuration       "OfxImageEffectInstancePropEffectDuration"
#define kOfxImageEffectInstancePropSequentialRender     "OfxImageEffectInstancePropSequentialRender"
#define kOfxImageEffectOutputClipName                   "Output"
#define kOfxImageEffectPluginApi                        "OfxImageEffectPluginAPI"
#define kOfxImageEffectPluginApiVersion                 1
#define kOfxImageEffectPluginPropFieldRenderTwiceAlways "OfxImageEffectPluginPropFieldRenderTwiceAlways"
#define kOfxImageEffectPluginPropGrouping               "OfxImageEffectPluginPropGrouping"
#define kOfxImageEffectPluginPropHostFrameThreading     "OfxImageEffectPluginPropHostFrameThreading"
#define kOfxImageEffectPluginPropObsolete               "OfxImageEffectPluginPropObsolete"
#define kOfxImageEffectPluginPropOverlayInteractV1      "OfxImageEffectPluginPropOverlayInteractV1"
#define kOfxImageEffectPluginPropOverlayInteractV2      "OfxImageEffectPluginPropOverlayInteractV2"
#define kOfxImageEffectPluginPropSingleInstance         "OfxImageEffectPluginPropSingleInstance"
#define kOfxImageEffectPluginRenderThreadSafety         "OfxImageEffectPluginRenderThreadSafety"
#define kOfxImageEffectPropBehaviourWhenUnlicensed      "OfxImageEffectPropBehaviourWhenUnlicensed"
#define kOfxImageEffectPropClipPreferencesSlaveParam    "OfxImageEffectPropClipPreferencesSlaveParam"
#define kOfxImageEffectPropComponents                   "OfxImageEffectPropComponents"
#define kOfxImageEffectPropContext                      "OfxImageEffectPropContext"
#define kOfxImageEffectPropFieldToRender                "OfxImageEffectPropFieldToRender"
#define kOfxImageEffectPropFrameRange                   "OfxImageEffectPropFrameRange"
#define kOfxImageEffectPropFrameRate                    "OfxImageEffectPropFrameRate"
#define kOfxImageEffectPropFrameStep                    "OfxImageEffectPropFrameStep"
#define kOfxImageEffectPropInteractiveRenderStatus      "OfxImageEffectPropInteractiveRenderStatus"
#define kOfxImageEffectPropNoSpatialAwareness           "OfxImageEffectPropNoSpatialAwareness"
#define kOfxImageEffectPropPixelDepth                   "OfxImageEffectPropPixelDepth"
#define kOfxImageEffectPropPluginHandle                 "OfxImageEffectPropPluginHandle"
#define kOfxImageEffectPropPreMultiplication            "OfxImageEffectPropPreMultiplication"
#define kOfxImageEffectPropProjectExtent                "OfxImageEffectPropProjectExtent"
#define kOfxImageEffectPropProjectOffset                "OfxImageEffectPropProjectOffset"
#define kOfxImageEffectPropProjectPixelAspectRatio      "OfxImageEffectPropPixelAspectRatio"
#define kOfxImageEffectPropProjectSize                  "OfxImageEffectPropProjectSize"
#define kOfxImageEffectPropRegionOfDefinition           "OfxImageEffectPropRegionOfDefinition"
#define kOfxImageEffectPropRegionOfInterest             "OfxImageEffectPropRegionOfInterest"
#define kOfxImageEffectPropRenderQualityDraft           "OfxImageEffectPropRenderQualityDraft"
#define kOfxImageEffectPropRenderScale                  "OfxImageEffectPropRenderScale"
#define kOfxImageEffectPropRenderWindow                 "OfxImageEffectPropRenderWindow"
#define kOfxImageEffectPropSequentialRenderStatus       "OfxImageEffectPropSequentialRenderStatus"
#define kOfxImageEffectPropSetableFielding              "OfxImageEffectPropSetableFielding"
#define kOfxImageEffectPropSetableFrameRate             "OfxImageEffectPropSetableFrameRate"
#define kOfxImageEffectPropSupportedComponents          "OfxImageEffectPropSupportedComponents"
#define kOfxImageEffectPropSupportedContexts            "OfxImageEffectPropSupportedContexts"
#define kOfxImageEffectPropSupportedPixelDepths         "OfxImageEffectPropSupportedPixelDepths"
#define kOfxImageEffectPropSupportsMultiResolution      "OfxImageEffectPropSupportsMultiResolution"
#define kOfxImageEffectPropSupportsMultipleClipDepths   "OfxImageEffectPropMultipleClipDepths"
#define kOfxImageEffectPropSupportsMultipleClipPARs     "OfxImageEffectPropSupportsMultipleClipPARs"
#define kOfxImageEffectPropSupportsOverlays             "OfxImageEffectPropSupportsOverlays"
#define kOfxImageEffectPropSupportsTiles                "OfxImageEffectPropSupportsTiles"
#define kOfxImageEffectPropTemporalClipAccess           "OfxImageEffectPropTemporalClipAccess"
#define kOfxImageEffectPropThumbnailRender              "OfxImageEffectPropThumbnailRender"
#define kOfxImageEffectPropUnmappedFrameRange           "OfxImageEffectPropUnmappedFrameRange"
#define kOfxImageEffectPropUnmappedFrameRate            "OfxImageEffectPropUnmappedFrameRate"
#define kOfxImageEffectRenderFullySafe                  "OfxImageEffectRenderFullySafe"
#define kOfxImageEffectRenderInstanceSafe               "OfxImageEffectRenderInstanceSafe"
#define kOfxImageEffectRenderUnsafe                     "OfxImageEffectRenderUnsafe"
#define kOfxImageEffectRetimerParamName                 "SourceTime"
#define kOfxImageEffectSimpleSourceClipName             "Source"
#define kOfxImageEffectSuite                            "OfxImageEffectSuite"
#define kOfxImageEffectTransitionParamName              "Transition"
#define kOfxImageEffectTransitionSourceFromClipName     "SourceFrom"
#define kOfxImageEffectTransitionSourceToClipName       "SourceTo"
#define kOfxImageFieldBoth                              "OfxFieldBoth"
#define kOfxImageFieldDoubled                           "OfxFieldDoubled"
#define kOfxImageFieldLower                             "OfxFieldLower"
#define kOfxImageFieldNone                              "OfxFieldNone"
#define kOfxImageFieldSingle                            "OfxFieldSingle"
#define kOfxImageFieldUpper                             "OfxFieldUpper"
#define kOfxImageOpaque                                 "OfxImageOpaque"
#define kOfxImagePreMultiplied                          "OfxImageAlphaPremultiplied"
#define kOfxImagePropBounds                             "OfxImagePropBounds"
#define kOfxImagePropData                               "OfxImagePropData"
#define kOfxImagePropField                              "OfxImagePropField"
#define kOfxImagePropPixelAspectRatio                   "OfxImagePropPixelAspectRatio"
#define kOfxImagePropRegionOfDefinition                 "OfxImagePropRegionOfDefinition"
#define kOfxImagePropRowBytes                           "OfxImagePropRowBytes"
#define kOfxImagePropUniqueIdentifier                   "OfxImagePropUniqueIdentifier"
#define kOfxImageUnPreMultiplied                        "OfxImageAlphaUnPremultiplied"
#define kOfxStatErrImageFormat                          1000
#define kOfxTypeClip                                    "OfxTypeClip"
#define kOfxTypeImage                                   "OfxTypeImage"
#define kOfxTypeImageEffect                             "OfxTypeImageEffect"
#define kOfxTypeImageEffectHost                         "OfxTypeImageEffectHost"
#define kOfxTypeImageEffectInstance                     "OfxTypeImageEffectInstance"
#define kOfxUnlicensedContinue                          "OfxUnlicensedContinue"
#define kOfxUnlicensedFail                              "OfxUnlicensedFail"

typedef struct OfxImageEffectSuiteV1 {
    OfxStatus (*getPropertySet)(OfxImageEffectHandle imageEffect, OfxPropertySetHandle *propHandle);
    OfxStatus (*getParamSet)(OfxImageEffectHandle imageEffect, OfxParamSetHandle *paramSet);
    OfxStatus (*clipDefine)(OfxImageEffectHandle imageEffect, const char *name, OfxPropertySetHandle *propertySet);
    OfxStatus (*clipGetHandle)(OfxImageEffectHandle imageEffect, const char *name, OfxImageClipHandle *clip, OfxPropertySetHandle *propertySet);
    OfxStatus (*clipGetPropertySet)(OfxImageClipHandle clip, OfxPropertySetHandle *propHandle);
    OfxStatus (*clipGetImage)(OfxImageClipHandle clip, OfxTime time, const OfxRectD *region, OfxPropertySetHandle *imageHandle);
    OfxStatus (*clipReleaseImage)(OfxPropertySetHandle imageHandle);
    OfxStatus (*clipGetRegionOfDefinition)(OfxImageClipHandle clip, OfxTime time, OfxRectD *bounds);
    /* Non-zero when the host wants the current action stopped. */
    int (*abort)(OfxImageEffectHandle imageEffect);
    OfxStatus (*imageMemoryAlloc)(OfxImageEffectHandle instanceHandle, size_t nBytes, OfxImageMemoryHandle *memoryHandle);
    OfxStatus (*imageMemoryFree)(OfxImageMemoryHandle memoryHandle);
    OfxStatus (*imageMemoryLock)(OfxImageMemoryHandle memoryHandle, void **returnedPtr);
    OfxStatus (*imageMemoryUnlock)(OfxImageMemoryHandle memoryHandle);
} OfxImageEffectSuiteV1;

#ifdef __cplusplus
}
#endif
#endif /* GENCLIP_OFX_IMAGE_EFFECT_H */
