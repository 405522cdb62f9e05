#include "CKernelStamps.h"
