/* GenClip's declaration of the OpenFX parameter suite (version 1) and parameter properties. */
#ifndef GENCLIP_OFX_PARAM_H
#define GENCLIP_OFX_PARAM_H

#include "ofx_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct OfxParamStruct *OfxParamHandle;
typedef struct OfxParamSetStruct *OfxParamSetHandle;

/* Parameter types, properties, string modes, double types and host capabilities. */
#define kOfxParamCoordinatesCanonical               "OfxParamCoordinatesCanonical"
#define kOfxParamCoordinatesNormalised              "OfxParamCoordinatesNormalised"
#define kOfxParamDoubleTypeAbsoluteTime             "OfxParamDoubleTypeAbsoluteTime"
#define kOfxParamDoubleTypeAngle                    "OfxParamDoubleTypeAngle"
#define kOfxParamDoubleTypePlain                    "OfxParamDoubleTypePlain"
#define kOfxParamDoubleTypeScale                    "OfxParamDoubleTypeScale"
#define kOfxParamDoubleTypeTime                     "OfxParamDoubleTypeTime"
#define kOfxParamDoubleTypeX                        "OfxParamDoubleTypeX"
#define kOfxParamDoubleTypeXAbsolute                "OfxParamDoubleTypeXAbsolute"
#define kOfxParamDoubleTypeXY                       "OfxParamDoubleTypeXY"
#define kOfxParamDoubleTypeXYAbsolute               "OfxParamDoubleTypeXYAbsolute"
#define kOfxParamDoubleTypeY                        "OfxParamDoubleTypeY"
#define kOfxParamDoubleTypeYAbsolute                "OfxParamDoubleTypeYAbsolute"
#define kOfxParamHostPropMaxPages                   "OfxParamHostPropMaxPages"
#define kOfxParamHostPropMaxParameters              "OfxParamHostPropMaxParameters"
#define kOfxParamHostPropPageRowColumnCount         "OfxParamHostPropPageRowColumnCount"
#define kOfxParamHostPropSupportsBooleanAnimation   "OfxParamHostPropSupportsBooleanAnimation"
#define kOfxParamHostPropSupportsChoiceAnimation    "OfxParamHostPropSupportsChoiceAnimation"
#define kOfxParamHostPropSupportsCustomAnimation    "OfxParamHostPropSupportsCustomAnimation"
#define kOfxParamHostPropSupportsCustomInteract     "OfxParamHostPropSupportsCustomInteract"
#define kOfxParamHostPropSupportsStrChoice          "OfxParamHostPropSupportsStrChoice"
#define kOfxParamHostPropSupportsStrChoiceAnimation "OfxParamHostPropSupportsStrChoiceAnimation"
#define kOfxParamHostPropSupportsStringAnimation    "OfxParamHostPropSupportsStringAnimation"
#define kOfxParamInterpType                         "OfxParamInterpType"
#define kOfxParamInterpTypeConstantStep             "OfxParamInterpTypeConstantStep"
#define kOfxParamInterpTypeLinear                   "OfxParamInterpTypeLinear"
#define kOfxParamInterpTypeSmooth                   "OfxParamInterpTypeSmooth"
#define kOfxParamInvalidateAll                      "OfxParamInvalidateAll"
#define kOfxParamInvalidateValueChange              "OfxParamInvalidateValueChange"
#define kOfxParamInvalidateValueChangeToEnd         "OfxParamInvalidateValueChangeToEnd"
#define kOfxParamPageSkipColumn                     "OfxParamPageSkipColumn"
#define kOfxParamPageSkipRow                        "OfxParamPageSkipRow"
#define kOfxParamPropAnimates                       "OfxParamPropAnimates"
#define kOfxParamPropCacheInvalidation              "OfxParamPropCacheInvalidation"
#define kOfxParamPropCanUndo                        "OfxParamPropCanUndo"
#define kOfxParamPropChoiceEnum                     "OfxParamPropChoiceEnum"
#define kOfxParamPropChoiceOption                   "OfxParamPropChoiceOption"
#define kOfxParamPropChoiceOrder                    "OfxParamPropChoiceOrder"
#define kOfxParamPropCustomInterpCallbackV1         "OfxParamPropCustomCallbackV1"
#define kOfxParamPropCustomValue                    "OfxParamPropCustomValue"
#define kOfxParamPropDataPtr                        "OfxParamPropDataPtr"
#define kOfxParamPropDefault                        "OfxParamPropDefault"
#define kOfxParamPropDefaultCoordinateSystem        "OfxParamPropDefaultCoordinateSystem"
#define kOfxParamPropDigits                         "OfxParamPropDigits"
#define kOfxParamPropDimensionLabel                 "OfxParamPropDimensionLabel"
#define kOfxParamPropDisplayMax                     "OfxParamPropDisplayMax"
#define kOfxParamPropDisplayMin                     "OfxParamPropDisplayMin"
#define kOfxParamPropDoubleType                     "OfxParamPropDoubleType"
#define kOfxParamPropEnabled                        "OfxParamPropEnabled"
#define kOfxParamPropEvaluateOnChange               "OfxParamPropEvaluateOnChange"
#define kOfxParamPropGroupOpen                      "OfxParamPropGroupOpen"
#define kOfxParamPropHasHostOverlayHandle           "OfxParamPropHasHostOverlayHandle"
#define kOfxParamPropHint                           "OfxParamPropHint"
#define kOfxParamPropIncrement                      "OfxParamPropIncrement"
#define kOfxParamPropInteractMinimumSize            "OfxParamPropInteractMinimumSize"
#define kOfxParamPropInteractPreferedSize           "OfxParamPropInteractPreferedSize"
#define kOfxParamPropInteractSize                   "OfxParamPropInteractSize"
#define kOfxParamPropInteractSizeAspect             "OfxParamPropInteractSizeAspect"
#define kOfxParamPropInteractV1                     "OfxParamPropInteractV1"
#define kOfxParamPropInterpolationAmount            "OfxParamPropInterpolationAmount"
#define kOfxParamPropInterpolationTime              "OfxParamPropInterpolationTime"
#define kOfxParamPropIsAnimating                    "OfxParamPropIsAnimating"
#define kOfxParamPropIsAutoKeying                   "OfxParamPropIsAutoKeying"
#define kOfxParamPropMax                            "OfxParamPropMax"
#define kOfxParamPropMin                            "OfxParamPropMin"
#define kOfxParamPropPageChild                      "OfxParamPropPageChild"
#define kOfxParamPropParent                         "OfxParamPropParent"
#define kOfxParamPropPersistant                     "OfxParamPropPersistant"
#define kOfxParamPropPluginMayWrite                 "OfxParamPropPluginMayWrite"
#define kOfxParamPropScriptName                     "OfxParamPropScriptName"
#define kOfxParamPropSecret                         "OfxParamPropSecret"
#define kOfxParamPropShowTimeMarker                 "OfxParamPropShowTimeMarker"
#define kOfxParamPropStringFilePathExists           "OfxParamPropStringFilePathExists"
#define kOfxParamPropStringMode                     "OfxParamPropStringMode"
#define kOfxParamPropType                           "OfxParamPropType"
#define kOfxParamPropUseHostOverlayHandle           "kOfxParamPropUseHostOverlayHandle"
#define kOfxParamStringIsDirectoryPath              "OfxParamStringIsDirectoryPath"
#define kOfxParamStringIsFilePath                   "OfxParamStringIsFilePath"
#define kOfxParamStringIsLabel                      "OfxParamStringIsLabel"
#define kOfxParamStringIsMultiLine                  "OfxParamStringIsMultiLine"
#define kOfxParamStringIsRichTextFormat             "OfxParamStringIsRichTextFormat"
#define kOfxParamStringIsSingleLine                 "OfxParamStringIsSingleLine"
#define kOfxParamTypeBoolean                        "OfxParamTypeBoolean"
#define kOfxParamTypeBytes                          "OfxParamTypeBytes"
#define kOfxParamTypeChoice                         "OfxParamTypeChoice"
#define kOfxParamTypeCustom                         "OfxParamTypeCustom"
#define kOfxParamTypeDouble                         "OfxParamTypeDouble"
#define kOfxParamTypeDouble2D                       "OfxParamTypeDouble2D"
#define kOfxParamTypeDouble3D                       "OfxParamTypeDouble3D"
#define kOfxParamTypeGroup                          "OfxParamTypeGroup"
#define kOfxParamTypeInteger                        "OfxParamTypeInteger"
#define kOfxParamTypeInteger2D                      "OfxParamTypeInteger2D"
#define kOfxParamTypeInteger3D                      "OfxParamTypeInteger3D"
#define kOfxParamTypePage                           "OfxParamTypePage"
#define kOfxParamTypePushButton                     "OfxParamTypePushButton"
#define kOfxParamTypeRGB                            "OfxParamTypeRGB"
#define kOfxParamTypeRGBA                           "OfxParamTypeRGBA"
#define kOfxParamTypeStrChoice                      "OfxParamTypeStrChoice"
#define kOfxParamTypeString                         "OfxParamTypeString"
#define kOfxParameterSuite                          "OfxParameterSuite"
#define kOfxPluginPropParamPageOrder                "OfxPluginPropParamPageOrder"
#define kOfxPropParamSetNeedsSyncing                "OfxPropParamSetNeedsSyncing"
#define kOfxTypeParameter                           "OfxTypeParameter"
#define kOfxTypeParameterInstance                   "OfxTypeParameterInstance"

