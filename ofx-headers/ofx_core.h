/*
 * GenClip's declaration of the OpenFX core API (specification 1.4, plus the 1.5 bootstrapper).
 * Written for this project from the specification's facts: names, string values, member order
 * and signatures. Everything below is what the ABI fixes; comments are ours.
 */
#ifndef GENCLIP_OFX_CORE_H
#define GENCLIP_OFX_CORE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handles: the host owns what they point at. */
typedef struct OfxPropertySetStruct *OfxPropertySetHandle;

/* Every suite function and action answers with one of the kOfxStat* codes below. */
typedef int OfxStatus;

/* Times are in frames, as doubles (fields and retiming make fractions legal). */
typedef double OfxTime;

typedef struct OfxRangeI { int min; int max; } OfxRangeI;
typedef struct OfxRangeD { double min; double max; } OfxRangeD;
typedef struct OfxPointI { int x; int y; } OfxPointI;
typedef struct OfxPointD { double x; double y; } OfxPointD;
typedef struct OfxRectI { int x1; int y1; int x2; int y2; } OfxRectI;
typedef struct OfxRectD { double x1; double y1; double x2; double y2; } OfxRectD;

/* What the host hands each plugin: its own property set and the way to ask for suites. */
typedef struct OfxHost {
    OfxPropertySetHandle host;
    const void *(*fetchSuite)(OfxPropertySetHandle host, const char *suiteName, int suiteVersion);
} OfxHost;

/* The single entry point through which the host sends every action. */
typedef OfxStatus(OfxPluginEntryPoint)(const char *action,
                                       const void *handle,
                                       OfxPropertySetHandle inArgs,
                                       OfxPropertySetHandle outArgs);

/* One plugin of a binary, as OfxGetPlugin returns it. */
typedef struct OfxPlugin {
    const char *pluginApi;
    int apiVersion;
    const char *pluginIdentifier;
    unsigned int pluginVersionMajor;
    unsigned int pluginVersionMinor;
    void (*setHost)(OfxHost *host);
    OfxPluginEntryPoint *mainEntry;
} OfxPlugin;

/* The symbols a plugin binary exports. OfxSetHost is the optional 1.5 bootstrapper. */
int OfxGetNumberOfPlugins(void);
OfxPlugin *OfxGetPlugin(int nth);
OfxStatus OfxSetHost(const OfxHost *host);

/* Actions, change reasons, bit depths, core properties and status codes. */
#define kOfxActionBeginInstanceChanged "OfxActionBeginInstanceChanged"
#define kOfxActionBeginInstanceEdit    "OfxActionBeginInstanceEdit"
#define kOfxActionCreateInstance       "OfxActionCreateInstance"
#define kOfxActionDescribe             "OfxActionDescribe"
#define kOfxActionDestroyInstance      "OfxActionDestroyInstance"
#define kOfxActionEndInstanceChanged   "OfxActionEndInstanceChanged"
#define kOfxActionEndInstanceEdit      "OfxActionEndInstanceEdit"
#define kOfxActionInstanceChanged      "OfxActionInstanceChanged"
#define kOfxActionLoad                 "OfxActionLoad"
#define kOfxActionPurgeCaches          "OfxActionPurgeCaches"
#define kOfxActionSyncPrivateData      "OfxActionSyncPrivateData"
#define kOfxActionUnload               "OfxActionUnload"
#define kOfxBitDepthByte               "OfxBitDepthByte"
#define kOfxBitDepthFloat              "OfxBitDepthFloat"
#define kOfxBitDepthHalf               "OfxBitDepthHalf"
#define kOfxBitDepthNone               "OfxBitDepthNone"
#define kOfxBitDepthShort              "OfxBitDepthShort"
#define kOfxChangePluginEdited         "OfxChangePluginEdited"
#define kOfxChangeTime                 "OfxChangeTime"
#define kOfxChangeUserEdited           "OfxChangeUserEdited"
#define kOfxPluginPropFilePath         "OfxPluginPropFilePath"
#define kOfxPropAPIVersion             "OfxPropAPIVersion"
#define kOfxPropChangeReason           "OfxPropChangeReason"
#define kOfxPropEffectInstance         "OfxPropEffectInstance"
#define kOfxPropHostOSHandle           "OfxPropHostOSHandle"
#define kOfxPropIcon                   "OfxPropIcon"
#define kOfxPropInstanceData           "OfxPropInstanceData"
#define kOfxPropIsInteractive          "OfxPropIsInteractive"
#define kOfxPropLabel                  "OfxPropLabel"
#define kOfxPropLongLabel              "OfxPropLongLabel"
#define kOfxPropName                   "OfxPropName"
#define kOfxPropPluginDescription      "OfxPropPluginDescription"
#define kOfxPropShortLabel             "OfxPropShortLabel"
#define kOfxPropTime                   "OfxPropTime"
#define kOfxPropType                   "OfxPropType"
#define kOfxPropVersion                "OfxPropVersion"
#define kOfxPropVersionLabel           "OfxPropVersionLabel"
#define kOfxStatErrBadHandle           9
#define kOfxStatErrBadIndex            10
#define kOfxStatErrExists              6
#define kOfxStatErrFatal               2
#define kOfxStatErrFormat              7
#define kOfxStatErrMemory              8
#define kOfxStatErrMissingHostFeature  4
#define kOfxStatErrUnknown             3
#define kOfxStatErrUnsupported         5
#define kOfxStatErrValue               11
#define kOfxStatFailed                 1
#define kOfxStatOK                     0
#define kOfxStatReplyDefault           14
#define kOfxStatReplyNo                13
#define kOfxStatReplyYes               12
#define kOfxStatUnlicensed             15

#ifdef __cplusplus
}
#endif
#endif /* GENCLIP_OFX_CORE_H */
