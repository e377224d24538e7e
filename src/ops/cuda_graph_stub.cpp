// CPU-only builds: the graph API of ops/cuda_graph.h and the waits of ops/cuda_context.h, unavailable.
#ifndef FALCON_HAS_CUDA
#include "core/error.h"
#include "ops/cuda_context.h"
#include "ops/cuda_graph.h"

namespace falcon::ops::cuda {

bool graphs_available() { return false; }
Graph::~Graph() = default;
void Graph::capture(const std::function<void()>&) { throw Unsupported("CUDA graphs: this build has no CUDA backend"); }
void Graph::launch() { throw Unsupported("CUDA graphs: this build has no CUDA backend"); }
void upload_async(void*, const void*, size_t) { throw Unsupported("this build has no CUDA backend"); }
void download(void*, const void*, size_t) { throw Unsupported("this build has no CUDA backend"); }
PinnedUpload::~PinnedUpload() = default;
void* PinnedUpload::reserve(size_t) { throw Unsupported("this build has no CUDA backend"); }
void PinnedUpload::upload(void*, size_t) { throw Unsupported("this build has no CUDA backend"); }
void synchronize() { throw Unsupported("this build has no CUDA backend"); }

}  // namespace falcon::ops::cuda
#endif