/*
 * The value functions are C-variadic: after the handle (and time) come one pointer per
 * component to get, or one value per component to set (int for integer, boolean and choice
 * parameters, double for double ones, const char * for strings). Stable Rust can call such
 * functions but cannot define them, hence the host-side C shim in src/host/shim.c.
 */
typedef struct OfxParameterSuiteV1 {
    OfxStatus (*paramDefine)(OfxParamSetHandle paramSet, const char *paramType, const char *name, OfxPropertySetHandle *propertySet);
    OfxStatus (*paramGetHandle)(OfxParamSetHandle paramSet, const char *name, OfxParamHandle *param, OfxPropertySetHandle *propertySet);
    OfxStatus (*paramSetGetPropertySet)(OfxParamSetHandle paramSet, OfxPropertySetHandle *propHandle);
    OfxStatus (*paramGetPropertySet)(OfxParamHandle param, OfxPropertySetHandle *propHandle);
    OfxStatus (*paramGetValue)(OfxParamHandle paramHandle, ...);
    OfxStatus (*paramGetValueAtTime)(OfxParamHandle paramHandle, OfxTime time, ...);
    OfxStatus (*paramGetDerivative)(OfxParamHandle paramHandle, OfxTime time, ...);
    OfxStatus (*paramGetIntegral)(OfxParamHandle paramHandle, OfxTime time1, OfxTime time2, ...);
    OfxStatus (*paramSetValue)(OfxParamHandle paramHandle, ...);
    OfxStatus (*paramSetValueAtTime)(OfxParamHandle paramHandle, OfxTime time, ...);
    OfxStatus (*paramGetNumKeys)(OfxParamHandle paramHandle, unsigned int *numberOfKeys);
    OfxStatus (*paramGetKeyTime)(OfxParamHandle paramHandle, unsigned int nthKey, OfxTime *time);
    OfxStatus (*paramGetKeyIndex)(OfxParamHandle paramHandle, OfxTime time, int direction, int *index);
    OfxStatus (*paramDeleteKey)(OfxParamHandle paramHandle, OfxTime time);
    OfxStatus (*paramDeleteAllKeys)(OfxParamHandle paramHandle);
    OfxStatus (*paramCopy)(OfxParamHandle paramTo, OfxParamHandle paramFrom, OfxTime dstOffset, const OfxRangeD *frameRange);
    OfxStatus (*paramEditBegin)(OfxParamSetHandle paramSet, const char *name);
    OfxStatus (*paramEditEnd)(OfxParamSetHandle paramSet);
} OfxParameterSuiteV1;

#ifdef __cplusplus
}
#endif
#endif /* GENCLIP_OFX_PARAM_H */
