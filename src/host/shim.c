#include "ofx.h"
