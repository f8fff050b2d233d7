/* GenClip's declaration of the OpenFX 1.5 GPU render properties (OpenGL, CUDA, Metal, OpenCL):
 * names, value strings and status codes only, for the GPU work that comes later. */
#ifndef GENCLIP_OFX_GPU_RENDER_H
#define GENCLIP_OFX_GPU_RENDER_H

#include "ofx_core.h"

#define kOfxActionOpenGLContextAttached          "OfxActionOpenGLContextAttached"
#define kOfxActionOpenGLContextDetached          "kOfxActionOpenGLContextDetached"
#define kOfxImageEffectPropCPURenderSupported    "OfxImageEffectPropCPURenderSupported"
#define kOfxImageEffectPropCudaEnabled           "OfxImageEffectPropCudaEnabled"
#define kOfxImageEffectPropCudaRenderSupported   "OfxImageEffectPropCudaRenderSupported"
#define kOfxImageEffectPropCudaStream            "OfxImageEffectPropCudaStream"
#define kOfxImageEffectPropCudaStreamSupported   "OfxImageEffectPropCudaStreamSupported"
#define kOfxImageEffectPropMetalCommandQueue     "OfxImageEffectPropMetalCommandQueue"
#define kOfxImageEffectPropMetalEnabled          "OfxImageEffectPropMetalEnabled"
#define kOfxImageEffectPropMetalRenderSupported  "OfxImageEffectPropMetalRenderSupported"
#define kOfxImageEffectPropOpenCLCommandQueue    "OfxImageEffectPropOpenCLCommandQueue"
#define kOfxImageEffectPropOpenCLEnabled         "OfxImageEffectPropOpenCLEnabled"
#define kOfxImageEffectPropOpenCLImage           "OfxImageEffectPropOpenCLImage"
#define kOfxImageEffectPropOpenCLRenderSupported "OfxImageEffectPropOpenCLRenderSupported"
#define kOfxImageEffectPropOpenCLSupported       "OfxImageEffectPropOpenCLSupported"
#define kOfxImageEffectPropOpenGLEnabled         "OfxImageEffectPropOpenGLEnabled"
#define kOfxImageEffectPropOpenGLRenderSupported "OfxImageEffectPropOpenGLRenderSupported"
#define kOfxImageEffectPropOpenGLTextureIndex    "OfxImageEffectPropOpenGLTextureIndex"
#define kOfxImageEffectPropOpenGLTextureTarget   "OfxImageEffectPropOpenGLTextureTarget"
#define kOfxOpenCLProgramSuite                   "OfxOpenCLProgramSuite"
#define kOfxOpenGLPropPixelDepth                 "OfxOpenGLPropPixelDepth"
#define kOfxOpenGLRenderSuite                    "OfxImageEffectOpenGLRenderSuite"
#define kOfxStatGLOutOfMemory                    1001
#define kOfxStatGLRenderFailed                   1002
#define kOfxStatGPUOutOfMemory                   1001
#define kOfxStatGPURenderFailed                  1002

#endif /* GENCLIP_OFX_GPU_RENDER_H */
