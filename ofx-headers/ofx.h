/* Everything GenClip declares of the OpenFX API, in one include for bindgen and the C shim. */
#ifndef GENCLIP_OFX_H
#define GENCLIP_OFX_H

#include "ofx_core.h"
#include "ofx_property.h"
#include "ofx_param.h"
#include "ofx_image_effect.h"
#include "ofx_memory.h"
#include "ofx_multithread.h"
#include "ofx_message.h"
#include "ofx_progress.h"
#include "ofx_timeline.h"
#include "ofx_gpu_render.h"

#endif /* GENCLIP_OFX_H */
