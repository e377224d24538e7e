#include "ops/cuda_graph.h"

#include <string>

#include "ops/cuda_common.cuh"
#include "ops/cuda_context.h"

namespace falcon::ops::cuda {

bool graphs_available() { return true; }

Graph::~Graph() {
  if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
}

void Graph::capture(const std::function<void()>& record) {
  if (exec_) {
    cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    exec_ = nullptr;
  }
  cudaStream_t cap = nullptr;
  FALCON_CUDA_CHECK(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking));
  // The capture stream must see everything queued before (buffers written by earlier ops).
  FALCON_CUDA_CHECK(cudaStreamSynchronize(stream()));
  set_stream(cap);
  cudaGraph_t graph = nullptr;
  try {
    FALCON_CUDA_CHECK(cudaStreamBeginCapture(cap, cudaStreamCaptureModeThreadLocal));
    record();
    FALCON_CUDA_CHECK(cudaStreamEndCapture(cap, &graph));
    cudaGraphExec_t exec = nullptr;
    FALCON_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    exec_ = exec;
  } catch (...) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(cap, &g);
    if (g) cudaGraphDestroy(g);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    set_stream(nullptr);
    cudaStreamDestroy(cap);
    throw;
  }
  cudaGraphDestroy(graph);
  set_stream(nullptr);
  cudaStreamDestroy(cap);
}

void Graph::launch() {
  if (!exec_) throw InternalError("launch of an empty CUDA graph");
  FALCON_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), stream()));
}

void upload_async(void* dst, const void* src, size_t bytes) {
  FALCON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
}

PinnedUpload::~PinnedUpload() {
  if (done_) {
    cudaEventSynchronize(static_cast<cudaEvent_t>(done_));
    cudaEventDestroy(static_cast<cudaEvent_t>(done_));
  }
  if (host_) cudaFreeHost(host_);
}

void* PinnedUpload::reserve(size_t bytes) {
  if (done_) FALCON_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(done_)));
  if (bytes > capacity_) {
    if (host_) FALCON_CUDA_CHECK(cudaFreeHost(host_));
    host_ = nullptr;
    capacity_ = 0;
    if (cudaMallocHost(&host_, bytes) != cudaSuccess) {
      cudaGetLastError();
      host_ = nullptr;
      throw OutOfMemory("out of page-locked host memory for a " + std::to_string(bytes >> 20) + " MiB upload");
    }
    capacity_ = bytes;
  }
  return host_;
}

void PinnedUpload::upload(void* dst, size_t bytes) {
  if (bytes > capacity_) throw InternalError("PinnedUpload: upload past the reserved buffer");
  if (!done_) {
    cudaEvent_t e = nullptr;
    FALCON_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    done_ = e;
  }
  FALCON_CUDA_CHECK(cudaMemcpyAsync(dst, host_, bytes, cudaMemcpyHostToDevice, stream()));
  FALCON_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(done_), stream()));
}

void download(void* dst, const void* src, size_t bytes) {
  FALCON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  FALCON_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

}  // namespace falcon::ops::cuda
