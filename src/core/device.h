// Where a tensor's bytes live.
#pragma once

#include <string>
#include <string_view>

namespace falcon {

enum class Device : unsigned char { CPU, CUDA };

const char* device_name(Device d);
Device device_from_name(std::string_view name);  // "cpu" | "cuda"; throws InvalidArgument
// True when this build has the backend and (for CUDA) a usable GPU is present.
bool device_available(Device d);

}  // namespace falcon
