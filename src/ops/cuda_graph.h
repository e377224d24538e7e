// A CUDA graph of ops, captured once and replayed: the engine's decode step. No CUDA header
// here (model and engine code include this file). Without a CUDA build every call throws
// Unsupported and graphs_available() is false.
#pragma once

#include <cstddef>
#include <functional>

namespace falcon::ops::cuda {

bool graphs_available();

class Graph {
 public:
  Graph() = default;
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Runs `record` with the ops pointed at a capturing stream and instantiates what it
  // launched. If `record` throws, the capture is abandoned (the graph stays empty) and the
  // exception propagates; the ops are back on the context's stream either way.
  void capture(const std::function<void()>& record);
  // Launches the graph on the context's stream (ordered after the work already queued there).
  void launch();
  bool ready() const { return exec_ != nullptr; }

 private:
  void* exec_ = nullptr;  // cudaGraphExec_t
};

// Copies host bytes to the device on the context's stream (asynchronous for the host once the
// bytes are staged: `src` may be reused when this returns).
void upload_async(void* dst, const void* src, size_t bytes);
// Copies device bytes to the host, waiting for the work queued before it on the stream.
void download(void* dst, const void* src, size_t bytes);

// A grow-only page-locked host buffer for inputs the host writes itself (the prompt's patches,
// rounded to bf16 straight into it): the upload from it is a plain DMA queued on the stream,
// with no staging copy through pageable memory, and the host goes on at once.
class PinnedUpload {
 public:
  PinnedUpload() = default;
  ~PinnedUpload();
  PinnedUpload(const PinnedUpload&) = delete;
  PinnedUpload& operator=(const PinnedUpload&) = delete;

  // A buffer of at least `bytes` to fill; waits until the previous upload from it has left.
  void* reserve(size_t bytes);
  // Queues the copy of the first `bytes` of the buffer to device memory `dst`.
  void upload(void* dst, size_t bytes);

 private:
  void* host_ = nullptr;
  size_t capacity_ = 0;
  void* done_ = nullptr;  // cudaEvent_t recorded after the last upload
};

}  // namespace falcon::ops::cuda
