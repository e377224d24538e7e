// Typed errors (public, see falcon/error.h) and a check macro for the engine's own code.
#pragma once

#include "falcon/error.h"

#define FALCON_CHECK(cond, ExceptionType, message)          \
  do {                                                      \
    if (!(cond)) throw ExceptionType(std::string(message)); \
  } while (0)
