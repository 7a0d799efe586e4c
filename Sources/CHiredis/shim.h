#ifndef STOCKADE_CHIREDIS_SHIM_H
#define STOCKADE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
